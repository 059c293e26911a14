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
only caller of the engine's ``handle``; ``run_tracking`` runs on a tracking
thread and publishes every remembered object on the newest frame
(``tracks/masks``, ``tracks/detections``) at ``tracking.rate_hz``.
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
from reasonseg_ros.types import Frame, Instruction, RoundResult, TrackStep

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
class TrackDetection:
    """What ``objects_to_detections`` reads, for a tracked object (``object_id`` may be ``"session/id"``)."""

    object_id: int | str
    label: str
    box: tuple[float, float, float, float]
    score: float


@dataclass(frozen=True)
class Pending:
    instruction: Instruction
    received_ns: int


class NodeCore:
    def __init__(
        self,
        engine: Engine | None,
        types: Mapping[str, Any],
        outputs: Outputs,
        config: NodeConfig | None = None,
        *,
        wrap_data: Callable[[np.ndarray], Any] | None = None,
        log: Callable[[str, str], None] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
        publish_image_errors: bool = False,
    ) -> None:
        """Wrap ``engine`` (None: the ROS node loads it later through :meth:`configure`).

        ``publish_image_errors``: a refused image also becomes an error result naming the frame (the ROS
        node; bag replay counts refused images in ``frames_skipped`` instead).
        """
        if engine is None and config is None:
            raise ValueError("NodeCore without an engine needs its NodeConfig")
        self.engine = engine
        self.state = "active" if engine is not None else "unconfigured"
        """unconfigured, loading, inactive, active or failed (models could not be loaded)."""
        self.types = types
        self.outputs = outputs
        self.config = config or engine.config.node  # type: ignore[union-attr]
        self._wrap_data = wrap_data
        self._log = log or (lambda level, text: None)
        self._now_ns = now_ns
        self._publish_image_errors = publish_image_errors
        self._queue: deque[Pending] = deque()
        self._in_flight = False
        self._ready = threading.Condition()
        self._latencies: deque[float] = deque(maxlen=self.config.latency_window)
        self._frame_ages: deque[float] = deque(maxlen=self.config.latency_window)
        self.camera_frame_id = ""
        self.counters = {
            "frames_received": 0,
            "frames_rejected": 0,
            "frames_ignored": 0,
            "instructions_received": 0,
            "instructions_dropped": 0,
            "rounds_ok": 0,
            "rounds_failed": 0,
            "worker_errors": 0,
        }
        self._worker: threading.Thread | None = None
        self._worker_stop = threading.Event()
        self.last_error = ""
        self.last_image_error = ""
        self.frame_skip_reasons: dict[str, int] = {}
        """Count of skipped frames per reason (at most :data:`MAX_SKIP_REASONS` reasons, then "other")."""
        self._id_prefix = f"auto-{secrets.token_hex(3)}"
        self._ids_made = 0
        self._track_latencies: deque[float] = deque(maxlen=self.config.latency_window)
        self._track_stamps: deque[int] = deque(maxlen=self.config.latency_window)
        self._last_track: TrackStep | None = None
        self.tracking_counters = {"tracking_steps": 0, "tracking_errors": 0}
        self.last_tracking_error = ""
        self.last_tracking_warning = ""
        self._tracking_failing = False

    # -- subscription callbacks: return at once -------------------------------------------------

    def on_image(self, msg: Any) -> None:
        """Convert and keep the frame; a malformed image is counted, logged and skipped."""
        engine = self.engine
        if self.state != "active" or engine is None:
            self.counters["frames_ignored"] += 1
            return
        try:
            image = image_to_rgb(msg)
            stamp = msg.header.stamp
            frame = Frame(image, stamp.sec * 1_000_000_000 + stamp.nanosec, msg.header.frame_id or self.camera_frame_id)
            engine.submit_frame(frame)
        except InputError as exc:
            self.counters["frames_rejected"] += 1
            reason = cap_text(str(exc), SKIP_REASON_BYTES)  # an encoding name comes from the sender: bounded
            key = reason
            if key not in self.frame_skip_reasons and len(self.frame_skip_reasons) >= MAX_SKIP_REASONS:
                key = "other reasons"
            self.frame_skip_reasons[key] = self.frame_skip_reasons.get(key, 0) + 1
            if reason != self.last_image_error:  # once per kind of problem, not at camera rate
                self._image_error(msg, reason)
            self.last_image_error = self.last_error = reason
            return
        self.counters["frames_received"] += 1

    def _image_error(self, msg: Any, problem: str) -> None:
        """Log and publish (as an error result) an image problem, naming the frame it came in."""
        try:
            stamp = msg.header.stamp
            where = f"frame '{msg.header.frame_id or self.camera_frame_id}' at {stamp.sec}.{stamp.nanosec:09d} s"
        except AttributeError:
            where = "a message without a header"
        text = f"image skipped ({where}): {problem}"
        self._log("warn", text)
        if self._publish_image_errors:
            result = RoundResult(self.config.default_session, "")
            result.error_kind, result.error = "image", text
            self.publish(result)

    def on_camera_info(self, msg: Any) -> None:
        """Remember the camera's frame id for images whose header has none."""
        self.camera_frame_id = msg.header.frame_id

    def on_instruction(self, msg: Any, assigned_id: str | None = None) -> None:
        """Queue an instruction; when the queue is full the oldest waiting one is dropped, with an error result.

        Every result of the instruction (its round, a refusal, a drop) echoes its envelope's ``id``; without one
        it gets ``assigned_id`` or a made-up one, flagged ``id_assigned``.
        """
        self.counters["instructions_received"] += 1
        if self.state != "active":
            self._publish_error(
                RoundResult(self.config.default_session, str(msg.data)[:1000]), "not_ready", self._not_ready()
            )
            return
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
            engine = self.engine
            if engine is None:  # cleaned up while this instruction waited
                result = RoundResult(pending.instruction.session, pending.instruction.text)
                result.error_kind, result.error = "not_ready", self._not_ready()
            else:
                result = engine.handle(pending.instruction)
            self.publish(result)
        finally:
            with self._ready:
                self._in_flight = False
                self._ready.notify_all()  # wait_idle
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
        """The worker thread's loop; an exception (a publisher, a logger) is logged and counted and the loop goes on."""
        while not stop.is_set():
            try:
                self.process_next(timeout=poll_s)
            except Exception as exc:  # one failed round must not end the worker
                self.counters["worker_errors"] += 1
                self.last_error = f"worker: {type(exc).__name__}: {exc}"
                try:
                    self._log("error", f"{self.last_error} (the worker goes on)")
                except Exception:  # a broken logger must not end the worker either
                    pass
                stop.wait(poll_s)  # no busy loop if every round fails the same way

    def start_worker(self, poll_s: float = 0.1) -> None:
        """Run :meth:`run` on a daemon thread (the ROS node's worker)."""
        self._worker_stop.clear()
        self._worker = threading.Thread(
            target=self.run, args=(self._worker_stop, poll_s), name="reasonseg-worker", daemon=True
        )
        self._worker.start()

    def stop_worker(self, timeout_s: float = 5.0) -> bool:
        """Stop the worker thread; False when a round is still running after ``timeout_s``."""
        self._worker_stop.set()
        with self._ready:
            self._ready.notify_all()
        if self._worker is None:
            return True
        self._worker.join(timeout=timeout_s)
        return not self._worker.is_alive()

    @property
    def worker_alive(self) -> bool | None:
        """Whether the worker thread runs; None when none was started (bag replay drives process_next itself)."""
        return None if self._worker is None else self._worker.is_alive()

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until no instruction waits or runs (True), or ``timeout_s`` passes (False).

        Also returns (False while work is left) once :meth:`stop_worker` was called: the queue will not
        drain any more, and a ``~/drain`` call waiting here would keep rclpy's executor thread, and with it
        the process, alive after shutdown.
        """
        with self._ready:
            self._ready.wait_for(
                lambda: (not self._queue and not self._in_flight) or self._worker_stop.is_set(), timeout=timeout_s
            )
            return not self._queue and not self._in_flight

    # -- lifecycle -----------------------------------------------------------------------------
    # A core built with an engine is ``active`` at once (bag replay, tests). The ROS node builds it
    # without one (``unconfigured``) so that /diagnostics can say ``loading`` while configure() loads
    # the models; activate() starts taking input, deactivate() stops it and keeps the memory, cleanup()
    # drops the models. Input while not active is not buffered: an instruction gets a ``not_ready``
    # error round at once.

    def configure(self, load: Callable[[], Engine]) -> tuple[bool, str]:
        """Load the models with ``load`` (state ``loading`` meanwhile); on success the core is ``inactive``."""
        self.state = "loading"
        start = time.perf_counter()
        try:
            engine = load()
        except Exception as exc:  # a failed load is reported, never raised into an executor
            self.state = "failed"
            self.last_error = f"loading the models failed: {exc}"
            self._log("error", self.last_error)
            return False, self.last_error
        self.engine = engine
        self.state = "inactive"
        return True, f"models loaded in {time.perf_counter() - start:.1f} s"

    def activate(self) -> tuple[bool, str]:
        """Start taking images and instructions."""
        if self.engine is None:
            return False, "cannot activate: no models loaded (configure first)"
        self.state = "active"
        return True, "active"

    def deactivate(self) -> tuple[bool, str]:
        """Stop taking input; the memory, the models and the rounds already queued stay."""
        if self.engine is not None:
            self.state = "inactive"
        return True, "inactive: not taking input, memory kept"

    def cleanup(self, timeout_s: float = 30.0) -> tuple[bool, str]:
        """Drop the models (and with them the memory) once queued rounds are done."""
        self.state = "unconfigured"
        drained = self.wait_idle(timeout_s)
        self.engine = None
        return True, "models released" + ("" if drained else " (a round was still running)")

    def _not_ready(self) -> str:
        return {
            "loading": "not ready: the models are still loading",
            "failed": f"not ready: {self.last_error}",
            "inactive": "not ready: the node is inactive (lifecycle)",
        }.get(self.state, "not ready: no models loaded (lifecycle node not configured)")

    @property
    def idle(self) -> bool:
        """No instruction waiting and none running."""
        with self._ready:
            return not self._queue and not self._in_flight

    @property
    def queue_depth(self) -> int:
        with self._ready:
            return len(self._queue)

    # -- tracking thread -----------------------------------------------------------------------

    def track_once(self, force: bool = False) -> TrackStep | None:
        """One tracking step on the newest frame when one is due; publishes it. None when no step ran.

        ``force``: as :meth:`Engine.track_newest` (deterministic replay steps every frame).
        """
        engine = self.engine
        step = engine.track_newest(force=force) if engine is not None else None
        if step is not None:
            self.publish_tracks(step)
        return step

    def run_tracking(self, stop: threading.Event) -> None:
        """The tracking thread's loop at ``tracking.rate_hz``; returns at once when tracking is off.

        Never dies of one bad step: a failure is counted and logged, and the
        loop goes on with the next frame.
        """
        while not stop.is_set():
            engine = self.engine  # None while the models are not loaded
            if engine is not None and engine.tracker is None:
                return
            poll_s = 0.2 / engine.config.tracking.rate_hz if engine else 0.1  # no step now: look again soon
            try:
                step = self.track_once()
            except Exception as exc:  # publishing failed: keep the loop
                step = None
                self.tracking_counters["tracking_errors"] += 1
                self._tracking_error(f"publishing tracks failed: {type(exc).__name__}: {exc}")
            stop.wait(engine.seconds_to_next_step() if step is not None and engine else poll_s)

    def publish_tracks(self, step: TrackStep) -> None:
        """``tracks/masks`` and ``tracks/detections`` of a step; a failed step is counted and publishes nothing.

        The label image holds the objects of ``node.default_session`` (ids are
        per session, so only one session's fit one image); the detections hold
        every visible object, with id ``"<id>"`` in the default session and
        ``"<session>/<id>"`` in others.
        """
        for warning in step.warnings:
            self.last_tracking_warning = warning
            self._log("warn", warning)
        self._tracking_failing = bool(step.error)
        if step.error:
            self.tracking_counters["tracking_errors"] += 1
            self._tracking_error(f"tracking step failed: {step.error}")
            return
        self.tracking_counters["tracking_steps"] += 1
        self._last_track = step
        self._track_latencies.append(step.latency_ms)
        self._track_stamps.append(step.stamp_ns)
        out = self.outputs
        header = self.header(step.stamp_ns, step.frame_id or self.camera_frame_id)
        visible = [o for o in step.objects if o.mask is not None and o.box is not None]
        if out.tracks_masks:
            mine = [o for o in visible if o.session == self.config.default_session]
            masks = np.stack([o.mask for o in mine]) if mine else np.zeros((0, *step.image_size), dtype=bool)
            labels = label_image(masks, [o.object_id for o in mine])
            out.tracks_masks(label_image_to_msg(self.types["sensor_msgs/msg/Image"], header, labels, self._wrap_data))
        if out.tracks_detections:
            entries = [
                TrackDetection(
                    o.object_id if o.session == self.config.default_session else f"{o.session}/{o.object_id}",
                    o.label,
                    o.box,  # type: ignore[arg-type]
                    o.score,
                )
                for o in visible
            ]
            out.tracks_detections(objects_to_detections(self.types, header, entries))  # type: ignore[arg-type]

    def _tracking_error(self, message: str) -> None:
        if message != self.last_tracking_error:  # once per kind of failure, not at tracking rate
            try:
                self._log("warn", message)
            except Exception:  # called from the tracking loop's own handler: a broken logger must not end it
                pass
        self.last_tracking_error = message

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
        engine = self.engine  # read once: a lifecycle cleanup on another thread may drop it meanwhile
        if engine is None:
            return False, self._not_ready()
        cleared = engine.reset(session or None)
        which = f"session '{session}'" if session else "all sessions"
        return True, f"cleared {which} ({cleared} with memory)"

    def on_reset_session(self, msg: Any) -> None:
        """Clear the session named by a std_msgs/String (the Trigger service has no field to name one)."""
        _, message = self.reset(str(msg.data).strip() or None)
        self._log("info", message)

    def health(self) -> tuple[int, str]:
        """Diagnostic level (0 OK, 1 WARN, 2 ERROR) and a summary line."""
        if self.worker_alive is False and not self._worker_stop.is_set():
            return 2, f"worker thread stopped: no instruction will be answered ({self.last_error or 'no error seen'})"
        if self.state == "failed":
            return 2, self.last_error
        if self.state == "loading":
            return 1, "loading the models"
        if self.state == "unconfigured":
            return 1, "unconfigured (lifecycle): configure loads the models"
        if self.state == "inactive":
            return 0, "inactive (lifecycle): not taking input"
        if self.queue_depth >= self.config.instruction_queue_size:
            return 1, "instruction queue full: instructions are being dropped"
        if self.counters["rounds_failed"] and self.last_error:
            return 1, f"last error: {self.last_error}"
        if not self.counters["frames_received"]:
            return 1, "no camera frame received yet"
        if self._tracking_failing:
            return 1, f"tracking: {self.last_tracking_error}"
        return 0, "running"

    def diagnostics(self, stamp_ns: int, name: str) -> Any:
        """A ``diagnostic_msgs/DiagnosticArray`` with this node's status."""
        level, message = self.health()
        values = [self.types["diagnostic_msgs/msg/KeyValue"](key=k, value=v) for k, v in self.status().items()]
        status_cls = self.types["diagnostic_msgs/msg/DiagnosticStatus"]
        # The class constants have the field's own type (bytes in rclpy, int in rosbags).
        constant = (status_cls.OK, status_cls.WARN, status_cls.ERROR)[level]
        status = status_cls(level=constant, name=name, message=message, hardware_id="reasonseg", values=values)
        return self.types["diagnostic_msgs/msg/DiagnosticArray"](header=self.header(stamp_ns, ""), status=[status])

    def status(self) -> dict[str, str]:
        """Key/value pairs for ``/diagnostics``."""
        engine = self.engine
        values = {
            "state": self.state,
            "segmenter": getattr(getattr(engine, "segmenter", None), "name", "-"),
            "reasoner": getattr(getattr(engine, "reasoner", None), "name", "-"),
            "queue_depth": str(self.queue_depth),
            "queue_size": str(self.config.instruction_queue_size),
            "encoder_runs": str(getattr(engine, "encoder_runs", 0)),
            "last_error": self.last_error,
            "worker_alive": {None: "n/a", True: "true", False: "false"}[self.worker_alive],
        }
        values.update({k: str(v) for k, v in self.counters.items()})
        windows = (
            ("round_latency_ms", self._latencies),
            ("frame_age_ms", self._frame_ages),
            ("tracking_latency_ms", self._track_latencies),
        )
        for name, window in windows:
            if window:
                p50, p95 = np.percentile(np.fromiter(window, dtype=float), [50, 95])
                values[f"{name}_p50"], values[f"{name}_p95"] = f"{p50:.1f}", f"{p95:.1f}"
        values.update(self.tracking_status())
        return values

    def tracking_status(self) -> dict[str, str]:
        """The tracking part of ``/diagnostics`` (empty when tracking is off)."""
        engine = self.engine
        tracker = getattr(engine, "tracker", None)
        if tracker is None:
            return {}
        values = {"tracker": getattr(tracker, "name", "?")}
        values.update({k: str(v) for k, v in self.tracking_counters.items()})
        values["tracker_failures"] = str(engine.tracking_errors)  # steps and seeds, rounds included
        stamps = self._track_stamps
        if len(stamps) >= 2 and stamps[-1] > stamps[0]:
            values["tracking_rate_hz"] = f"{(len(stamps) - 1) * 1e9 / (stamps[-1] - stamps[0]):.1f}"
        counts = {"visible": 0, "occluded": 0, "lost": 0}
        for obj in self._last_track.objects if self._last_track else ():
            counts[obj.status] += 1
        values["objects_tracked"] = str(sum(counts.values()))
        values.update({f"objects_{status}": str(n) for status, n in counts.items()})
        values["last_tracking_error"] = self.last_tracking_error
        values["last_tracking_warning"] = self.last_tracking_warning
        return values
