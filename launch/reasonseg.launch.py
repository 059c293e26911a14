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

"""Start the reasonseg node with a config file and topic remappings."""

from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
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
    ]
    node = Node(
        package="reasonseg_ros",
        executable="reasonseg_node",
        name="reasonseg",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=[{"config_file": LaunchConfiguration("config_file")}],
        remappings=[
            ("image", LaunchConfiguration("image_topic")),
            ("instruction", LaunchConfiguration("instruction_topic")),
            ("camera_info", LaunchConfiguration("camera_info_topic")),
        ],
        arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
    )
    return LaunchDescription([*arguments, node])
