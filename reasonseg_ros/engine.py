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

"""One round: frame + instruction + memory -> :class:`RoundResult`.

``submit_frame`` only appends to a small ring buffer, so a camera callback
never waits for a model. ``handle`` runs a round on the caller's thread
(the node's worker, the replay loop, the CLI) and never raises for bad input
or a failing model: every failure becomes an error round with its stage.

Live memory (docs/tracking.md): with a tracker, ``track_newest`` carries every
remembered object of every session to the newest frame and writes its live
state into the memory. Rounds and tracking share one lock; a round has
priority (the tracking loop skips its turn while a round waits or segments),
so a round waits at most for the one tracking step already running. The
reasoner runs outside that lock, so tracks keep flowing during a slow model.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from reasonseg_ros.config import Config
from reasonseg_ros.errors import InputError, ReasonsegError
from reasonseg_ros.limits import cap_text, echo
from reasonseg_ros.masks import box_iou, decode_rle, encode_rle, mask_iou, mask_to_box
from reasonseg_ros.memory import DialogueMemory, MemoryView, Sighting, last_seen_ns
from reasonseg_ros.reasoner import Reasoner, create_reasoner
from reasonseg_ros.segmenter import ImageEmbedding, Segmenter, create_segmenter
from reasonseg_ros.tracker import Tracker, create_tracker
from reasonseg_ros.types import (
    Frame,
    Instruction,
    ObjectStatus,
    Prompt,
    Rejection,
    RoundResult,
    SegmentedObject,
    Target,
    TrackedObject,
    TrackStep,
)

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE_S = 0.1
"""Stamp tolerance before the camera's rate is known (``engine.stamp_tolerance_s: null``)."""
ERROR_BYTES = 1024
"""An error message is cut here too: a message quoting its input must not grow a result without bound."""
RATE_WINDOW = 32
"""Frame intervals the camera's period is estimated from."""
TOLERANCE_PERIODS = 0.6
"""Derived stamp tolerance in camera periods: over half (a stamp between two frames finds one), under one."""
CurrentMask = tuple[int, tuple[float, float, float, float], Callable[[], np.ndarray]]
"""``(object_id, box, mask getter)`` of a remembered object where it is now (re-identification)."""


@dataclass(frozen=True)
class BufferedFrame:
    serial: int
    """Engine-assigned, unique per submitted frame: the embedding cache's key
    (stamps are not unique: some drivers stamp every frame 0)."""
    frame: Frame


@dataclass
class Track:
    """One remembered object followed by the tracker; keyed by ``(session, object_id)``."""

    session: str
    object_id: int
    tracker_id: int
    """The tracker's id (unique over sessions, since object ids are per session)."""
    label: str
    status: ObjectStatus
    score: float
    box: tuple[float, float, float, float] | None
    mask: np.ndarray | None
    """``H×W`` bool on the last stepped (or seeded) frame; None when not visible there."""


class StageError(Exception):
    """Wraps an exception with the stage of the round it came from."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(stage)
        self.stage = stage
        self.cause = cause


class Engine:
    def __init__(
        self,
        segmenter: Segmenter,
        reasoner: Reasoner,
        config: Config | None = None,
        memory: DialogueMemory | None = None,
        clock: Callable[[], float] = time.perf_counter,
        tracker: Tracker | None = None,
    ) -> None:
        """``tracker``: given, it is used whatever ``tracking.backend`` says (tests); else built from the config."""
        self.config = config or Config()
        self.segmenter = segmenter
        self.reasoner = reasoner
        self.memory = memory or DialogueMemory(self.config.memory)
        self._clock = clock
        self.tracker = tracker if tracker is not None else create_tracker(self.config.tracking, segmenter)
        self._tracks: OrderedDict[tuple[str, int], Track] = OrderedDict()
        """Least recently referenced (segmented by a round) first."""
        self._track_lock = threading.Lock()
        self._rounds_waiting = 0
        self._waiting_lock = threading.Lock()
        self._next_tracker_id = 1
        self._track_size: tuple[int, int] | None = None
        self._last_step_serial = -1
        self._next_step_due: float | None = None
        self.tracking_steps = 0
        self.tracking_errors = 0
        self.tracking_warnings: deque[str] = deque(maxlen=20)
        """Recent tracking warnings (resolution changes, objects dropped or forgotten), for diagnostics."""
        self._frames: deque[BufferedFrame] = deque(maxlen=self.config.engine.frame_buffer_size)
        self._frames_ready = threading.Condition()
        self._next_serial = 0
        self._intervals: deque[int] = deque(maxlen=RATE_WINDOW)
        """Recent stamp intervals between consecutive frames (ns): the camera's rate, for the stamp tolerance."""
        self._embeddings: OrderedDict[int, ImageEmbedding] = OrderedDict()
        self._round_lock = threading.Lock()
        self.frames_received = 0
        self.encoder_runs = 0

    @classmethod
    def from_config(cls, config: Config) -> Engine:
        """Load the configured models; raises a :class:`ReasonsegError` naming what is missing."""
        reasoner = create_reasoner(config.reasoner)
        return cls(create_segmenter(config.segmenter, reasoner), reasoner, config)

    def submit_frame(self, frame: Frame) -> None:
        """Keep ``frame`` for the next rounds; O(1). Raises :class:`InputError` for a non-RGB image."""
        image = frame.image
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
            shape = getattr(image, "shape", None)
            dtype = getattr(image, "dtype", type(image).__name__)
            raise InputError(f"a frame must be an H×W×3 uint8 RGB array, got shape {shape} of {dtype}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise InputError(f"a frame must not be empty, got shape {image.shape}")
        with self._frames_ready:
            if self._frames and frame.stamp_ns > self._frames[-1].frame.stamp_ns:
                self._intervals.append(frame.stamp_ns - self._frames[-1].frame.stamp_ns)
            self._frames.append(BufferedFrame(self._next_serial, frame))
            self._next_serial += 1
            self.frames_received += 1
            self._frames_ready.notify_all()

    def reset(self, session: str | None = None) -> int:
        """Forget the dialogue of ``session`` (all sessions when None) and stop following its objects."""
        with self._tracking_priority():
            cleared = self.memory.reset(session)
            for key in [k for k in self._tracks if session is None or k[0] == session]:
                self._drop_track(key)
            return cleared

    def handle(self, instruction: Instruction) -> RoundResult:
        """Run one round. Thread-safe: rounds run one at a time."""
        result = RoundResult(
            session=instruction.session,
            instruction=echo(instruction.text),
            instruction_id=instruction.id,
            id_assigned=instruction.id_assigned,
            requested_stamp_ns=instruction.stamp_ns,
        )
        result.random_weights = bool(getattr(self.segmenter, "random_weights", self.config.segmenter.random_weights))
        start = self._clock()
        with self._round_lock:
            try:
                self._run_round(instruction, result)
            except StageError as failure:
                _fail(result, failure.stage, failure.cause)
        result.timings_ms["total"] = (self._clock() - start) * 1000.0
        return result

    def _run_round(self, instruction: Instruction, result: RoundResult) -> None:
        with self._stage("validate", result):
            self._check_instruction(instruction)
        with self._stage("select_frame", result):
            buffered = self.select_frame(instruction.stamp_ns)
        frame = buffered.frame
        result.frame_stamp_ns, result.frame_id, result.image_size = frame.stamp_ns, frame.frame_id, frame.size
        if instruction.stamp_ns is not None:
            result.frame_gap_ms = abs(frame.stamp_ns - instruction.stamp_ns) / 1e6
        result.image = frame.image
        session = instruction.session

        if self.tracker is not None:
            with self._tracking_priority(result):
                with self._stage("track", result):
                    self._catch_up(buffered, session, result)
                # read in the same hold: once it ends the tracking loop moves memory on to newer frames
                view = self.memory.view(session, now_ns=frame.stamp_ns)
                current = self._current_masks(session, frame.size)
        else:
            view = self.memory.view(session, now_ns=frame.stamp_ns)
            current = None
        with self._stage("reason", result):
            answer = self.reasoner.reason(frame.image, instruction.text, view)
        result.reply = answer.reply
        result.raw_output, result.prompt = cap_text(answer.raw_output), cap_text(answer.prompt)
        result.warnings.extend(answer.warnings)
        _warn_unseen_references(answer.targets, view, result)
        with self._tracking_priority(result):
            self._segment_and_record(buffered, instruction, answer.targets, list(answer.rejections), result, current)

    def _segment_and_record(
        self,
        buffered: BufferedFrame,
        instruction: Instruction,
        targets: tuple[Target, ...],
        rejections: list[Rejection],
        result: RoundResult,
        current: list[CurrentMask] | None = None,
    ) -> None:
        """``current``: the session's tracked masks on the round's frame (taken before the reasoner ran)."""
        frame = buffered.frame
        found: list[tuple[dict, np.ndarray]] = []
        exact: list[bool] = []  # per found object: its mask was handed over (a mask target), not decoded
        prompts: list[Prompt] = []  # the prompt of each found object, for the overlay
        if targets:
            # a mask prompt given alone is the object's mask as it stands (no SAM decode)
            given = [t.prompt.mask if _mask_only(t) else None for t in targets]
            to_decode = [t for t, m in zip(targets, given, strict=True) if m is None]
            masks: list[np.ndarray | None] = list(given)
            scores = [t.score for t in targets]
            with self._stage("validate_masks", result):
                for mask in given:
                    if mask is not None and mask.shape != frame.size:
                        raise InputError(
                            f"a mask target is {mask.shape[1]}×{mask.shape[0]} but the frame is "
                            f"{frame.size[1]}×{frame.size[0]}"
                        )
            if to_decode:
                with self._stage("embed", result):
                    embedding = self._embedding(buffered, result)
                with self._stage("decode", result):
                    decoded = self.segmenter.decode(embedding, [t.prompt for t in to_decode])
                slots = iter(zip(decoded.masks, decoded.scores, strict=True))
                for i, mask in enumerate(given):
                    if mask is None:
                        masks[i], scores[i] = next(slots)
            with self._stage("encode_masks", result):
                for target, mask, score in zip(targets, masks, scores, strict=True):
                    assert mask is not None
                    area = int(np.count_nonzero(mask))
                    box = mask_to_box(mask) if area >= self.config.engine.min_mask_pixels else None
                    if box is None:
                        rejections.append(Rejection(target.label, f"the segmenter found no object there ({area} px)"))
                        continue
                    fields = {
                        "object_id": target.object_id,
                        "label": target.label,
                        "box": box,
                        "rle": encode_rle(mask),
                        "score": float(score),
                        "area": area,
                    }
                    found.append((fields, mask))
                    exact.append(_mask_only(target))
                    prompts.append(target.prompt)
            with self._stage("reidentify", result):
                # Masks a random-weight SAM decodes are noise that overlaps anything by chance: only
                # handed-over masks can be matched then, or unrelated objects would merge under one id.
                matchable = [e or not result.random_weights for e in exact]
                self._reidentify(instruction.session, frame, found, matchable, result, current)

        with self._stage("memory", result):
            round_index, objects = self.memory.record(
                instruction.session,
                instruction.text,
                result.reply,
                [fields for fields, _ in found],
                rejections,
                frame.stamp_ns,
            )
            for evicted in self.memory.drain_evicted():
                self._drop_track(evicted)
        result.round_index = round_index
        result.objects = objects
        result.rejections = rejections
        height, width = frame.size
        result.masks = np.stack([m for _, m in found]) if found else np.zeros((0, height, width), dtype=bool)
        result.prompts = prompts
        if self.tracker is not None and objects:
            with self._stage("seed", result):
                try:
                    self._seed(instruction.session, buffered, objects, [m for _, m in found], result)
                except Exception as exc:  # the round is stored: a tracker failure must not turn it into an error
                    self.tracking_errors += 1
                    result.warnings.append(f"tracking could not follow this round's objects: {_describe(exc)}")

    # -- re-identification ---------------------------------------------------------------------

    def _reidentify(
        self,
        session: str,
        frame: Frame,
        found: list[tuple[dict, np.ndarray]],
        matchable: list[bool],
        result: RoundResult,
        current: list[CurrentMask] | None = None,
    ) -> None:
        """Give a new mask the id of the remembered object whose current mask it overlaps (IoU ≥ threshold).

        "Current": the tracked mask when tracking is on (objects not visible
        on the tracked frame are not candidates); without tracking, the stored
        mask when it has the frame's size, which assumes the camera has not
        moved since. Best pairs first; each remembered object is taken once,
        and never one a target of this round names. Only ``matchable`` masks
        are candidates. ``current``: the tracked masks on the round's frame,
        taken before the reasoner ran (the tracks have moved on since); of
        those, only objects still tracked now (a reset meanwhile wins).
        """
        threshold = self.config.memory.reidentify_iou
        if threshold is None:
            return
        named = {fields["object_id"] for fields, _ in found if fields["object_id"] is not None}
        if current is None:
            current = self._current_masks(session, frame.size)
        else:
            current = [c for c in current if (session, c[0]) in self._tracks]
        candidates = [c for c in current if c[0] not in named]
        pairs = []
        for index, (fields, mask) in enumerate(found):
            if fields["object_id"] is not None or not matchable[index]:
                continue
            for object_id, box, mask_of in candidates:
                if box_iou(fields["box"], box) == 0.0:
                    continue  # disjoint boxes: no overlap, and no mask to decode
                iou = mask_iou(mask, mask_of())
                if iou >= threshold:
                    pairs.append((iou, index, object_id))
        taken_found: set[int] = set()
        taken_ids: set[int] = set()
        for _, index, object_id in sorted(pairs, key=lambda p: -p[0]):
            if index in taken_found or object_id in taken_ids:
                continue
            taken_found.add(index)
            taken_ids.add(object_id)
            found[index][0]["object_id"] = object_id
            result.reidentified.append(object_id)

    def _current_masks(self, session: str, size: tuple[int, int]) -> list[CurrentMask]:
        """``(object_id, box, mask getter)`` of the session's objects whose current mask is known at ``size``."""
        if self.tracker is not None:
            return [
                (key[1], track.box, lambda mask=track.mask: mask)
                for key, track in self._tracks.items()
                if key[0] == session and track.mask is not None and track.box is not None and track.mask.shape == size
            ]
        return [
            (obj.object_id, obj.box, functools.cache(lambda rle=obj.rle: decode_rle(rle)))
            for obj in self.memory.view(session).objects
            if tuple(obj.rle["size"]) == size
        ]

    # -- tracking ------------------------------------------------------------------------------

    def track_newest(self, force: bool = False) -> TrackStep | None:
        """One tracking step on the newest frame when ``tracking.rate_hz`` says one is due.

        None when tracking is off, nothing is tracked, a round has the
        tracker, the newest frame was already stepped, or no step is due.
        ``force`` (deterministic replay): ignore the rate, and when the newest
        frame was already stepped or seeded, report the tracks as they stand
        on it. Never raises for a failing tracker: the step carries the error.
        """
        if self.tracker is None or self._rounds_waiting:
            return None
        if not self._track_lock.acquire(blocking=False):
            return None  # a round is segmenting: it goes first
        try:
            if not self._tracks:
                return None
            with self._frames_ready:
                newest = self._frames[-1] if self._frames else None
            if newest is None:
                return None
            now = self._clock()
            if not force and self._next_step_due is not None and now < self._next_step_due:
                return None
            if newest.serial <= self._last_step_serial:
                return self._snapshot(newest.frame, 0.0, ()) if force else None
            # a fixed schedule, so that polling jitter does not lower the rate; a late step does not bunch up
            period = 1.0 / self.config.tracking.rate_hz
            due = now if self._next_step_due is None else self._next_step_due + period
            self._next_step_due = due if due > now else now + period
            return self._step(newest)
        finally:
            self._track_lock.release()

    def seconds_to_next_step(self) -> float:
        """How long until a tracking step is due (0 when one is due now)."""
        if self._next_step_due is None:
            return 0.0
        return max(self._next_step_due - self._clock(), 0.0)

    @property
    def tracked(self) -> list[Track]:
        """The tracks now, least recently referenced first (a copy)."""
        return list(self._tracks.values())

    @contextmanager
    def _tracking_priority(self, result: RoundResult | None = None) -> Iterator[None]:
        """Hold the tracker for a round: tracking skips its turns meanwhile; waits for one running step at most.

        The wait is added to ``result.timings_ms["tracker_wait"]``.
        """
        with self._waiting_lock:
            self._rounds_waiting += 1
        try:
            start = self._clock()
            with self._track_lock:
                if result is not None and self.tracker is not None:
                    waited = (self._clock() - start) * 1000.0
                    result.timings_ms["tracker_wait"] = result.timings_ms.get("tracker_wait", 0.0) + waited
                yield
        finally:
            with self._waiting_lock:
                self._rounds_waiting -= 1

    def _catch_up(self, buffered: BufferedFrame, session: str, result: RoundResult) -> None:
        """Bring the tracks to the round's frame, so the reasoner and the targets see objects where they are now.

        A frame newer than the last tracked one gets a tracking step (not
        published: the tracking loop reports the next frame). A round on an
        older frame (an instruction naming an earlier stamp) cannot step back:
        it gets the newest tracked state, with a warning.
        """
        if not any(key[0] == session for key in self._tracks):
            return
        if buffered.serial > self._last_step_serial:
            step = self._step(buffered)
            if step.error:
                result.warnings.append(f"tracking on the round's frame failed ({step.error}); last tracked state used")
            result.warnings.extend(step.warnings)
        elif buffered.serial < self._last_step_serial:
            result.warnings.append(
                "the round's frame is older than the last tracked frame: remembered objects are given where they "
                "were tracked last"
            )

    def _step(self, buffered: BufferedFrame) -> TrackStep:
        """Step the tracker on ``buffered`` and write the live state into memory (tracker lock held)."""
        frame = buffered.frame
        start = self._clock()
        self._last_step_serial = buffered.serial
        assert self.tracker is not None
        try:
            if self._track_size != frame.size:
                warnings = self._resize(frame)
                return self._snapshot(frame, (self._clock() - start) * 1000.0, warnings)
            states = self.tracker.step(frame)
        except Exception as exc:  # a tracker failure costs one frame, never the tracks or the rounds
            self.tracking_errors += 1
            error = _describe(exc)
            log.warning("tracking step failed on frame %d: %s", frame.stamp_ns, error)
            latency = (self._clock() - start) * 1000.0
            return TrackStep(frame.stamp_ns, frame.frame_id, frame.size, (), latency, (), error)
        self.tracking_steps += 1
        # a backend may have something to say about the frame (optional method, e.g. the flow tracker's)
        pop_warnings = getattr(self.tracker, "pop_warnings", None)
        warnings: list[str] = list(pop_warnings()) if callable(pop_warnings) else []
        by_session: dict[str, tuple[dict[int, Sighting], list[int]]] = {}
        for (session, object_id), track in self._tracks.items():
            seen, unseen = by_session.setdefault(session, ({}, []))
            state = states.get(track.tracker_id)
            box = None if state is None or not state.visible else mask_to_box(state.mask)
            if state is None or box is None:
                track.mask, track.box = None, None
                track.score = 0.0 if state is None else float(state.score)
                unseen.append(object_id)
                continue
            mask = np.asarray(state.mask, dtype=bool)
            track.mask, track.box, track.score = mask, box, float(state.score)
            seen[object_id] = Sighting(box, encode_rle(mask), float(state.score), int(np.count_nonzero(mask)))
        tracking = self.config.tracking
        forgotten: list[tuple[str, int]] = []
        for session, (seen, unseen) in by_session.items():
            outcome = self.memory.update_live(
                session,
                frame.stamp_ns,
                seen,
                unseen,
                lost_after_ns=round(tracking.lost_after_s * 1e9),
                forget_after_ns=round(tracking.forget_after_s * 1e9),
            )
            for object_id, obj in outcome.objects.items():
                self._tracks[(session, object_id)].status = obj.status
            for object_id in outcome.missing:
                self._drop_track((session, object_id))
            for object_id in outcome.forgotten:
                forgotten.append((session, object_id))
                warnings.append(
                    f"object {object_id} of session '{session}' unseen for {tracking.forget_after_s:g} s: "
                    "no longer tracked (memory keeps it, marked lost)"
                )
        # forgotten objects are reported lost on this step one last time, then their tracks go
        step = self._snapshot(frame, (self._clock() - start) * 1000.0, warnings)
        for key in forgotten:
            self._drop_track(key)
        self.tracking_warnings.extend(warnings)
        return step

    def _snapshot(self, frame: Frame, latency_ms: float, warnings: tuple[str, ...] | list[str]) -> TrackStep:
        objects = tuple(
            TrackedObject(t.session, t.object_id, t.label, t.status, t.score, t.box, t.mask)
            for t in self._tracks.values()
        )
        return TrackStep(frame.stamp_ns, frame.frame_id, frame.size, objects, latency_ms, tuple(warnings))

    def _seed(
        self,
        session: str,
        buffered: BufferedFrame,
        objects: list[SegmentedObject],
        masks: list[np.ndarray],
        result: RoundResult,
    ) -> None:
        """Start (or restart) following each object a round segmented, from its mask on the round's frame."""
        assert self.tracker is not None
        frame = buffered.frame
        if self._track_size is not None and self._track_size != frame.size and self._tracks:
            result.warnings.extend(self._resize(frame))
        self._track_size = frame.size
        limit = self.config.tracking.max_objects
        for obj, mask in zip(objects, masks, strict=True):
            key = (session, obj.object_id)
            track = self._tracks.pop(key, None)
            while track is None and len(self._tracks) >= limit:
                (old_session, old_id), _ = next(iter(self._tracks.items()))
                self._drop_track((old_session, old_id))
                self.memory.mark_lost(old_session, [old_id], frame.stamp_ns)
                warning = (
                    f"more than tracking.max_objects ({limit}) objects: object {old_id} of session "
                    f"'{old_session}' (least recently referenced) is no longer tracked"
                )
                result.warnings.append(warning)
                self.tracking_warnings.append(warning)
            if track is None:
                track = Track(session, obj.object_id, self._next_tracker_id, obj.label, "visible", 0.0, None, None)
                self._next_tracker_id += 1
            try:
                self.tracker.seed(track.tracker_id, frame, mask)
            except Exception as exc:
                self.tracking_errors += 1
                result.warnings.append(f"object {obj.object_id} is not tracked: seeding failed ({_describe(exc)})")
                self.tracker.remove(track.tracker_id)
                continue
            track.label, track.status, track.score = obj.label, "visible", obj.score
            track.box, track.mask = obj.box, mask
            self._tracks[key] = track  # newest reference last
        # the seeded frame counts as tracked: the next step must be on a newer one
        self._last_step_serial = max(self._last_step_serial, buffered.serial)

    def _resize(self, frame: Frame) -> list[str]:
        """The camera's resolution changed: re-seed visible tracks from their masks scaled to it, drop the rest."""
        assert self.tracker is not None
        old = self._track_size
        self.tracker.clear()
        kept, dropped = 0, 0
        for key, track in list(self._tracks.items()):
            if track.mask is None:
                self._tracks.pop(key)
                self.memory.mark_lost(key[0], [key[1]], frame.stamp_ns)
                dropped += 1
                continue
            mask = _scale_mask(track.mask, frame.size)
            box = mask_to_box(mask)
            try:
                if box is None:
                    raise ValueError("the scaled mask is empty")
                self.tracker.seed(track.tracker_id, frame, mask)
            except Exception:
                self._tracks.pop(key)
                self.memory.mark_lost(key[0], [key[1]], frame.stamp_ns)
                dropped += 1
                continue
            track.mask, track.box = mask, box
            self.memory.update_live(
                key[0],
                frame.stamp_ns,
                {key[1]: Sighting(box, encode_rle(mask), track.score, int(np.count_nonzero(mask)))},
                lost_after_ns=round(self.config.tracking.lost_after_s * 1e9),
                forget_after_ns=round(self.config.tracking.forget_after_s * 1e9),
            )
            kept += 1
        self._track_size = frame.size
        was = f"{old[1]}×{old[0]}" if old else "?"
        warning = (
            f"frame size changed from {was} to {frame.size[1]}×{frame.size[0]}: {kept} tracks re-seeded from their "
            f"masks scaled to the new size, {dropped} dropped (not visible; memory marks them lost)"
        )
        log.warning(warning)
        self.tracking_warnings.append(warning)
        return [warning]

    def _drop_track(self, key: tuple[str, int]) -> None:
        track = self._tracks.pop(key, None)
        if track is not None and self.tracker is not None:
            self.tracker.remove(track.tracker_id)

    # -- frames --------------------------------------------------------------------------------

    def select_frame(self, stamp_ns: int | None) -> BufferedFrame:
        """The newest frame, or the one nearest ``stamp_ns`` if within :meth:`stamp_tolerance_s` of it.

        Waits up to ``engine.frame_wait_s`` for a first frame. A named frame that never arrived (refused,
        dropped, no longer buffered) is an error, never silently replaced by a neighbour.
        """
        with self._frames_ready:
            if not self._frames:
                self._frames_ready.wait_for(lambda: bool(self._frames), timeout=self.config.engine.frame_wait_s)
            if not self._frames:
                waited = self.config.engine.frame_wait_s
                raise InputError(f"no camera frame received yet (waited {waited:g} s)")
            if stamp_ns is None:
                return self._frames[-1]
            nearest = min(self._frames, key=lambda b: abs(b.frame.stamp_ns - stamp_ns))
            tolerance, source = self.stamp_tolerance_s()
        gap_s = abs(nearest.frame.stamp_ns - stamp_ns) / 1e9
        if gap_s > tolerance:
            raise InputError(
                f"no frame within {tolerance:g} s ({source}) of the instruction's stamp {stamp_ns}: "
                f"nearest is {gap_s:.3f} s away; the named frame was refused, dropped or is older than the "
                f"{len(self._frames)} kept (engine.stamp_tolerance_s, engine.frame_buffer_size)"
            )
        return nearest

    def stamp_tolerance_s(self) -> tuple[float, str]:
        """``(seconds, where the value came from)``: ``engine.stamp_tolerance_s``, or derived from the camera.

        Derived: :data:`TOLERANCE_PERIODS` × the camera's period (the 10th percentile of the last
        :data:`RATE_WINDOW` intervals between frames), so a stamp between two frames finds one but the neighbour
        of a missing frame (one period away) is refused; :data:`DEFAULT_TOLERANCE_S` until two frames with
        increasing stamps have arrived.
        """
        configured = self.config.engine.stamp_tolerance_s
        if configured is not None:
            return configured, "engine.stamp_tolerance_s"
        if not self._intervals:
            return DEFAULT_TOLERANCE_S, "default until the camera's rate is known"
        # a low percentile, not the median: a refused frame leaves a double interval, which must not
        # stretch the period it is judged by
        period_s = float(np.percentile(np.fromiter(self._intervals, dtype=np.int64), 10)) / 1e9
        return TOLERANCE_PERIODS * period_s, f"{TOLERANCE_PERIODS:g} × the camera's {period_s * 1000:.0f} ms period"

    def _embedding(self, buffered: BufferedFrame, result: RoundResult) -> ImageEmbedding:
        cached = self._embeddings.get(buffered.serial)
        if cached is not None:
            self._embeddings.move_to_end(buffered.serial)
            result.embedding_cached = True
            return cached
        embedding = self.segmenter.embed(buffered.frame.image)
        self.encoder_runs += 1
        self._embeddings[buffered.serial] = embedding
        while len(self._embeddings) > self.config.engine.embedding_cache_size:
            self._embeddings.popitem(last=False)
        return embedding

    def _check_instruction(self, instruction: Instruction) -> None:
        if not isinstance(instruction.text, str):
            raise InputError(f"an instruction must be text, got {type(instruction.text).__name__}")
        if not instruction.text.strip():
            raise InputError("the instruction is empty")
        size = len(instruction.text.encode("utf-8"))
        limit = self.config.engine.max_instruction_bytes
        if size > limit:
            raise InputError(
                f"the instruction is {size} bytes, over the limit of {limit} (engine.max_instruction_bytes)"
            )
        if not isinstance(instruction.session, str) or not instruction.session:
            raise InputError("an instruction's session must be a non-empty string")

    @contextmanager
    def _stage(self, name: str, result: RoundResult) -> Iterator[None]:
        """Time a stage and tag any exception from it with the stage's name."""
        start = self._clock()
        try:
            yield
        except Exception as exc:
            raise StageError(name, exc) from exc
        finally:
            result.timings_ms[name] = (self._clock() - start) * 1000.0


def _describe(exc: BaseException) -> str:
    detail = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {detail}"


def _mask_only(target: Target) -> bool:
    prompt = target.prompt
    return prompt.mask is not None and prompt.points is None and prompt.box is None and prompt.embedding is None


def _scale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an H×W mask to ``size`` (the field of view is assumed unchanged)."""
    height, width = size
    rows = (np.arange(height) * mask.shape[0] // height).clip(0, mask.shape[0] - 1)
    cols = (np.arange(width) * mask.shape[1] // width).clip(0, mask.shape[1] - 1)
    return mask[rows[:, None], cols[None, :]]


def _warn_unseen_references(targets: tuple[Target, ...], view: MemoryView, result: RoundResult) -> None:
    """A target naming an object that is not visible now is prompted from where it was last seen: say so."""
    for target in targets:
        obj = view.get(target.object_id) if target.object_id is not None else None
        if obj is None or obj.status == "visible":
            continue
        age = ""
        if view.now_ns is not None:
            age = f", not seen for {max(view.now_ns - last_seen_ns(obj), 0) / 1e9:.1f} s"
        result.warnings.append(f"object {obj.object_id} is {obj.status}{age}: prompted from where it was last seen")


def _fail(result: RoundResult, stage: str, cause: BaseException) -> None:
    if isinstance(cause, ReasonsegError):
        result.error_kind = cause.kind
        result.error = cap_text(str(cause), ERROR_BYTES)
    else:
        result.error_kind = "internal"
        detail = str(cause).splitlines()[0][:300] if str(cause) else ""
        result.error = f"{stage} failed: {type(cause).__name__}: {detail}"
    result.objects, result.masks = [], None
    # an unreadable model answer is kept for debugging (ModelOutputError.raw_output)
    raw_output = getattr(cause, "raw_output", None)
    if isinstance(raw_output, str):
        result.raw_output = cap_text(raw_output)


__all__ = ["BufferedFrame", "Engine", "Track"]
