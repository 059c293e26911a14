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

"""Turns a list of :class:`Prompt` into one padded batch in SAM's input frame.

Backend-independent (numpy only), so every SAM backend batches the same way.
The token layout of every prompt in a batch is ``points, box corners,
embeddings``; a slot a prompt does not use is filled with SAM's neutral
"not a point" token (point label -1), which is how SAM itself pads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reasonseg_ros.types import Prompt

PAD_LABEL = -1


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """Size of an image whose longest side is scaled to ``long_side`` (SAM's ``ResizeLongestSide``)."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def to_input_coords(coords: np.ndarray, original_size: tuple[int, int], input_size: tuple[int, int]) -> np.ndarray:
    """Map ``(..., 2)`` xy pixel coordinates of the original image into the encoder's resized frame."""
    scale = np.array(
        [input_size[1] / original_size[1], input_size[0] / original_size[0]],
        dtype=np.float32,
    )
    return coords.astype(np.float32) * scale


@dataclass(frozen=True)
class PromptBatch:
    """N prompts padded to one layout, coordinates in the encoder's input frame."""

    point_coords: np.ndarray | None
    """``(N, P, 2)`` float32, or None when no prompt has points."""
    point_labels: np.ndarray | None
    """``(N, P)`` int64, -1 where padded."""
    boxes: np.ndarray | None
    """``(N, 4)`` float32, or None when no prompt has a box."""
    has_box: np.ndarray | None
    """``(N,)`` bool: False rows of ``boxes`` are padding."""
    embeddings: np.ndarray | None
    """``(N, T, C)`` float32, or None when no prompt has an embedding."""
    embedding_mask: np.ndarray | None
    """``(N, T)`` bool: False tokens are padding."""

    @property
    def size(self) -> int:
        for array in (self.point_coords, self.boxes, self.embeddings):
            if array is not None:
                return int(array.shape[0])
        return 0


def batch_prompts(
    prompts: Sequence[Prompt], original_size: tuple[int, int], input_size: tuple[int, int]
) -> PromptBatch:
    """Pad ``prompts`` to a common layout.

    As in SAM's prompt encoder, a batch with points but no box gets one extra
    padding point, so a single point prompt is decoded exactly as
    ``SamPredictor`` decodes it.
    """
    if not prompts:
        raise ValueError("no prompts to batch")
    n = len(prompts)
    any_box = any(p.box is not None for p in prompts)
    n_points = max((len(p.points) for p in prompts if p.points is not None), default=0)

    coords = labels = None
    if n_points:
        slots = n_points + (0 if any_box else 1)
        coords = np.zeros((n, slots, 2), dtype=np.float32)
        labels = np.full((n, slots), PAD_LABEL, dtype=np.int64)
        for i, prompt in enumerate(prompts):
            if prompt.points is not None:
                k = len(prompt.points)
                coords[i, :k] = to_input_coords(prompt.points, original_size, input_size)
                labels[i, :k] = prompt.point_labels

    boxes = has_box = None
    if any_box:
        boxes = np.zeros((n, 4), dtype=np.float32)
        has_box = np.zeros(n, dtype=bool)
        for i, prompt in enumerate(prompts):
            if prompt.box is not None:
                boxes[i] = to_input_coords(prompt.box.reshape(2, 2), original_size, input_size).reshape(4)
                has_box[i] = True

    embeddings = embedding_mask = None
    with_embedding = [p.embedding for p in prompts if p.embedding is not None]
    if with_embedding:
        width = {e.shape[1] for e in with_embedding}
        if len(width) != 1:
            raise ValueError(f"prompt embeddings of different widths in one batch: {sorted(width)}")
        n_tokens = max(e.shape[0] for e in with_embedding)
        embeddings = np.zeros((n, n_tokens, width.pop()), dtype=np.float32)
        embedding_mask = np.zeros((n, n_tokens), dtype=bool)
        for i, prompt in enumerate(prompts):
            if prompt.embedding is not None:
                t = prompt.embedding.shape[0]
                embeddings[i, :t] = prompt.embedding
                embedding_mask[i, :t] = True

    return PromptBatch(coords, labels, boxes, has_box, embeddings, embedding_mask)
