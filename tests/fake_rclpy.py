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

"""Stand-in modules for the rclpy API ``ros/node.py`` uses, applying rclpy's rules where they matter.

Installed into ``sys.modules`` by a fixture so that ``reasonseg_ros.ros.node``
imports and runs without ROS: parameters follow rclpy's declaration and set
rules (``ros_doubles.RclpyRuleParameters``), the logger rclpy's call-site
rule, a publisher of a destroyed node raises as rclpy's ``InvalidHandle``
does, and message classes are rosbags' (the same definitions). This checks
the node's wiring, not rclpy itself: the rclpy-gated tests do that.
"""

from __future__ import annotations

import enum
import threading
import types
from dataclasses import dataclass
from typing import Any

import ros_doubles
from ros_doubles import FakeDescriptor, FakeRange, RclpyRuleLogger, RclpyRuleParameters

OVERRIDES: dict[str, Any] = {}
"""Parameter overrides every node sees, as ``-p name:=value`` on the command line would give."""

NODES: list[Any] = []
"""Every node created, in order (the probe included)."""

EXECUTORS: list[Any] = []
"""Every executor created."""


class ParameterException(Exception):
    pass


class InvalidParameterTypeException(ParameterException):
    pass


class InvalidParameterValueException(ParameterException):
    pass


class InvalidHandle(Exception):
    """What rclpy raises when a destroyed node's publisher publishes."""


class InvalidQosOverridesError(Exception):
    pass


class ExternalShutdownException(Exception):
    pass


@dataclass
class ParameterDescriptor(FakeDescriptor):
    name: str = ""


@dataclass
class SetParametersResult:
    successful: bool = False
    reason: str = ""


class ParameterType:
    PARAMETER_BOOL, PARAMETER_INTEGER, PARAMETER_DOUBLE, PARAMETER_STRING = 1, 2, 3, 4


@dataclass
class Parameter:
    name: str
    value: Any = None


class Publisher:
    def __init__(self, node: Node, msg_type: Any, topic: str) -> None:
        self.node, self.msg_type, self.topic, self.sent = node, msg_type, topic, []

    def publish(self, msg: Any) -> None:
        if self.node.destroyed:
            raise InvalidHandle(f"publisher of '{self.topic}' used after its node was destroyed")
        self.sent.append(msg)

    def get_subscription_count(self) -> int:
        return 0


@dataclass
class Subscription:
    msg_type: Any
    topic: str
    callback: Any
    qos: Any
    callback_group: Any = None
    qos_overriding_options: Any = None


class Clock:
    def __init__(self, clock_type: Any = None) -> None:
        self.clock_type = clock_type

    def now(self) -> Any:
        return types.SimpleNamespace(nanoseconds=0)


class ClockType(enum.Enum):
    ROS_TIME = 1
    SYSTEM_TIME = 2
    STEADY_TIME = 3


class Node:
    def __init__(
        self,
        node_name: str,
        *,
        parameter_overrides: list[Parameter] | None = None,
        allow_undeclared_parameters: bool = False,
        automatically_declare_parameters_from_overrides: bool = False,
        **kwargs: Any,
    ) -> None:
        overrides = dict(OVERRIDES)
        overrides.update({p.name: p.value for p in parameter_overrides or []})
        self.name, self.kwargs, self.destroyed = node_name, kwargs, False
        self._params = RclpyRuleParameters(overrides)
        self._logger = RclpyRuleLogger()
        self.publishers: dict[str, Publisher] = {}
        # rclpy keeps its subscriptions in ``self._subscriptions`` (Humble and Jazzy ``Node.__init__``) and the
        # executor waits only on what the ``subscriptions`` property yields from it.
        self._subscriptions: list[Subscription] = []
        self.services: dict[str, Any] = {}
        self.timers: list[tuple[float, Any, Any]] = []
        if automatically_declare_parameters_from_overrides:
            for name, value in overrides.items():
                self._params.values[name] = value
                self._params.descriptors[name] = ParameterDescriptor(dynamic_typing=True)
        if overrides.get("use_sim_time") is True:
            # TimeSource.attach_node subscribes to /clock while the node is being built.
            self.create_subscription(types.SimpleNamespace(name="rosgraph_msgs/msg/Clock"), "/clock", None, 1)
        NODES.append(self)

    @property
    def subscriptions(self) -> list[Subscription]:
        """What the executor takes messages for (rclpy: ``yield from self._subscriptions``)."""
        return list(self._subscriptions)

    # parameters
    def declare_parameter(self, name: str, value: Any, descriptor: ParameterDescriptor) -> Parameter:
        try:
            return Parameter(name, self._params.declare(name, value, descriptor))
        except ros_doubles.InvalidParameterTypeException as exc:
            raise InvalidParameterTypeException(str(exc)) from None
        except ros_doubles.InvalidParameterValueException as exc:
            raise InvalidParameterValueException(str(exc)) from None

    def add_on_set_parameters_callback(self, callback: Any) -> None:
        def adapted(items: list[tuple[str, Any]]) -> tuple[bool, str]:
            result = callback([Parameter(name, value) for name, value in items])
            return result.successful, result.reason

        self._params.callbacks.insert(0, adapted)

    def set_parameters(self, parameters: list[Parameter]) -> list[SetParametersResult]:
        return [SetParametersResult(*self._params.set(p.name, p.value)) for p in parameters]

    def has_parameter(self, name: str) -> bool:
        return name in self._params.values

    def get_parameter(self, name: str) -> Parameter:
        return Parameter(name, self._params.values[name])

    def describe_parameter(self, name: str) -> ParameterDescriptor:
        return self._params.descriptors[name]

    # entities
    def create_publisher(self, msg_type: Any, topic: str, qos: Any, **kwargs: Any) -> Publisher:
        self.publishers[topic] = Publisher(self, msg_type, topic)
        return self.publishers[topic]

    def create_subscription(self, msg_type: Any, topic: str, callback: Any, qos: Any, **kwargs: Any) -> Subscription:
        options = kwargs.get("qos_overriding_options")
        for policy in options.policy_kinds if options else ():
            # qos_overriding_options._declare_qos_parameters / _override_qos_policy_with_param: an enum policy's
            # override must name a member of its policy enum, else RuntimeError.
            name = f"qos_overrides.{self.resolve_topic_name(topic)}.subscription.{policy}"
            if name in self._params.overrides:
                value = self._params.overrides[name]
                enum_class = {"history": HistoryPolicy, "reliability": ReliabilityPolicy}.get(policy)
                if enum_class is not None:
                    try:
                        value = enum_class[str(value).upper()]
                    except KeyError:
                        raise RuntimeError(f"Unexpected QoS override for policy `{policy}`: `{value}`") from None
                setattr(qos, policy, value)
        subscription = Subscription(msg_type, topic, callback, qos, **kwargs)
        self._subscriptions.append(subscription)
        return subscription

    def destroy_subscription(self, subscription: Subscription) -> bool:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        return True

    def create_service(self, srv_type: Any, name: str, callback: Any, **kwargs: Any) -> Any:
        self.services[name] = callback
        return name

    def create_timer(self, period: float, callback: Any, callback_group: Any = None, clock: Any = None) -> Any:
        self.timers.append((period, callback, clock))
        return callback

    def get_clock(self) -> Clock:
        return Clock()

    def get_logger(self) -> RclpyRuleLogger:
        return self._logger

    def resolve_topic_name(self, topic: str, *, only_expand: bool = False) -> str:
        return topic if topic.startswith("/") else f"/{topic}"

    def get_fully_qualified_name(self) -> str:
        return f"/{self.name}"

    def destroy_node(self) -> None:
        self.destroyed = True

    def subscription(self, topic: str) -> Subscription:
        (found,) = [s for s in self.subscriptions if s.topic == topic]
        return found


class TransitionCallbackReturn(enum.Enum):
    SUCCESS = 0
    FAILURE = 1
    ERROR = 2


@dataclass
class LifecycleState:
    state_id: int = 0
    label: str = ""


class LifecycleNode(Node):
    """The transitions rclpy.lifecycle drives, without its state machine checks."""

    def __init__(self, node_name: str, *, enable_communication_interface: bool = True, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)

    def _transition(self, callback: Any) -> TransitionCallbackReturn:
        try:
            result = callback(LifecycleState())
        except Exception:  # rclpy turns an exception into ERROR
            return TransitionCallbackReturn.ERROR
        if not isinstance(result, TransitionCallbackReturn):
            # rclpy's __change_state calls result.to_label() outside its try: the change_state service raises.
            raise AttributeError(f"{type(result).__name__!r} object has no attribute 'to_label'")
        return result

    def trigger_configure(self) -> TransitionCallbackReturn:
        return self._transition(self.on_configure)

    def trigger_activate(self) -> TransitionCallbackReturn:
        return self._transition(self.on_activate)

    def trigger_deactivate(self) -> TransitionCallbackReturn:
        return self._transition(self.on_deactivate)

    def trigger_cleanup(self) -> TransitionCallbackReturn:
        return self._transition(self.on_cleanup)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    on_activate = on_deactivate = on_cleanup = on_shutdown = on_error = on_configure


class MultiThreadedExecutor:
    def __init__(self, num_threads: int | None = None) -> None:
        self.nodes: list[Node] = []
        self._stop = threading.Event()
        EXECUTORS.append(self)

    def add_node(self, node: Node) -> None:
        self.nodes.append(node)

    def spin(self) -> None:
        self._stop.wait()

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        self._stop.set()
        return True


class QoSOverridingOptions:
    def __init__(self, policy_kinds: Any) -> None:
        self.policy_kinds = policy_kinds

    @classmethod
    def with_default_policies(cls) -> QoSOverridingOptions:
        return cls(("history", "depth", "reliability"))


@dataclass
class QoSProfile:
    history: Any = None
    depth: int = 10
    reliability: Any = None


class HistoryPolicy(enum.Enum):
    KEEP_LAST = 1
    KEEP_ALL = 2


class ReliabilityPolicy(enum.Enum):
    RELIABLE = 1
    BEST_EFFORT = 2


class _Group:
    pass


STATE = {"initialised": False}


def install(monkeypatch: Any, store: Any) -> None:
    """Put the stand-in modules into ``sys.modules`` (undone by ``monkeypatch`` after the test)."""

    def module(name: str, **attrs: Any) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(__import__("sys").modules, name, mod)
        return mod

    msg = store.types
    module(
        "rclpy",
        init=lambda args=None: STATE.update(initialised=True),
        try_shutdown=lambda: STATE.update(initialised=False),
        ok=lambda: STATE["initialised"],
    )
    module("rclpy.node", Node=Node)
    module(
        "rclpy.lifecycle",
        LifecycleNode=LifecycleNode,
        LifecycleState=LifecycleState,
        TransitionCallbackReturn=TransitionCallbackReturn,
    )
    module("rclpy.callback_groups", MutuallyExclusiveCallbackGroup=_Group, ReentrantCallbackGroup=_Group)
    module("rclpy.clock", Clock=Clock, ClockType=ClockType)
    module("rclpy.exceptions", ParameterException=ParameterException)
    module(
        "rclpy.executors",
        ExternalShutdownException=ExternalShutdownException,
        MultiThreadedExecutor=MultiThreadedExecutor,
    )
    module("rclpy.qos", HistoryPolicy=HistoryPolicy, QoSProfile=QoSProfile, ReliabilityPolicy=ReliabilityPolicy)
    module(
        "rclpy.qos_overriding_options",
        InvalidQosOverridesError=InvalidQosOverridesError,
        QoSOverridingOptions=QoSOverridingOptions,
    )
    module(
        "rcl_interfaces.msg",
        FloatingPointRange=FakeRange,
        IntegerRange=FakeRange,
        ParameterDescriptor=ParameterDescriptor,
        ParameterType=ParameterType,
        SetParametersResult=SetParametersResult,
    )
    module("rcl_interfaces")
    module("rosidl_runtime_py")
    module("rosidl_runtime_py.utilities", get_message=lambda name: msg[name])
    for package, names in {
        "sensor_msgs": ["CameraInfo", "CompressedImage", "Image"],
        "std_msgs": ["String"],
        "vision_msgs": ["Detection2DArray"],
    }.items():
        module(package)
        module(f"{package}.msg", **{name: msg[f"{package}/msg/{name}"] for name in names})
    module("std_srvs")
    module("std_srvs.srv", Trigger=types.SimpleNamespace(name="std_srvs/srv/Trigger"))
    monkeypatch.delitem(__import__("sys").modules, "reasonseg_ros.ros.node", raising=False)
    OVERRIDES.clear()
    NODES.clear()
    EXECUTORS.clear()
