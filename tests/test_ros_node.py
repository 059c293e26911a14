# Copyright 2026 reasonseg_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""The real rclpy node and launch files; these run wherever ROS 2 (Humble, Jazzy) is sourced."""

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (source a ROS 2 Humble or Jazzy setup.bash)")
pytest.importorskip("torch", reason="the torch extra is not installed")

from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from reasonseg_ros.ros.node import ReasonsegNode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def running_node(tmp_path):
    rclpy.init()
    overrides = [
        Parameter("segmenter.model_type", value="vit_tiny"),
        Parameter("segmenter.random_weights", value=True),
        Parameter("engine.frame_wait_s", value=2.0),
    ]
    node = ReasonsegNode(parameter_overrides=overrides)
    peer = rclpy.create_node("reasonseg_test_peer")
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    executor.add_node(peer)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield node, peer
    executor.shutdown()
    node.destroy_node()
    peer.destroy_node()
    rclpy.shutdown()


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_node_answers_an_instruction_with_masks_detections_and_result(running_node):
    node, peer = running_node
    received = {"result": [], "masks": [], "detections": []}
    peer.create_subscription(String, "result", received["result"].append, 10)
    peer.create_subscription(Image, "masks", received["masks"].append, 10)
    peer.create_subscription(Detection2DArray, "detections", received["detections"].append, 10)
    images = peer.create_publisher(Image, "image", 10)
    instructions = peer.create_publisher(String, "instruction", 10)
    assert wait_for(lambda: images.get_subscription_count() > 0 and instructions.get_subscription_count() > 0)

    pixels = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    image = Image(height=60, width=80, encoding="rgb8", step=240)
    image.header.frame_id = "camera"
    image.data = pixels.tobytes()
    images.publish(image)
    assert wait_for(lambda: node.core.counters["frames_received"] > 0)
    instructions.publish(String(data=json.dumps({"targets": [{"label": "thing", "box": [5, 5, 40, 40]}]})))

    assert wait_for(lambda: received["result"] and received["masks"] and received["detections"])
    result = json.loads(received["result"][0].data)
    assert result["ok"] is True and result["objects"][0]["label"] == "thing"
    assert received["masks"][0].encoding == "mono16" and received["masks"][0].header.frame_id == "camera"
    assert received["detections"][0].detections[0].results[0].hypothesis.class_id == "thing"

    client = peer.create_client(Trigger, "reset")
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(Trigger.Request())
    assert wait_for(future.done)
    assert future.result().success


def test_launch_files_build_a_description():
    launch = pytest.importorskip("launch", reason="ROS 2 launch is not installed")
    pytest.importorskip("launch_ros", reason="launch_ros is not installed")
    import importlib.util

    for name in ("reasonseg.launch.py", "replay.launch.py"):
        spec = importlib.util.spec_from_file_location(name.replace(".", "_"), ROOT / "launch" / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
        assert isinstance(description, launch.LaunchDescription)
        assert description.entities
