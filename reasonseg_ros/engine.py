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
"""

from __future__ import annotations

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
from reasonseg_ros.masks import encode_rle, mask_to_box
from reasonseg_ros.memory import DialogueMemory
from reasonseg_ros.reasoner import Reasoner, create_reasoner
from reasonseg_ros.segmenter import ImageEmbedding, Segmenter, create_segmenter
from reasonseg_ros.types import Frame, Instruction, Prompt, Rejection, RoundResult

DEFAULT_TOLERANCE_S = 0.1
"""Stamp tolerance before the camera's rate is known (``engine.stamp_tolerance_s: null``)."""
ERROR_BYTES = 1024
"""An error message is cut here too: a message quoting its input must not grow a result without bound."""
RATE_WINDOW = 32
"""Frame intervals the camera's period is estimated from."""
TOLERANCE_PERIODS = 0.6
"""Derived stamp tolerance in camera periods: over half (a stamp between two frames finds one), under one."""


@dataclass(frozen=True)
class BufferedFrame:
    serial: int
    """Engine-assigned, unique per submitted frame: the embedding cache's key
    (stamps are not unique: some drivers stamp every frame 0)."""
    frame: Frame


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
    ) -> None:
        self.config = config or Config()
        self.segmenter = segmenter
        self.reasoner = reasoner
        self.memory = memory or DialogueMemory(self.config.memory)
        self._clock = clock
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
        """Forget the dialogue of ``session`` (all sessions when None)."""
        return self.memory.reset(session)

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

        with self._stage("reason", result):
            answer = self.reasoner.reason(frame.image, instruction.text, self.memory.view(instruction.session))
        result.reply = answer.reply
        result.raw_output, result.prompt = cap_text(answer.raw_output), cap_text(answer.prompt)
        result.warnings.extend(answer.warnings)
        rejections = list(answer.rejections)

        found: list[tuple[dict, np.ndarray, Prompt]] = []
        if answer.targets:
            with self._stage("embed", result):
                embedding = self._embedding(buffered, result)
            with self._stage("decode", result):
                decoded = self.segmenter.decode(embedding, [t.prompt for t in answer.targets])
            with self._stage("encode_masks", result):
                for target, mask, score in zip(answer.targets, decoded.masks, decoded.scores, strict=True):
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
                    found.append((fields, mask, target.prompt))

        with self._stage("memory", result):
            round_index, objects = self.memory.record(
                instruction.session,
                instruction.text,
                answer.reply,
                [fields for fields, _, _ in found],
                rejections,
                frame.stamp_ns,
            )
        result.round_index = round_index
        result.objects = objects
        result.rejections = rejections
        height, width = frame.size
        result.masks = np.stack([m for _, m, _ in found]) if found else np.zeros((0, height, width), dtype=bool)
        result.prompts = [p for _, _, p in found]

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


__all__ = ["BufferedFrame", "Engine"]
