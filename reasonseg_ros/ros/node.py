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

"""The rclpy node: parameters, topics, services, diagnostics, the worker and tracking threads.

Behaviour lives in :class:`~reasonseg_ros.ros.node_core.NodeCore` (and the
rclpy-free helpers of ``params.py`` and ``runtime.py``); this file only wires
ROS to it. Two flavours share the wiring: a plain node (the default) that
loads the models after it exists, so ``/diagnostics`` says "loading", and a
managed node (``node.lifecycle: true``) whose configure / activate /
deactivate / cleanup transitions load, enable, disable and free. Run with
``ros2 run reasonseg_ros reasonseg_node``.
"""

from __future__ import annotations

import array
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import rclpy
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions
from rosidl_runtime_py.utilities import get_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from reasonseg_ros.config import Config, load_config
from reasonseg_ros.deps import available
from reasonseg_ros.engine import Engine
from reasonseg_ros.errors import MissingDependencyError, ReasonsegError
from reasonseg_ros.reasoner import create_reasoner
from reasonseg_ros.ros.node_core import NodeCore, Outputs
from reasonseg_ros.ros.params import ParameterRules, descriptor_fields, from_parameter, parameter_specs
from reasonseg_ros.ros.runtime import PublishGate, guarded, log_at
from reasonseg_ros.segmenter import create_segmenter

NODE_NAME = "reasonseg"
DRAIN_TIMEOUT_S = 3600.0


class StartupError(Exception):
    """A configuration or parameter problem at start-up: one line on stderr and exit code 1."""


class RclpyTypes(Mapping):
    """ROS type name -> rclpy message class, resolved on first use."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = get_message(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)


def to_uint8_array(flat: Any) -> array.array:
    # rclpy checks a list element by element; an array.array('B') is taken as it is.
    return array.array("B", flat.tobytes())


def parameter_descriptor(fields: dict[str, Any]) -> ParameterDescriptor:
    """The message of :func:`~reasonseg_ros.ros.params.descriptor_fields`."""
    return ParameterDescriptor(
        type=fields["type"],
        description=fields["description"],
        additional_constraints=fields["additional_constraints"],
        read_only=fields["read_only"],
        dynamic_typing=fields["dynamic_typing"],
        integer_range=[IntegerRange(**r) for r in fields["integer_range"]],
        floating_point_range=[FloatingPointRange(**r) for r in fields["floating_point_range"]],
    )


class _Wiring:
    """What both node flavours share; mixed into ``rclpy.node.Node`` or ``rclpy.lifecycle.LifecycleNode``."""

    def _setup(self) -> None:
        self._gate = PublishGate()
        self.config = self._declare_parameters()
        node_cfg = self.config.node
        self._input_subscriptions: list[Any] = []  # not `_subscriptions`: rclpy's Node keeps its own list there
        self._tracking: threading.Thread | None = None
        self._tracking_stop = threading.Event()
        self._input_group = MutuallyExclusiveCallbackGroup()
        services = ReentrantCallbackGroup()

        command_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=node_cfg.instruction_qos_depth,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        gate = self._gate.wrap
        overlay_pub = self.create_publisher(Image, "overlay", 1)
        outputs = Outputs(
            masks=gate(self.create_publisher(Image, "masks", 10).publish),
            detections=gate(self.create_publisher(Detection2DArray, "detections", 10).publish),
            result=gate(self.create_publisher(String, "result", command_qos).publish),
            rejection=gate(self.create_publisher(String, "rejection", command_qos).publish),
            overlay=gate(overlay_pub.publish),
            overlay_wanted=lambda: overlay_pub.get_subscription_count() > 0,
            tracks_masks=gate(self.create_publisher(Image, "tracks/masks", 10).publish),
            tracks_detections=gate(self.create_publisher(Detection2DArray, "tracks/detections", 10).publish),
        )
        self.core = NodeCore(
            None,
            RclpyTypes(),
            outputs,
            node_cfg,
            wrap_data=to_uint8_array,
            log=self._log,
            now_ns=lambda: self.get_clock().now().nanoseconds,
            publish_image_errors=True,
        )
        self.create_service(Trigger, "reset", self._on_reset, callback_group=services)
        self.create_service(Trigger, "~/drain", self._on_drain, callback_group=services)
        self.create_subscription(
            String,
            "reset_session",
            guarded(self.core.on_reset_session, self._log, "reset_session"),
            command_qos,
            callback_group=services,
        )
        diagnostics_pub = self.create_publisher(get_message("diagnostic_msgs/msg/DiagnosticArray"), "/diagnostics", 1)
        self._diagnostics = gate(diagnostics_pub.publish)
        # A steady clock: with use_sim_time the ROS clock stands still until /clock plays, and the
        # diagnostics must say "loading" before that.
        self.create_timer(
            node_cfg.diagnostics_period_s,
            guarded(self._publish_diagnostics, self._log, "diagnostics"),
            callback_group=services,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self.core.start_worker()

    # -- parameters ----------------------------------------------------------------------------

    def _declare_parameters(self) -> Config:
        config_file = self.declare_parameter(
            "config_file",
            "",
            ParameterDescriptor(
                type=ParameterType.PARAMETER_STRING,
                description="YAML config (docs/configuration.md); parameters set here override its keys",
                read_only=True,
            ),
        ).value
        try:
            base = load_config(config_file or None)
        except ReasonsegError as exc:
            raise StartupError(str(exc)) from None
        specs = {spec.name: spec for spec in parameter_specs(base)}
        self._rules = ParameterRules(specs)
        # Registered first, so declared values (-p, parameter files) pass the same checks as later sets.
        self.add_on_set_parameters_callback(self._on_set_parameters)
        overrides = {}
        try:
            for spec in specs.values():
                value = self.declare_parameter(spec.name, spec.default, parameter_descriptor(descriptor_fields(spec)))
                overrides[spec.name] = from_parameter(spec, value.value)
            config = load_config(config_file or None, overrides)
        except (ParameterException, ReasonsegError) as exc:
            raise StartupError(f"parameter error: {exc}") from None
        self._rules.config = config
        return config

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        ok, reason = self._rules.on_set((p.name, p.value) for p in parameters)
        return SetParametersResult(successful=ok, reason=reason)

    # -- input ---------------------------------------------------------------------------------

    def _subscribe(self) -> None:
        """Create the input subscriptions; image and instruction QoS can be overridden by parameters."""
        node_cfg = self.config.node
        reliability = (
            ReliabilityPolicy.BEST_EFFORT
            if node_cfg.image_qos_reliability == "best_effort"
            else ReliabilityPolicy.RELIABLE
        )
        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=node_cfg.image_qos_depth, reliability=reliability)
        command_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=node_cfg.instruction_qos_depth,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        overridable = QoSOverridingOptions.with_default_policies()
        if node_cfg.image_transport == "compressed":
            # image_transport's convention: <image topic>/compressed, after remapping the base name.
            image_type, image_topic = CompressedImage, self.resolve_topic_name("image") + "/compressed"
        else:
            image_type, image_topic = Image, "image"
        group = self._input_group
        inputs = [
            ("image", image_type, image_topic, self.core.on_image, image_qos, group, overridable),
            ("camera_info", CameraInfo, "camera_info", self.core.on_camera_info, image_qos, group, None),
            (
                "instruction",
                String,
                "instruction",
                self.core.on_instruction,
                command_qos,
                MutuallyExclusiveCallbackGroup(),
                overridable,
            ),
        ]
        # One at a time, so that a failure (a bad QoS override) leaves only subscriptions _unsubscribe knows.
        for name, msg_type, topic, callback, qos, callback_group, options in inputs:
            self._input_subscriptions.append(
                self.create_subscription(
                    msg_type,
                    topic,
                    guarded(callback, self._log, f"{name} callback"),
                    qos,
                    callback_group=callback_group,
                    qos_overriding_options=options,
                )
            )

    def _unsubscribe(self) -> None:
        for subscription in self._input_subscriptions:
            self.destroy_subscription(subscription)
        self._input_subscriptions = []

    # -- models, tracking, shutdown ------------------------------------------------------------

    def _load_models(self) -> Engine:
        if not available("pycocotools"):
            # Every round run-length encodes its masks; pycocotools has no rosdep key, so say where it comes from.
            raise MissingDependencyError(
                "pycocotools is not installed (mask run-length encoding; there is no rosdep key): in the "
                "workspace's venv, python3 -m pip install -c src/reasonseg_ros/constraints/ros.txt "
                "-e 'src/reasonseg_ros[torch]' (README: Use it in ROS 2)"
            )
        config = self.config
        # The reasoner first: a seg_token checkpoint carries the SAM weights the segmenter may take.
        start = time.perf_counter()
        self.get_logger().info(f"loading reasoner: {config.reasoner.backend}")
        reasoner = create_reasoner(config.reasoner)
        self.get_logger().info(f"reasoner ready: {reasoner.name} ({time.perf_counter() - start:.1f} s)")
        start = time.perf_counter()
        self.get_logger().info(f"loading segmenter: {config.segmenter.backend} SAM {config.segmenter.model_type}")
        segmenter = create_segmenter(config.segmenter, reasoner)
        self.get_logger().info(f"segmenter ready: {segmenter.name} ({time.perf_counter() - start:.1f} s)")
        return Engine(segmenter, reasoner, config)

    def _start_tracking(self) -> None:
        if self.config.tracking.backend == "none":
            return
        # A fresh event per thread: clearing the old one would revive a thread whose stop timed out.
        self._tracking_stop = threading.Event()
        self._tracking = threading.Thread(
            target=self.core.run_tracking, args=(self._tracking_stop,), name="reasonseg-tracking", daemon=True
        )
        self._tracking.start()

    def _stop_tracking(self, timeout_s: float = 5.0) -> None:
        self._tracking_stop.set()
        if self._tracking is not None:
            self._tracking.join(timeout=timeout_s)
            self._tracking = None

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the tracking and worker threads, then let nothing more be published (before destroying)."""
        self._stop_tracking(timeout_s)
        if not self.core.stop_worker(timeout_s):
            self.get_logger().warning(f"a round was still running after {timeout_s:.0f} s; its result is dropped")
        self._gate.close()

    def destroy_node(self) -> None:
        """Stop the threads first: a publish after the node is destroyed raises InvalidHandle."""
        if hasattr(self, "core"):
            self.close()
        super().destroy_node()

    # -- callbacks -----------------------------------------------------------------------------

    def _log(self, level: str, text: str) -> None:
        log_at(self.get_logger(), level, text)

    def _on_reset(self, request: Any, response: Any) -> Any:
        # A service callback's exception leaves rclpy's executor through spin() and ends the node.
        try:
            response.success, response.message = self.core.reset(None)
        except Exception as exc:  # the tracker's remove (SAM 2 on a GPU) may fail
            response.success, response.message = False, f"reset failed: {type(exc).__name__}: {exc}"
            self._log("error", response.message)
        return response

    def _on_drain(self, request: Any, response: Any) -> Any:
        """Answer once no instruction waits or runs (replay.launch.py calls it when the bag has ended)."""
        response.success = self.core.wait_idle(DRAIN_TIMEOUT_S)
        response.message = "idle" if response.success else f"still busy after {DRAIN_TIMEOUT_S:.0f} s"
        return response

    def _publish_diagnostics(self) -> None:
        stamp_ns = self.get_clock().now().nanoseconds
        self._diagnostics(self.core.diagnostics(stamp_ns, self.get_fully_qualified_name()))


class ReasonsegNode(_Wiring, Node):
    """The plain node: subscribes at once, answers "not ready" until :meth:`bring_up` has loaded the models."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._setup()
        try:
            self._subscribe()
        except RuntimeError as exc:
            # rclpy raises a bare RuntimeError for a QoS override that names no policy value
            # (qos_overrides./image.subscription.reliability:=sometimes): a parameter error, one line.
            self.close()
            raise StartupError(f"parameter error: {exc}") from None

    def bring_up(self) -> bool:
        """Load the models (the executor spins meanwhile, so /diagnostics says "loading") and start."""
        ok, message = self.core.configure(self._load_models)
        if not ok:
            self.get_logger().fatal(message)
            return False
        self.core.activate()
        self._start_tracking()
        self.get_logger().info(f"ready ({message}): waiting for images on 'image' and instructions on 'instruction'")
        return True


class ReasonsegLifecycleNode(_Wiring, LifecycleNode):
    """The managed node: configure loads the models, activate subscribes, deactivate stops input, cleanup frees."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._setup()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        ok, message = self.core.configure(self._load_models)  # a failure is logged by the core
        if not ok:
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: {message}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ok, message = self.core.activate()
        if not ok:
            self.get_logger().error(message)
            return TransitionCallbackReturn.FAILURE
        try:
            self._subscribe()
        except (InvalidQosOverridesError, ParameterException, RuntimeError) as exc:
            self._unsubscribe()  # an inactive node takes no input: drop what was created before the failure
            self.core.deactivate()
            self.get_logger().error(f"activate: cannot subscribe: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._start_tracking()
        self.get_logger().info("active: waiting for images on 'image' and instructions on 'instruction'")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        _, message = self.core.cleanup()
        self.get_logger().info(f"cleanup: {message}")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_input()
        return super().on_shutdown(state)

    def _stop_input(self) -> None:
        """Take no more images or instructions and stop tracking; memory and models stay."""
        self._unsubscribe()
        self._stop_tracking()
        self.core.deactivate()


def wants_lifecycle() -> bool:
    """``node.lifecycle`` from the command line / parameter files, else from ``config_file``.

    The node's class must be chosen before it exists, so a short-lived probe
    node with the same name reads the parameter overrides meant for it.
    """
    probe = Node(
        NODE_NAME,
        enable_rosout=False,
        start_parameter_services=False,
        allow_undeclared_parameters=True,
        automatically_declare_parameters_from_overrides=True,
    )
    try:
        if probe.has_parameter("node.lifecycle"):
            value = probe.get_parameter("node.lifecycle").value
            return value is True or str(value).lower() == "true"
        config_file = probe.get_parameter("config_file").value if probe.has_parameter("config_file") else ""
    finally:
        probe.destroy_node()
    try:
        return load_config(config_file or None).node.lifecycle
    except ReasonsegError:
        return False  # the node itself reports the broken config


def _spin(executor: MultiThreadedExecutor) -> None:
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def main(args: list[str] | None = None) -> int:
    """Entry point of ``reasonseg_node``; exit code 1 on a start-up error (one line on stderr)."""
    rclpy.init(args=args)
    node: ReasonsegNode | ReasonsegLifecycleNode | None = None
    executor: MultiThreadedExecutor | None = None
    code = 0
    try:
        lifecycle = wants_lifecycle()
        node = ReasonsegLifecycleNode() if lifecycle else ReasonsegNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        spinner = threading.Thread(target=_spin, args=(executor,), name="reasonseg-executor", daemon=True)
        spinner.start()
        if not lifecycle and not node.bring_up():
            code = 1
        else:
            while spinner.is_alive():
                spinner.join(0.5)
    except StartupError as exc:
        print(f"reasonseg_node: {exc}", file=sys.stderr)
        code = 1
    except (InvalidQosOverridesError, ParameterException) as exc:
        print(f"reasonseg_node: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        # Executor first (no new callbacks), then the node's threads (destroy_node stops them), then the node.
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
