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

"""Play a bag into the reasonseg node on simulated time and record its outputs; ends when the node is done.

Order of events: the output folder is refused if it exists (before anything
starts); the node starts as a lifecycle node and is configured (models load)
and activated; only then the recorder starts and, a moment later, the bag
plays with ``--clock`` while the node runs on ``use_sim_time``. When the bag
ends, the node's ``~/drain`` service answers once every queued instruction is
done, and the launch shuts down. If the models cannot be loaded the launch
shuts down with that reason.

    ros2 launch reasonseg_ros replay.launch.py bag:=demo_bag config_file:=$PWD/config/demo_tiny.yaml

MCAP bags on Humble need the storage plugin: ``sudo apt install ros-humble-rosbag2-storage-mcap``.
"""

import os

import lifecycle_msgs.msg
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    TimerAction,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown, matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare

from launch import LaunchContext, LaunchDescription

OUTPUT_TOPICS = ["masks", "detections", "result", "rejection", "tracks/masks", "tracks/detections"]


def generate_launch_description() -> LaunchDescription:
    """Arguments, then everything else once they are known (the output folder is checked first)."""
    arguments = [
        DeclareLaunchArgument("bag", description="input bag (folder, or .mcap / .db3 file)"),
        DeclareLaunchArgument(
            "output_bag", default_value="reasonseg_replay_out", description="bag of the outputs (must not exist)"
        ),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument(
            "config_file",
            default_value=PathJoinSubstitution([FindPackageShare("reasonseg_ros"), "config", "default.yaml"]),
            description="YAML config (see docs/configuration.md)",
        ),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("image_topic", default_value="image", description="image topic in the bag"),
        DeclareLaunchArgument("instruction_topic", default_value="instruction", description="instructions in the bag"),
        DeclareLaunchArgument(
            "storage", default_value="", description="storage of the output bag: sqlite3 or mcap (empty: the default)"
        ),
        DeclareLaunchArgument(
            "record_delay_s", default_value="2.0", description="seconds between starting the recorder and the player"
        ),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_replay)])


def _replay(context: LaunchContext) -> list:
    value = {
        name: LaunchConfiguration(name).perform(context)
        for name in (
            "bag",
            "output_bag",
            "rate",
            "config_file",
            "namespace",
            "image_topic",
            "instruction_topic",
            "storage",
            "record_delay_s",
        )
    }
    if os.path.exists(value["output_bag"]):
        raise RuntimeError(
            f"output bag '{value['output_bag']}' already exists: remove it or pass output_bag:=<new folder>"
        )
    if not os.path.exists(value["bag"]):
        raise RuntimeError(f"input bag '{value['bag']}' does not exist")
    namespace = value["namespace"].strip("/")
    prefix = f"/{namespace}" if namespace else ""

    node = LifecycleNode(
        package="reasonseg_ros",
        executable="reasonseg_node",
        name="reasonseg",
        namespace=namespace,
        output="screen",
        parameters=[{"config_file": value["config_file"], "node.lifecycle": True, "use_sim_time": True}],
        remappings=[("image", value["image_topic"]), ("instruction", value["instruction_topic"])],
    )

    def transition(transition_id: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))

    storage = ["--storage", value["storage"]] if value["storage"] else []
    record = ExecuteProcess(
        cmd=[
            "ros2",
            "bag",
            "record",
            "--use-sim-time",
            "-o",
            value["output_bag"],
            *storage,
            *[f"{prefix}/{topic}" for topic in OUTPUT_TOPICS],
            "/diagnostics",
        ],
        output="screen",
    )
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", value["bag"], "--rate", value["rate"], "--disable-keyboard-controls", "--clock"],
        output="screen",
    )
    drain = ExecuteProcess(
        cmd=["ros2", "service", "call", f"{prefix}/reasonseg/drain", "std_srvs/srv/Trigger"], output="screen"
    )

    def failed() -> list:
        return [
            LogInfo(msg="reasonseg could not load its models (see the node's error above); stopping"),
            EmitEvent(event=Shutdown(reason="the reasonseg node could not be configured")),
        ]

    return [
        node,
        # configure (loads the models) -> inactive -> activate -> active -> record, then play.
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="configuring",
                goal_state="inactive",
                entities=[transition(lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE)],
            )
        ),
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="activating",
                goal_state="active",
                entities=[
                    LogInfo(msg="reasonseg is active: recording, then playing the bag"),
                    record,
                    TimerAction(period=float(value["record_delay_s"]), actions=[play]),
                ],
            )
        ),
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="configuring",
                goal_state="unconfigured",
                entities=failed(),
            )
        ),
        RegisterEventHandler(
            OnStateTransition(
                target_lifecycle_node=node,
                start_state="errorprocessing",
                entities=failed(),
            )
        ),
        RegisterEventHandler(
            OnProcessExit(
                target_action=play,
                on_exit=[LogInfo(msg="the bag has ended: waiting for the node to answer every instruction"), drain],
            )
        ),
        RegisterEventHandler(
            OnProcessExit(
                target_action=drain,
                on_exit=[EmitEvent(event=Shutdown(reason="replay finished"))],
            )
        ),
        RegisterEventHandler(
            OnProcessExit(
                target_action=node,
                on_exit=[EmitEvent(event=Shutdown(reason="the reasonseg node exited"))],
            )
        ),
        transition(lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE),
    ]
