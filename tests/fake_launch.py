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

"""Stand-in ``launch`` / ``launch_ros`` modules that record what a launch file builds (no ROS needed).

Every action is an :class:`Action` holding its constructor arguments, so a
test can check which processes start, with which command, and after which
event; the rclpy-gated launch_testing test runs the real thing.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class Action:
    """Any launch entity: keeps its positional and keyword arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kwargs})"


class LaunchConfiguration(Action):
    def perform(self, context: Any) -> str:
        return context.values[self.args[0]]


class LaunchDescription(Action):
    @property
    def entities(self) -> list:
        return self.args[0]


class LaunchContext:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values


def _classes(*names: str) -> dict[str, type]:
    return {name: type(name, (Action,), {}) for name in names}


def install(monkeypatch: Any) -> None:
    def module(name: str, **attrs: Any) -> None:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)
        parent, _, leaf = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], leaf, mod)  # as an import of the submodule does

    module("launch", LaunchContext=LaunchContext, LaunchDescription=LaunchDescription)
    module(
        "launch.actions",
        **_classes(
            "DeclareLaunchArgument",
            "EmitEvent",
            "ExecuteProcess",
            "IncludeLaunchDescription",
            "LogInfo",
            "OpaqueFunction",
            "RegisterEventHandler",
            "TimerAction",
        ),
    )
    module("launch.event_handlers", **_classes("OnProcessExit"))
    module("launch.events", **_classes("Shutdown"), matches_action=lambda action: ("matches", action))
    module("launch.substitutions", LaunchConfiguration=LaunchConfiguration, **_classes("PathJoinSubstitution"))
    module("launch.launch_description_sources", **_classes("PythonLaunchDescriptionSource"))
    module("launch_ros")
    module("launch_ros.actions", **_classes("LifecycleNode", "Node"))
    module("launch_ros.event_handlers", **_classes("OnStateTransition"))
    module("launch_ros.events")
    module("launch_ros.events.lifecycle", **_classes("ChangeState"))
    module("launch_ros.substitutions", **_classes("FindPackageShare"))
    transition = types.SimpleNamespace(TRANSITION_CONFIGURE=1, TRANSITION_ACTIVATE=3)
    module("lifecycle_msgs")
    module("lifecycle_msgs.msg", Transition=transition)
