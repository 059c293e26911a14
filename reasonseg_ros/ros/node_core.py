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

"""The node's behaviour, free of rclpy: callbacks in, published messages out.

The rclpy node (``ros/node.py``) only wires topics, parameters, the service
and threads to this class; bag replay drives the very same class with
publish callables that write to a bag. Message classes come in through
``types``, a mapping from ROS type names to classes (rosbags'
``typestore.types``, or the rclpy node's own), so everything here is tested
without ROS.

Threads: ``on_image`` and ``on_instruction`` run in subscription callbacks
and return at once; ``process_next`` runs on the worker thread and is the
only caller of the engine's ``handle``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from reasonseg_ros.config import NodeConfig
from reasonseg_ros.engine import Engine
from reasonseg_ros.errors import InputError
from reasonseg_ros.limits import cap_text, echo
from reasonseg_ros.masks import label_image
from reasonseg_ros.messages import (
    image_to_rgb,
    label_image_to_msg,
    numpy_to_image,
    objects_to_detections,
    parse_instruction,
    rejection_text,
    round_to_json,
)
from reasonseg_ros.messages.result_json import readable_envelope_id
from reasonseg_ros.overlay import overlay_of
from reasonseg_ros.types import Frame, Instruction, RoundResult

Publish = Callable[[Any], None]
SKIP_REASON_BYTES = 512
MAX_SKIP_REASONS = 16
"""Distinct frame-skip reasons counted; later new ones are counted together, so a bad camera cannot grow the map."""


@dataclass
class Outputs:
    """Where each topic's messages go; None turns a topic off."""

    masks: Publish | None = None
    detections: Publish | None = None
    result: Publish | None = None
    rejection: Publish | None = None
    overlay: Publish | None = None
    overlay_wanted: Callable[[], bool] = lambda: False
    """Whether anyone subscribes to the overlay (it is drawn only then)."""
    tracks_masks: Publish | None = None
    """mono16 label image of every tracked object on the tracked frame, at tracking rate."""
    tracks_detections: Publish | None = None
    """Detection2DArray of every tracked object (id = object id, score = track score), at tracking rate."""


@dataclass(frozen=True)
class Pending:
    instruction: Instruction
    received_ns: int


class NodeCore:
    def __init__(
        self,
        engine: Engine,
        types: Mapping[str, Any],
        outputs: Outputs,
        config: NodeConfig | None = None,
        *,
        wrap_data: Callable[[np.ndarray], Any] | None = None,
        log: Callable[[str, str], None] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.engine = engine
        self.types = types
        self.outputs = outputs
        self.config = config or engine.config.node
        self._wrap_data = wrap_data
        self._log = log or (lambda level, text: None)
        self._now_ns = now_ns
        self._queue: deque[Pending] = deque()
        self._in_flight = False
        self._ready = threading.Condition()
        self._latencies: deque[float] = deque(maxlen=self.config.latency_window)
        self._frame_ages: deque[float] = deque(maxlen=self.config.latency_window)
        self.camera_frame_id = ""
        self.counters = {
            "frames_received": 0,
            "frames_rejected": 0,
            "instructions_received": 0,
            "instructions_dropped": 0,
            "rounds_ok": 0,
            "rounds_failed": 0,
        }
        self.last_error = ""
        self.last_image_error = ""
        self.frame_skip_reasons: dict[str, int] = {}
        """Count of skipped frames per reason (at most :data:`MAX_SKIP_REASONS` reasons, then "other")."""
        self._id_prefix = f"auto-{secrets.token_hex(3)}"
        self._ids_made = 0

    # -- subscription callbacks: return at once -------------------------------------------------

    def on_image(self, msg: Any) -> None:
        """Convert and keep the frame; a malformed image is counted, logged and skipped."""
        try:
            image = image_to_rgb(msg)
            stamp = msg.header.stamp
            frame = Frame(image, stamp.sec * 1_000_000_000 + stamp.nanosec, msg.header.frame_id or self.camera_frame_id)
            self.engine.submit_frame(frame)
        except InputError as exc:
            self.counters["frames_rejected"] += 1
            reason = cap_text(str(exc), SKIP_REASON_BYTES)  # an encoding name comes from the sender: bounded
            key = reason
            if key not in self.frame_skip_reasons and len(self.frame_skip_reasons) >= MAX_SKIP_REASONS:
                key = "other reasons"
            self.frame_skip_reasons[key] = self.frame_skip_reasons.get(key, 0) + 1
            if reason != self.last_image_error:  # once per kind of problem, not at camera rate
                self._log("warn", f"image skipped: {reason}")
            self.last_image_error = self.last_error = reason
            return
        self.counters["frames_received"] += 1

    def on_camera_info(self, msg: Any) -> None:
        """Remember the camera's frame id for images whose header has none."""
        self.camera_frame_id = msg.header.frame_id

    def on_instruction(self, msg: Any, assigned_id: str | None = None) -> None:
        """Queue an instruction; when the queue is full the oldest waiting one is dropped, with an error result.

        Every result of the instruction (its round, a refusal, a drop) echoes its envelope's ``id``; without one
        it gets ``assigned_id`` or a made-up one, flagged ``id_assigned``.
        """
        self.counters["instructions_received"] += 1
        try:
            instruction = parse_instruction(msg.data, self.config.default_session)
        except InputError as exc:
            client_id = readable_envelope_id(msg.data)
            refused = RoundResult(
                self.config.default_session,
                echo(msg.data),
                instruction_id=client_id or assigned_id or self.new_id(),
                id_assigned=client_id is None,
            )
            self._publish_error(refused, exc.kind, str(exc))
            return
        if instruction.id is None:
            instruction = replace(instruction, id=assigned_id or self.new_id(), id_assigned=True)
        dropped = None
        with self._ready:
            if len(self._queue) >= self.config.instruction_queue_size:
                dropped = self._queue.popleft()
            self._queue.append(Pending(instruction, self._now_ns()))
            self._ready.notify()
        if dropped is not None:
            self.counters["instructions_dropped"] += 1
            size = self.config.instruction_queue_size
            lost = dropped.instruction
            self._publish_error(
                RoundResult(
                    lost.session,
                    echo(lost.text),
                    instruction_id=lost.id,
                    id_assigned=lost.id_assigned,
                    requested_stamp_ns=lost.stamp_ns,
                ),
                "dropped",
                f"dropped: {size} newer instructions arrived while the model was busy "
                f"(node.instruction_queue_size is {size})",
            )

    def new_id(self) -> str:
        """A correlation id for an instruction whose client gave none: unique per node run."""
        with self._ready:
            self._ids_made += 1
            return f"{self._id_prefix}-{self._ids_made}"

    # -- worker ------------------------------------------------------------------------------

    def process_next(self, timeout: float | None = 0.0) -> bool:
        """Run the oldest queued instruction, waiting up to ``timeout`` s for one; False when none came."""
        with self._ready:
            if not self._queue and timeout != 0.0:
                self._ready.wait_for(lambda: bool(self._queue), timeout=timeout)
            if not self._queue:
                return False
            pending = self._queue.popleft()
            self._in_flight = True
        try:
            result = self.engine.handle(pending.instruction)
            self.publish(result)
        finally:
            with self._ready:
                self._in_flight = False
        if result.ok:
            self.counters["rounds_ok"] += 1
            self._latencies.append(result.timings_ms["total"])
            if result.frame_stamp_ns:
                self._frame_ages.append((self._now_ns() - result.frame_stamp_ns) / 1e6)
        else:
            self.counters["rounds_failed"] += 1
            self.last_error = result.error or ""
            self._log("warn", f"round failed ({result.error_kind}): {result.error}")
        return True

    def run(self, stop: threading.Event, poll_s: float = 0.1) -> None:
        """The worker thread's loop."""
        while not stop.is_set():
            self.process_next(timeout=poll_s)

    @property
    def idle(self) -> bool:
        """No instruction waiting and none running."""
        with self._ready:
            return not self._queue and not self._in_flight

    @property
    def queue_depth(self) -> int:
        with self._ready:
            return len(self._queue)

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, result: RoundResult) -> None:
        """Publish a round: masks, detections, overlay and rejection when it succeeded; the result JSON always."""
        out, cfg = self.outputs, self.config
        if result.ok and result.image_size is not None:
            header = self.header(result.frame_stamp_ns or 0, result.frame_id)
            masks = result.masks if result.masks is not None else np.zeros((0, *result.image_size), dtype=bool)
            if out.masks and cfg.publish_masks:
                labels = label_image(masks, [o.object_id for o in result.objects])
                out.masks(label_image_to_msg(self.types["sensor_msgs/msg/Image"], header, labels, self._wrap_data))
            if out.detections and cfg.publish_detections:
                out.detections(objects_to_detections(self.types, header, result.objects))
            if out.overlay and cfg.publish_overlay and result.image is not None and out.overlay_wanted():
                picture = overlay_of(result)
                out.overlay(
                    numpy_to_image(self.types["sensor_msgs/msg/Image"], header, picture, "rgb8", self._wrap_data)
                )
            text = rejection_text(result)
            if text and out.rejection and cfg.publish_rejection:
                out.rejection(self.string(text))
        if out.result and cfg.publish_result:
            out.result(self.string(round_to_json(result, include_masks=cfg.result_masks)))

    def _publish_error(self, result: RoundResult, kind: str, message: str) -> None:
        result.error_kind, result.error = kind, message
        self.counters["rounds_failed"] += 1
        self.last_error = message
        self._log("warn", message)
        self.publish(result)

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        time_cls = self.types["builtin_interfaces/msg/Time"]
        stamp = time_cls(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
        return self.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def string(self, text: str) -> Any:
        return self.types["std_msgs/msg/String"](data=text)

    # -- service and diagnostics ------------------------------------------------------------

    def reset(self, session: str | None = None) -> tuple[bool, str]:
        """Clear the memory of one session (all when None or empty)."""
        cleared = self.engine.reset(session or None)
        which = f"session '{session}'" if session else "all sessions"
        return True, f"cleared {which} ({cleared} with memory)"

    def on_reset_session(self, msg: Any) -> None:
        """Clear the session named by a std_msgs/String (the Trigger service has no field to name one)."""
        _, message = self.reset(str(msg.data).strip() or None)
        self._log("info", message)

    def health(self) -> tuple[int, str]:
        """Diagnostic level (0 OK, 1 WARN) and a summary line."""
        if self.queue_depth >= self.config.instruction_queue_size:
            return 1, "instruction queue full: instructions are being dropped"
        if self.counters["rounds_failed"] and self.last_error:
            return 1, f"last error: {self.last_error}"
        if not self.counters["frames_received"]:
            return 1, "no camera frame received yet"
        return 0, "running"

    def diagnostics(self, stamp_ns: int, name: str) -> Any:
        """A ``diagnostic_msgs/DiagnosticArray`` with this node's status."""
        level, message = self.health()
        values = [self.types["diagnostic_msgs/msg/KeyValue"](key=k, value=v) for k, v in self.status().items()]
        status_cls = self.types["diagnostic_msgs/msg/DiagnosticStatus"]
        # The class constants have the field's own type (bytes in rclpy, int in rosbags).
        constant = status_cls.OK if level == 0 else status_cls.WARN
        status = status_cls(level=constant, name=name, message=message, hardware_id="reasonseg", values=values)
        return self.types["diagnostic_msgs/msg/DiagnosticArray"](header=self.header(stamp_ns, ""), status=[status])

    def status(self) -> dict[str, str]:
        """Key/value pairs for ``/diagnostics``."""
        values = {
            "segmenter": getattr(self.engine.segmenter, "name", "?"),
            "reasoner": getattr(self.engine.reasoner, "name", "?"),
            "queue_depth": str(self.queue_depth),
            "queue_size": str(self.config.instruction_queue_size),
            "encoder_runs": str(self.engine.encoder_runs),
            "last_error": self.last_error,
        }
        values.update({k: str(v) for k, v in self.counters.items()})
        for name, window in (("round_latency_ms", self._latencies), ("frame_age_ms", self._frame_ages)):
            if window:
                p50, p95 = np.percentile(np.fromiter(window, dtype=float), [50, 95])
                values[f"{name}_p50"], values[f"{name}_p95"] = f"{p50:.1f}", f"{p95:.1f}"
        return values
