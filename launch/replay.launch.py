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

"""Play a bag into the reasonseg node and record its outputs next to the inputs."""

from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    bag = LaunchConfiguration("bag")
    arguments = [
        DeclareLaunchArgument("bag", description="input bag (folder or .mcap)"),
        DeclareLaunchArgument("output_bag", default_value="reasonseg_replay_out", description="bag of the outputs"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument(
            "config_file",
            default_value=PathJoinSubstitution([FindPackageShare("reasonseg_ros"), "config", "default.yaml"]),
        ),
        DeclareLaunchArgument("image_topic", default_value="image"),
        DeclareLaunchArgument("instruction_topic", default_value="instruction"),
    ]
    node = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare("reasonseg_ros"), "launch", "reasonseg.launch.py"])
        ),
        launch_arguments={
            "config_file": LaunchConfiguration("config_file"),
            "image_topic": LaunchConfiguration("image_topic"),
            "instruction_topic": LaunchConfiguration("instruction_topic"),
        }.items(),
    )
    record = ExecuteProcess(
        cmd=[
            "ros2",
            "bag",
            "record",
            "-o",
            LaunchConfiguration("output_bag"),
            "/masks",
            "/detections",
            "/result",
            "/rejection",
            "/diagnostics",
        ],
        output="screen",
    )
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", bag, "--rate", LaunchConfiguration("rate")],
        output="screen",
    )
    return LaunchDescription([*arguments, node, record, play])
