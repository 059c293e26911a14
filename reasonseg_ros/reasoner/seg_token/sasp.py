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

"""READ's Similarity-as-Points: SAM point prompts from the [SEG] / image-token similarity map.

Follows rui-qian/READ ``model/READ.py`` (``similarity_map_to_points``):
the similarity is the dot product of the ``[SEG]`` state with each image
token's state (last layer); the patch grid is shrunk by ``down_sample``
(bilinear), min-max normalised, and padded to the image's aspect ratio
(CLIP saw a centre crop, so the grid covers the middle of the longer side).
Cells at or above the positive threshold become positive points (highest
first), cells at or below the negative threshold negative points (lowest
first), then the cells in between with the neutral label, up to
``num_points``; a shorter list is padded with neutral points, which SAM
ignores apart from their token. With ``refine`` each point then moves to the
softmax-similarity and distance weighted mean of its neighbourhood on the
full-resolution map (READ's discrete-to-continuous step, evaluated in a
window: the distance weight ``exp(-d^2)`` is below 1e-15 beyond 6 px).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reasonseg_ros.deps import require

NEUTRAL = -1
REFINE_RADIUS = 6


@dataclass(frozen=True)
class SasPSettings:
    positive_threshold: float = 0.8
    negative_threshold: float = 0.2
    num_points: int = 30
    down_sample: int = 2
    refine: bool = True


def similarity(seg_state: Any, image_states: Any) -> Any:
    """``(Np,)`` dot products of the [SEG] state with each image token state."""
    return image_states.float() @ seg_state.float()


def points_from_similarity(
    scores: Any, image_size: tuple[int, int], clip_size: int, settings: SasPSettings = SasPSettings()
) -> tuple[np.ndarray, np.ndarray]:
    """``(num_points, 2)`` float32 xy in original-image pixels and ``(num_points,)`` labels 1 / 0 / -1."""
    torch = require("torch", "Similarity-as-Points")
    functional = torch.nn.functional
    scores = torch.as_tensor(scores).float().reshape(-1)
    side = round(scores.numel() ** 0.5)
    if side * side != scores.numel():
        raise ValueError(f"{scores.numel()} image tokens do not form a square patch grid")
    height, width = image_size
    small = max(1, side // settings.down_sample)
    grid = functional.interpolate(scores.view(1, 1, side, side), (small, small), mode="bilinear")[0, 0]
    grid = _min_max(grid)
    scale = small / min(height, width)
    pad_h = (int(height * scale) - small) // 2
    pad_w = (int(width * scale) - small) // 2
    grid = functional.pad(grid, (pad_w, pad_w, pad_h, pad_h), mode="constant", value=-1.0)
    rows, cols = grid.shape
    flat = grid.reshape(-1)

    positive = torch.nonzero(flat >= settings.positive_threshold).flatten()
    positive = positive[torch.argsort(flat[positive], descending=True, stable=True)]
    negative = torch.nonzero((flat >= 0) & (flat <= settings.negative_threshold)).flatten()
    negative = negative[torch.argsort(flat[negative], stable=True)]
    neutral = torch.nonzero((flat > settings.negative_threshold) & (flat < settings.positive_threshold)).flatten()
    chosen = torch.cat([positive, negative, neutral])[: settings.num_points]
    labels = np.full(settings.num_points, NEUTRAL, dtype=np.int64)
    labels[: len(positive)] = 1
    labels[len(positive) : min(len(positive) + len(negative), settings.num_points)] = 0
    labels[len(chosen) :] = NEUTRAL

    cell_w, cell_h = width / cols, height / rows
    xs = torch.clamp((chosen % cols + 0.5) * cell_w, max=width - 1).floor()
    ys = torch.clamp((chosen // cols + 0.5) * cell_h, max=height - 1).floor()
    points = np.zeros((settings.num_points, 2), dtype=np.float32)
    points[: len(chosen), 0] = xs.numpy()
    points[: len(chosen), 1] = ys.numpy()
    if settings.refine and len(chosen):
        padded = padded_map(scores, side, image_size, clip_size)
        points[: len(chosen)] = refine_points(padded, image_size, points[: len(chosen)])
    return points, labels


def padded_map(scores: Any, side: int, image_size: tuple[int, int], clip_size: int) -> Any:
    """The normalised similarity at CLIP's input resolution, zero-padded to the image's aspect ratio."""
    torch = require("torch")
    functional = torch.nn.functional
    height, width = image_size
    grid = _min_max(scores.view(1, 1, side, side))
    grid = functional.interpolate(grid, (clip_size, clip_size), mode="bilinear")
    scale = clip_size / min(height, width)
    pad_h = (int(height * scale) - clip_size) // 2
    pad_w = (int(width * scale) - clip_size) // 2
    return functional.pad(grid, (pad_w, pad_w, pad_h, pad_h))


def full_resolution_map(scores: Any, side: int, image_size: tuple[int, int], clip_size: int) -> Any:
    """The normalised similarity at every pixel (what READ computes; :func:`refine_points` samples it lazily)."""
    torch = require("torch")
    padded = padded_map(scores, side, image_size, clip_size)
    return torch.nn.functional.interpolate(padded, image_size, mode="bilinear")[0, 0]


def sample_bilinear(padded: Any, image_size: tuple[int, int], ys: Any, xs: Any) -> Any:
    """Values of ``interpolate(padded, image_size, bilinear)`` at integer pixels ``(ys, xs)``, computing only those."""
    torch = require("torch")
    rows, cols = padded.shape[-2:]
    height, width = image_size
    # interpolate's source coordinate (align_corners=False), clamped at 0 as it clamps
    src_y = ((ys + 0.5) * rows / height - 0.5).clamp_min(0)
    src_x = ((xs + 0.5) * cols / width - 0.5).clamp_min(0)
    grid = torch.stack([(2 * src_x + 1) / cols - 1, (2 * src_y + 1) / rows - 1], dim=-1)
    flat = grid.reshape(1, 1, -1, 2).to(padded.dtype)
    values = torch.nn.functional.grid_sample(padded, flat, mode="bilinear", padding_mode="border", align_corners=False)
    return values.reshape(ys.shape)


def refine_points(padded: Any, image_size: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Each point -> mean of nearby pixel positions weighted by ``exp(-d^2) * exp(similarity)`` (all points at once)."""
    torch = require("torch")
    height, width = image_size
    offsets = torch.arange(-REFINE_RADIUS, REFINE_RADIUS + 1, dtype=torch.float32)
    base = torch.as_tensor(points, dtype=torch.float32).floor()
    xs = base[:, 0, None, None] + offsets[None, None, :]
    ys = base[:, 1, None, None] + offsets[None, :, None]
    xs, ys = torch.broadcast_tensors(xs, ys)
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    values = sample_bilinear(padded, image_size, ys.clamp(0, height - 1), xs.clamp(0, width - 1))
    points_t = torch.as_tensor(points, dtype=torch.float32)
    distance = (xs - points_t[:, 0, None, None]) ** 2 + (ys - points_t[:, 1, None, None]) ** 2
    # a softmax over the window: READ's global softmax normaliser cancels in the weighted mean
    logits = torch.where(inside, values.float() - distance, torch.tensor(float("-inf")))
    weights = torch.softmax(logits.reshape(len(points), -1), dim=1)
    refined = torch.stack(
        [(xs.reshape(len(points), -1) * weights).sum(1), (ys.reshape(len(points), -1) * weights).sum(1)], 1
    )
    return refined.numpy().astype(np.float32)


def _min_max(values: Any) -> Any:
    low, high = values.min(), values.max()
    return (values - low) / (high - low).clamp_min(1e-12)
