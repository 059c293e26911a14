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

"""Start the reasonseg node with a config file and topic remappings.

``lifecycle:=true`` starts the managed node and drives it to active
(configure loads the models, activate subscribes); ``autostart:=false``
leaves the transitions to you (``ros2 lifecycle set /reasonseg configure``).
"""

import lifecycle_msgs.msg
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare

from launch import LaunchContext, LaunchDescription


def generate_launch_description() -> LaunchDescription:
    """Arguments, then the node (plain or lifecycle)."""
    arguments = [
        DeclareLaunchArgument(
            "config_file",
            default_value=PathJoinSubstitution([FindPackageShare("reasonseg_ros"), "config", "default.yaml"]),
            description="YAML config (see docs/configuration.md)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("image_topic", default_value="image", description="camera images (sensor_msgs/Image)"),
        DeclareLaunchArgument(
            "instruction_topic", default_value="instruction", description="instructions (std_msgs/String)"
        ),
        DeclareLaunchArgument("camera_info_topic", default_value="camera_info", description="sensor_msgs/CameraInfo"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug, info, warn, error"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (bag replay)"),
        DeclareLaunchArgument("lifecycle", default_value="false", description="run the managed (lifecycle) node"),
        DeclareLaunchArgument(
            "params_file",
            default_value="",
            description="ROS parameter file applied after config_file: any section.key, and qos_overrides",
        ),
        DeclareLaunchArgument(
            "autostart", default_value="true", description="lifecycle node: configure and activate it at launch"
        ),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_node)])


def _is_true(context: LaunchContext, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).strip().lower() in ("true", "1", "yes")


def _node(context: LaunchContext) -> list:
    lifecycle = _is_true(context, "lifecycle")
    common = {
        "package": "reasonseg_ros",
        "executable": "reasonseg_node",
        "name": "reasonseg",
        "namespace": LaunchConfiguration("namespace"),
        "output": "screen",
        "emulate_tty": True,
        "parameters": [
            {
                "config_file": LaunchConfiguration("config_file"),
                "use_sim_time": _is_true(context, "use_sim_time"),
                "node.lifecycle": lifecycle,
            }
        ],
        "remappings": [
            ("image", LaunchConfiguration("image_topic")),
            ("instruction", LaunchConfiguration("instruction_topic")),
            ("camera_info", LaunchConfiguration("camera_info_topic")),
        ],
        "arguments": ["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    }
    params_file = LaunchConfiguration("params_file").perform(context)
    if params_file:
        common["parameters"].append(params_file)
    if not lifecycle:
        return [Node(**common)]
    node = LifecycleNode(**common)
    if not _is_true(context, "autostart"):
        return [node]

    def transition(transition_id: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    activate = OnStateTransition(
        target_lifecycle_node=node,
        start_state="configuring",
        goal_state="inactive",
        entities=[transition(lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE)],
    )
    return [node, RegisterEventHandler(activate), transition(lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE)]
