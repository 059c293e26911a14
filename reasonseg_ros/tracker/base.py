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

"""The tracker interface: remembered objects carried from the frame they were segmented on to newer frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from reasonseg_ros.types import Frame


@dataclass(frozen=True)
class TrackState:
    """Where one tracked object is on the frame a step ran on."""

    mask: np.ndarray
    """``H×W`` bool at the stepped frame's size (empty when not visible)."""
    box: tuple[float, float, float, float] | None
    """``[x1, y1, x2, y2]`` of ``mask``; None when the mask is empty."""
    score: float
    """Confidence that the object is there (SAM 2's object score as a probability; flow: inlier share)."""
    visible: bool


class Tracker(Protocol):
    name: str
    """Human-readable description (backend, model) for diagnostics and reports."""

    def seed(self, object_id: int, frame: Frame, mask: np.ndarray) -> None:
        """Start (or restart) following ``object_id`` from its ``mask`` on ``frame``."""
        ...

    def step(self, frame: Frame) -> dict[int, TrackState]:
        """Carry every tracked object to ``frame`` (newer than any seen so far) in one step."""
        ...

    def remove(self, object_id: int) -> None:
        """Stop following ``object_id`` and free what it held; unknown ids are ignored."""
        ...

    def clear(self) -> None:
        """Stop following every object."""
        ...

    @property
    def tracked_ids(self) -> frozenset[int]:
        """Ids followed now."""
        ...
