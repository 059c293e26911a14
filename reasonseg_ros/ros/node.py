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

"""The rclpy node: parameters, topics, the reset service, diagnostics and the worker thread.

Behaviour lives in :class:`~reasonseg_ros.ros.node_core.NodeCore`; this file
only wires ROS to it. Run with ``ros2 run reasonseg_ros reasonseg_node``.
"""

from __future__ import annotations

import array
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosidl_runtime_py.utilities import get_message
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from reasonseg_ros.config import Config, load_config
from reasonseg_ros.engine import Engine
from reasonseg_ros.errors import ReasonsegError
from reasonseg_ros.reasoner import create_reasoner
from reasonseg_ros.ros.node_core import NodeCore, Outputs
from reasonseg_ros.ros.params import ParameterSpec, from_parameter, parameter_specs
from reasonseg_ros.ros.runtime import log_at
from reasonseg_ros.segmenter import create_segmenter

PARAMETER_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


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


class ReasonsegNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("reasonseg", **kwargs)
        self.config, self._specs = self._declare_parameters()
        self.engine = self._load_models(self.config)
        node_cfg = self.config.node
        self._stop = threading.Event()

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
        self._overlay_pub = self.create_publisher(Image, "overlay", 1)
        outputs = Outputs(
            masks=self.create_publisher(Image, "masks", 10).publish,
            detections=self.create_publisher(Detection2DArray, "detections", 10).publish,
            result=self.create_publisher(String, "result", command_qos).publish,
            rejection=self.create_publisher(String, "rejection", command_qos).publish,
            overlay=self._overlay_pub.publish,
            overlay_wanted=lambda: self._overlay_pub.get_subscription_count() > 0,
        )
        self.core = NodeCore(
            self.engine,
            RclpyTypes(),
            outputs,
            node_cfg,
            wrap_data=to_uint8_array,
            log=self._log,
            now_ns=lambda: self.get_clock().now().nanoseconds,
        )
        # Separate groups: images never wait behind instructions, and the service
        # and diagnostics answer while the worker thread runs a model.
        self.create_subscription(
            Image, "image", self.core.on_image, image_qos, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.create_subscription(
            CameraInfo,
            "camera_info",
            self.core.on_camera_info,
            image_qos,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.create_subscription(
            String,
            "instruction",
            self.core.on_instruction,
            command_qos,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        services = ReentrantCallbackGroup()
        self.create_service(Trigger, "reset", self._on_reset, callback_group=services)
        self.create_subscription(
            String, "reset_session", self.core.on_reset_session, command_qos, callback_group=services
        )
        self._diagnostics_pub = self.create_publisher(
            get_message("diagnostic_msgs/msg/DiagnosticArray"), "/diagnostics", 1
        )
        self.create_timer(node_cfg.diagnostics_period_s, self._publish_diagnostics, callback_group=services)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._worker = threading.Thread(target=self.core.run, args=(self._stop,), name="reasonseg-worker", daemon=True)
        self._worker.start()
        self.get_logger().info("ready: waiting for images on 'image' and instructions on 'instruction'")

    def _declare_parameters(self) -> tuple[Config, dict[str, ParameterSpec]]:
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
            self._fatal(str(exc))
        specs = {spec.name: spec for spec in parameter_specs(base)}
        overrides = {}
        for spec in specs.values():
            descriptor = ParameterDescriptor(
                type=PARAMETER_TYPES[spec.kind], description=spec.description, read_only=spec.read_only
            )
            value = self.declare_parameter(spec.name, spec.default, descriptor).value
            overrides[spec.name] = from_parameter(spec, value)
        try:
            return load_config(config_file or None, overrides), specs
        except ReasonsegError as exc:
            self._fatal(str(exc))

    def _load_models(self, config: Config) -> Engine:
        logger = self.get_logger()
        try:
            # The reasoner first: a seg_token checkpoint carries the SAM weights the segmenter may take.
            start = time.perf_counter()
            logger.info(f"loading reasoner: {config.reasoner.backend}")
            reasoner = create_reasoner(config.reasoner)
            logger.info(f"reasoner ready: {reasoner.name} ({time.perf_counter() - start:.1f} s)")
            start = time.perf_counter()
            logger.info(f"loading segmenter: {config.segmenter.backend} SAM {config.segmenter.model_type}")
            segmenter = create_segmenter(config.segmenter, reasoner)
            logger.info(f"segmenter ready: {segmenter.name} ({time.perf_counter() - start:.1f} s)")
        except ReasonsegError as exc:
            self._fatal(str(exc))
        return Engine(segmenter, reasoner, config)

    def _fatal(self, message: str) -> None:
        self.get_logger().fatal(message)
        raise SystemExit(message)

    def _log(self, level: str, text: str) -> None:
        log_at(self.get_logger(), level, text)

    def _on_reset(self, request: Any, response: Any) -> Any:
        response.success, response.message = self.core.reset(None)
        return response

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        changes = {}
        for parameter in parameters:
            spec = self._specs.get(parameter.name)
            if spec is None:
                continue
            if spec.choices and parameter.value not in spec.choices:
                return SetParametersResult(successful=False, reason=f"{parameter.name} must be one of {spec.choices}")
            changes[parameter.name] = from_parameter(spec, parameter.value)
        for name, value in changes.items():
            section, key = name.split(".", 1)
            setattr(getattr(self.config, section), key, value)
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self) -> None:
        stamp_ns = self.get_clock().now().nanoseconds
        self._diagnostics_pub.publish(self.core.diagnostics(stamp_ns, self.get_fully_qualified_name()))

    def destroy_node(self) -> None:
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = ReasonsegNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SystemExit as exc:
        print(f"reasonseg_node: {exc}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
