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

"""Plain dataclasses passed between the layers (see DESIGN.md, "Core contracts").

Images are H×W×3 uint8 RGB numpy arrays; coordinates are pixels of the
original image, x before y; boxes are ``[x1, y1, x2, y2]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

RLE = dict[str, Any]
"""A pycocotools run-length encoding: ``{"size": [h, w], "counts": str}``."""

ObjectStatus = Literal["visible", "occluded", "lost"]


@dataclass(frozen=True)
class Frame:
    """One camera image and the time it was taken."""

    image: np.ndarray
    stamp_ns: int = 0
    frame_id: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the image."""
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass(frozen=True)
class Instruction:
    """What the user asked, optionally naming the time of the frame it means."""

    text: str
    stamp_ns: int | None = None
    session: str = "default"
    id: str | None = None
    """The client's correlation id, echoed in every result of this instruction (errors and drops included)."""
    id_assigned: bool = False
    """True when the node or replay made ``id`` up because the client gave none."""


@dataclass(frozen=True)
class Prompt:
    """A SAM prompt in original-image pixels; any mix of the fields may be set.

    ``point_labels``: 1 foreground, 0 background, -1 neutral padding.
    ``embedding``: ``(T, 256)`` sparse prompt tokens, as the ``[SEG]``-token
    reasoners produce them.
    """

    points: np.ndarray | None = None
    point_labels: np.ndarray | None = None
    box: np.ndarray | None = None
    embedding: np.ndarray | None = None
    mask: np.ndarray | None = None
    """``H×W`` bool mask in original-image pixels; given alone, the engine takes it as the object's mask
    without decoding (a click tool's or a VOS benchmark's first-frame annotation)."""

    def __post_init__(self) -> None:
        if self.points is not None:
            points = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
            labels = (
                np.ones(len(points), dtype=np.int64)
                if self.point_labels is None
                else np.asarray(self.point_labels, dtype=np.int64).reshape(-1)
            )
            if len(labels) != len(points):
                raise ValueError(f"{len(points)} points but {len(labels)} point labels")
            object.__setattr__(self, "points", points)
            object.__setattr__(self, "point_labels", labels)
        elif self.point_labels is not None:
            raise ValueError("point_labels given without points")
        if self.box is not None:
            object.__setattr__(self, "box", np.asarray(self.box, dtype=np.float32).reshape(4))
        if self.embedding is not None:
            embedding = np.asarray(self.embedding, dtype=np.float32)
            object.__setattr__(self, "embedding", embedding.reshape(-1, embedding.shape[-1]))
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.ndim != 2:
                raise ValueError(f"a mask prompt must be H×W, got shape {mask.shape}")
            object.__setattr__(self, "mask", mask.astype(bool, copy=False))
        if self.is_empty:
            raise ValueError("a prompt needs points, a box, an embedding or a mask")

    @property
    def is_empty(self) -> bool:
        return self.points is None and self.box is None and self.embedding is None and self.mask is None


@dataclass(frozen=True)
class Target:
    """One object the reasoner wants segmented.

    ``object_id`` is set when the target is an object already in memory
    (it keeps its id); ``None`` makes a new object.
    """

    label: str
    prompt: Prompt
    score: float = 1.0
    object_id: int | None = None


@dataclass(frozen=True)
class Rejection:
    """A phrase of the instruction that matches nothing in the image."""

    phrase: str
    reason: str = ""


@dataclass(frozen=True)
class ReasonerOutput:
    """What a reasoner answers for one instruction."""

    reply: str = ""
    targets: tuple[Target, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    warnings: tuple[str, ...] = ()
    raw_output: str | None = None
    prompt: str | None = None
    """The text the reasoner sent its model, when it keeps it (debugging)."""


@dataclass(frozen=True)
class SegmentedObject:
    """An object segmented in a round, as stored in memory and published."""

    object_id: int
    label: str
    box: tuple[float, float, float, float]
    rle: RLE
    score: float
    area: int
    round_index: int
    frame_stamp_ns: int
    status: ObjectStatus = "visible"
    """Live state (tracking): visible, occluded (not seen, for under ``tracking.lost_after_s``) or lost."""
    updated_stamp_ns: int | None = None
    """Stamp of the frame ``box``/``rle``/``score`` describe; None: ``frame_stamp_ns`` (never tracked)."""
    status_since_ns: int | None = None
    """Stamp from which ``status`` holds; None: ``frame_stamp_ns``."""


@dataclass
class RoundResult:
    """Everything one instruction produced; ``error`` is set when the round failed."""

    session: str
    instruction: str
    round_index: int | None = None
    instruction_id: str | None = None
    """The instruction's correlation id (:attr:`Instruction.id`)."""
    id_assigned: bool = False
    requested_stamp_ns: int | None = None
    """The stamp the instruction named, if it named one."""
    frame_gap_ms: float | None = None
    """|frame used − requested stamp| in ms, when a stamp was named."""
    reidentified: list[int] = field(default_factory=list)
    """Ids of objects that a new mask matched in memory (kept their id instead of getting a new one)."""
    reply: str = ""
    objects: list[SegmentedObject] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    frame_stamp_ns: int | None = None
    frame_id: str = ""
    image_size: tuple[int, int] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    embedding_cached: bool = False
    error: str | None = None
    error_kind: str | None = None
    raw_output: str | None = None
    prompt: str | None = None
    masks: np.ndarray | None = field(default=None, repr=False)
    """``N×H×W`` bool masks in the order of ``objects`` (not serialised)."""
    image: np.ndarray | None = field(default=None, repr=False)
    """The frame the round used, for overlays (not serialised)."""
    prompts: list[Prompt] | None = field(default=None, repr=False)
    """The SAM prompt of each object, in the order of ``objects``, for overlays (not serialised)."""
    random_weights: bool = False
    """The segmenter ran with random weights (configured or as the fallback): the masks mean nothing."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class TrackedObject:
    """One remembered object on the frame a tracking step ran on."""

    session: str
    object_id: int
    label: str
    status: ObjectStatus
    score: float
    box: tuple[float, float, float, float] | None
    """``[x1, y1, x2, y2]``; None when the object is not visible on this frame."""
    mask: np.ndarray | None = field(default=None, repr=False)
    """``H×W`` bool on the stepped frame; None when not visible."""


@dataclass(frozen=True)
class TrackStep:
    """What one tracking step saw: every tracked object of every session on one frame."""

    stamp_ns: int
    frame_id: str
    image_size: tuple[int, int]
    """``(height, width)`` of the stepped frame."""
    objects: tuple[TrackedObject, ...]
    latency_ms: float
    warnings: tuple[str, ...] = ()
    error: str | None = None
    """Set when the tracker failed on this frame (tracks are kept for the next one)."""
