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

"""launch_testing: reasonseg.launch.py starts the lifecycle node with a config and it becomes active.

Runs in a built workspace (``colcon test`` or ``python3 -m pytest`` after
``source install/setup.bash``); skipped where ROS 2 or the installed package is missing.
"""

import time
import unittest
from pathlib import Path

import pytest

pytest.importorskip("launch_testing", reason="launch_testing is not installed (ROS 2 only)")
pytest.importorskip("launch_ros", reason="launch_ros is not installed (ROS 2 only)")
packages = pytest.importorskip("ament_index_python.packages", reason="ament_index_python is not installed")
try:
    SHARE = Path(packages.get_package_share_directory("reasonseg_ros"))
except packages.PackageNotFoundError:
    pytest.skip("reasonseg_ros is not installed in a sourced workspace", allow_module_level=True)

import launch_testing.actions  # noqa: E402
import rclpy  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402

import launch  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo_tiny.yaml"  # tiny SAM, random weights


@pytest.mark.launch_test
def generate_test_description():
    include = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(SHARE / "launch" / "reasonseg.launch.py")),
        launch_arguments={"config_file": str(CONFIG), "lifecycle": "true"}.items(),
    )
    return launch.LaunchDescription([include, launch_testing.actions.ReadyToTest()])


class TestNodeBecomesActive(unittest.TestCase):
    def test_lifecycle_node_reaches_active(self, proc_output):
        rclpy.init()
        try:
            node = rclpy.create_node("reasonseg_launch_probe")
            client = node.create_client(GetState, "/reasonseg/get_state")
            self.assertTrue(client.wait_for_service(timeout_sec=30.0))
            label, deadline = "", time.monotonic() + 120.0  # the models load during configure
            while label != "active" and time.monotonic() < deadline:
                future = client.call_async(GetState.Request())
                rclpy.spin_until_future_complete(node, future, timeout_sec=5.0)
                label = future.result().current_state.label if future.done() and future.result() else ""
                time.sleep(0.5)
            self.assertEqual(label, "active")
            node.destroy_node()
        finally:
            rclpy.shutdown()
