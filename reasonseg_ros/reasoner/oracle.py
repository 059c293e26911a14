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

"""The ``oracle`` reasoner, for evaluation only: SAM prompts sampled from the ground-truth masks.

It is SAM4MLLM's upper-bound experiment: with the reasoning taken as given,
it measures the segmenter alone. Bag replay hands it each instruction's
ground truth (:meth:`OracleReasoner.expect`) before the instruction is run.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict, deque
from collections.abc import Sequence

import numpy as np

from reasonseg_ros.config import OracleConfig
from reasonseg_ros.errors import InputError
from reasonseg_ros.masks import decode_rle, mask_to_box
from reasonseg_ros.memory import MemoryView
from reasonseg_ros.types import RLE, Prompt, ReasonerOutput, Rejection, Target


class OracleReasoner:
    def __init__(self, config: OracleConfig | None = None) -> None:
        self.config = config or OracleConfig()
        self.name = f"oracle ({self.config.prompt} from ground truth; evaluation only)"
        self._expected: dict[tuple[str, str], deque[Sequence[tuple[str, RLE]]]] = defaultdict(deque)

    def expect(self, session: str, text: str, objects: Sequence[tuple[str, RLE]]) -> None:
        """Queue the ground truth of the next instruction ``text`` in ``session``."""
        self._expected[(session, text)].append(objects)

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> ReasonerOutput:
        queue = self._expected.get((memory.session, text))
        if not queue:
            raise InputError("the oracle reasoner has no ground truth for this instruction (it is for bag replay)")
        objects = queue.popleft()
        if not objects:
            return ReasonerOutput(reply="absent", rejections=(Rejection(text, "absent in the ground truth"),))
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))
        targets = []
        for label, rle in objects:
            mask = decode_rle(rle)
            if mask.shape != image.shape[:2]:
                raise InputError(f"ground-truth mask is {mask.shape}, the frame is {image.shape[:2]}")
            prompt = self._prompt(mask, rng)
            if prompt is not None:
                targets.append(Target(label or text, prompt))
        if not targets:
            return ReasonerOutput(reply="absent", rejections=(Rejection(text, "the ground-truth masks are empty"),))
        return ReasonerOutput(reply=f"{len(targets)} object(s) from ground truth", targets=tuple(targets))

    def _prompt(self, mask: np.ndarray, rng: np.random.Generator) -> Prompt | None:
        box = mask_to_box(mask)
        if box is None:
            return None
        if self.config.prompt == "mask":
            return Prompt(mask=mask)
        use_box = self.config.prompt in ("box", "box+points")
        points = labels = None
        if self.config.prompt in ("points", "box+points"):
            inside = np.argwhere(mask)
            outside = np.argwhere(~mask)
            picks = [inside[rng.choice(len(inside), min(self.config.points_inside, len(inside)), replace=False)]]
            label_parts = [np.ones(len(picks[0]), dtype=np.int64)]
            if self.config.points_outside and len(outside):
                out = outside[rng.choice(len(outside), min(self.config.points_outside, len(outside)), replace=False)]
                picks.append(out)
                label_parts.append(np.zeros(len(out), dtype=np.int64))
            points = np.concatenate(picks)[:, ::-1].astype(np.float32) + 0.5  # (row, col) -> pixel-centre (x, y)
            labels = np.concatenate(label_parts)
        return Prompt(points=points, point_labels=labels, box=np.asarray(box) if use_box else None)
