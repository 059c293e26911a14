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

"""A tracker test double: every seeded mask moves by a known velocity, so where it is on a frame is known."""

from __future__ import annotations

import threading

import numpy as np

from reasonseg_ros.masks import mask_to_box
from reasonseg_ros.tracker.base import TrackState

S = 1_000_000_000


def shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``mask`` moved by ``(dx, dy)`` pixels; what leaves the image is cut, what enters is empty."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    src = mask[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def square(size=(240, 320), x=50, y=40, w=50, h=40) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[y : y + h, x : x + w] = True
    return mask


class ShiftTracker:
    """Moves each object's seed mask by ``velocity`` pixels per second of frame stamp since its seed."""

    name = "shift (test double)"

    def __init__(self, velocity=(20, 10)) -> None:
        self.velocity = velocity
        self.seeds: dict[int, tuple[np.ndarray, int]] = {}
        self.hidden: set[int] = set()
        self.fail = False
        self.calls: list[tuple] = []
        self.block: threading.Event | None = None
        """When set, ``step`` signals ``entered`` and waits for ``block`` (thread tests)."""
        self.entered = threading.Event()

    def where(self, object_id: int, stamp_ns: int) -> np.ndarray:
        mask, seeded = self.seeds[object_id]
        dt = (stamp_ns - seeded) / S
        return shift(mask, round(self.velocity[0] * dt), round(self.velocity[1] * dt))

    def seed(self, object_id, frame, mask) -> None:
        self.calls.append(("seed", object_id, frame.stamp_ns, frame.size))
        self.seeds[object_id] = (np.array(mask, dtype=bool), frame.stamp_ns)

    def step(self, frame) -> dict[int, TrackState]:
        self.calls.append(("step", frame.stamp_ns))
        if self.block is not None:
            self.entered.set()
            assert self.block.wait(10)
        if self.fail:
            raise RuntimeError("tracker exploded")
        states = {}
        for object_id in self.seeds:
            if object_id in self.hidden:
                states[object_id] = TrackState(np.zeros(frame.size, bool), None, 0.1, False)
            else:
                mask = self.where(object_id, frame.stamp_ns)
                states[object_id] = TrackState(mask, mask_to_box(mask), 0.8, True)
        return states

    def remove(self, object_id) -> None:
        self.calls.append(("remove", object_id))
        self.seeds.pop(object_id, None)

    def clear(self) -> None:
        self.calls.append(("clear",))
        self.seeds.clear()

    @property
    def tracked_ids(self) -> frozenset[int]:
        return frozenset(self.seeds)

    def steps(self) -> list[int]:
        return [c[1] for c in self.calls if c[0] == "step"]
