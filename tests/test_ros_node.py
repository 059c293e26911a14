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

"""The real rclpy node and launch files; these run wherever ROS 2 (Humble, Jazzy) is sourced.

Message field checks are on (Jazzy skips them unless ``ROS_PYTHON_CHECK_FIELDS=1``;
Humble always checks), so a wrongly typed field fails here as it would on a robot.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import wait_for

os.environ.setdefault("ROS_PYTHON_CHECK_FIELDS", "1")  # before any message module is imported

rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (source a ROS 2 Humble or Jazzy setup.bash)")
pytest.importorskip("torch", reason="the torch extra is not installed")

from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from reasonseg_ros.ros.node import ReasonsegLifecycleNode, ReasonsegNode  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BOX = json.dumps({"targets": [{"label": "thing", "box": [5, 5, 40, 40]}]})


def _wait_for_30(predicate):  # DDS discovery on a loaded machine can take seconds
    return wait_for(predicate, timeout=30.0)


def tiny(**extra):
    values = {
        "segmenter.model_type": "vit_tiny",
        "segmenter.random_weights": True,
        "engine.frame_wait_s": 2,  # an integer for a double: dynamic typing takes it
        **extra,
    }
    return [Parameter(name, value=value) for name, value in values.items()]


@pytest.fixture
def ros():
    rclpy.init()
    executor = MultiThreadedExecutor(num_threads=4)
    peer = rclpy.create_node("reasonseg_test_peer")
    executor.add_node(peer)

    def spin():
        try:
            executor.spin()
        except ExternalShutdownException:
            pass

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    nodes = []

    def add(node):
        executor.add_node(node)
        nodes.append(node)
        return node

    yield peer, add
    executor.shutdown(timeout_sec=5.0)
    for node in nodes:
        node.destroy_node()
    peer.destroy_node()
    rclpy.try_shutdown()


def rgb_image(frame_id="camera"):
    pixels = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    image = Image(height=60, width=80, encoding="rgb8", step=240)
    image.header.frame_id = frame_id
    image.data = pixels.tobytes()
    return image


def call(peer, name):
    client = peer.create_client(Trigger, name)
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(Trigger.Request())
    assert _wait_for_30(future.done)
    return future.result()


def test_round_error_round_reset_session_and_mixed_log_levels(ros):
    peer, add = ros
    node = add(ReasonsegNode(parameter_overrides=tiny()))
    assert node.config.engine.frame_wait_s == 2.0
    received = {"result": [], "masks": [], "detections": []}
    peer.create_subscription(String, "result", received["result"].append, 10)
    peer.create_subscription(Image, "masks", received["masks"].append, 10)
    peer.create_subscription(Detection2DArray, "detections", received["detections"].append, 10)
    images = peer.create_publisher(Image, "image", 10)
    instructions = peer.create_publisher(String, "instruction", 10)
    resets = peer.create_publisher(String, "reset_session", 10)
    assert _wait_for_30(lambda: images.get_subscription_count() > 0 and instructions.get_subscription_count() > 0)
    assert _wait_for_30(lambda: all(node.count_subscribers(t) > 0 for t in ("result", "masks", "detections")))
    assert node.bring_up()
    assert node.core.state == "active"

    bad = rgb_image()
    bad.encoding = "32FC1"
    images.publish(bad)  # a warning ...
    assert _wait_for_30(lambda: node.core.counters["frames_rejected"] == 1)
    resets.publish(String(data="default"))  # ... then an info: the log call that used to raise
    time.sleep(0.5)
    images.publish(rgb_image())
    assert _wait_for_30(lambda: node.core.counters["frames_received"] > 0)
    instructions.publish(String(data=BOX))
    instructions.publish(String(data='{"text": 5}'))  # an error round

    assert _wait_for_30(lambda: len(received["result"]) >= 3 and received["masks"] and received["detections"])
    results = [json.loads(m.data) for m in received["result"]]
    assert any(not r["ok"] and r["error"]["kind"] == "image" and "32fc1" in r["error"]["message"] for r in results)
    assert any(r["ok"] and r["objects"][0]["label"] == "thing" for r in results)
    assert any(not r["ok"] and r["error"]["kind"] == "bad_input" for r in results)
    assert received["masks"][0].encoding == "mono16" and received["masks"][0].header.frame_id == "camera"
    assert received["detections"][0].detections[0].results[0].hypothesis.class_id == "thing"

    resets.publish(String(data="default"))
    time.sleep(0.5)
    assert call(peer, "reset").message == "cleared all sessions (0 with memory)"
    assert node.core.worker_alive is True and node.core.counters["worker_errors"] == 0


def test_parameter_sets_are_refused_or_accepted_like_the_yaml_config(ros):
    _, add = ros
    node = add(ReasonsegNode(parameter_overrides=tiny()))
    refused, read_only = node.set_parameters(
        [Parameter("engine.max_instruction_bytes", value=0), Parameter("segmenter.model_type", value="vit_h")]
    )
    assert not refused.successful and not read_only.successful
    assert node.config.engine.max_instruction_bytes == 65536
    (accepted,) = node.set_parameters([Parameter("engine.frame_wait_s", value=3)])
    assert accepted.successful and node.config.engine.frame_wait_s == 3.0
    (wrong_type,) = node.set_parameters([Parameter("engine.frame_wait_s", value="soon")])
    assert not wrong_type.successful
    description = node.describe_parameter("engine.max_instruction_bytes")
    assert description.integer_range[0].from_value == 1


def test_the_executor_sees_every_subscription(ros):
    # The executor serves only node.subscriptions (rclpy's Node._subscriptions): /clock under sim time too.
    _, add = ros
    node = add(ReasonsegNode(parameter_overrides=tiny(use_sim_time=True)))
    topics = {s.topic_name for s in node.subscriptions}
    assert {"/clock", "/reset_session", "/image", "/camera_info", "/instruction"} <= topics


def test_lifecycle_transitions(ros):
    peer, add = ros
    node = add(ReasonsegLifecycleNode(parameter_overrides=tiny()))
    images = peer.create_publisher(Image, "image", 10)
    assert node.core.state == "unconfigured"
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.core.state == "inactive" and images.get_subscription_count() == 0
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert node.core.state == "active"
    assert _wait_for_30(lambda: images.get_subscription_count() == 1)
    engine = node.core.engine
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.core.state == "inactive" and node.core.engine is engine
    assert _wait_for_30(lambda: images.get_subscription_count() == 0)
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS  # again: QoS parameters already declared
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.core.engine is None and node.core.state == "unconfigured"


def test_compressed_images(ros):
    cv2 = pytest.importorskip("cv2", reason="python3-opencv is not installed")
    peer, add = ros
    node = add(ReasonsegNode(parameter_overrides=tiny(**{"node.image_transport": "compressed"})))
    assert node.bring_up()
    images = peer.create_publisher(CompressedImage, "image/compressed", 10)
    assert _wait_for_30(lambda: images.get_subscription_count() > 0)
    pixels = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    message = CompressedImage(format="png", data=cv2.imencode(".png", pixels)[1].tobytes())
    message.header.frame_id = "camera"
    images.publish(message)
    assert _wait_for_30(lambda: node.core.counters["frames_received"] == 1)


def test_a_bad_parameter_at_start_up_is_one_line_and_exit_code_1():
    run = subprocess.run(
        [sys.executable, "-m", "reasonseg_ros.ros.node", "--ros-args", "-p", "engine.max_instruction_bytes:=0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("reasonseg_node: parameter error")


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
