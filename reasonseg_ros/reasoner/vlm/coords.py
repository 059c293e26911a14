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

"""The one table of coordinate conventions of grounding VLMs, and the mapping to image pixels.

Every family answers boxes and points in its own frame; the reasoner maps
them to pixels of the original image before SAM sees them, and maps the
remembered boxes the other way before the model sees them.

| family       | the model's coordinates                                              |
| ------------ | -------------------------------------------------------------------- |
| qwen2_5_vl   | absolute pixels of the processor-resized image (``smart_resize``)    |
| qwen3_vl     | relative, 0–1000 on each axis                                        |
| relative_1   | relative, 0–1 on each axis                                           |
| absolute     | absolute pixels of the original image                                |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Family = Literal["qwen2_5_vl", "qwen3_vl", "relative_1", "absolute"]


@dataclass(frozen=True)
class Convention:
    kind: Literal["resized_pixels", "relative", "pixels"]
    scale: float = 1.0
    """Full-axis value for ``relative`` (1000 means 0–1000)."""
    describe: str = ""
    """How the prompt tells the model to write coordinates."""


CONVENTIONS: dict[str, Convention] = {
    "qwen2_5_vl": Convention("resized_pixels", describe="absolute pixel coordinates of the image as you see it"),
    "qwen3_vl": Convention("relative", 1000.0, "coordinates relative to the image, from 0 to 1000 on each axis"),
    "relative_1": Convention("relative", 1.0, "coordinates relative to the image, from 0.0 to 1.0 on each axis"),
    "absolute": Convention("pixels", describe="absolute pixel coordinates of the image"),
}

QWEN_PATCH_FACTOR = 28
"""Qwen2-VL / Qwen2.5-VL: patch 14 × spatial merge 2; each resized side is a multiple of it."""


def smart_resize(
    height: int, width: int, factor: int = QWEN_PATCH_FACTOR, min_pixels: int = 3136, max_pixels: int = 12845056
) -> tuple[int, int]:
    """The ``(height, width)`` a Qwen2-VL-style image processor resizes an image to.

    Each side is rounded to a multiple of ``factor``, then both are scaled
    together so that the area lies within ``[min_pixels, max_pixels]``.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}×{width}")
    new_h = max(factor, round(height / factor) * factor)
    new_w = max(factor, round(width / factor) * factor)
    if new_h * new_w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        new_h = max(factor, math.floor(height / beta / factor) * factor)
        new_w = max(factor, math.floor(width / beta / factor) * factor)
    elif new_h * new_w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        new_h = math.ceil(height * beta / factor) * factor
        new_w = math.ceil(width * beta / factor) * factor
    return new_h, new_w


@dataclass(frozen=True)
class CoordinateFrame:
    """Maps one family's coordinates on one image to and from original-image pixels."""

    family: str
    image_size: tuple[int, int]
    """``(height, width)`` of the original image."""
    model_size: tuple[int, int] | None = None
    """``(height, width)`` the model saw (``qwen2_5_vl`` only: the resized image)."""

    def __post_init__(self) -> None:
        if self.family not in CONVENTIONS:
            raise ValueError(f"unknown coordinate family {self.family!r}; known: {', '.join(CONVENTIONS)}")
        if self.convention.kind == "resized_pixels" and self.model_size is None:
            raise ValueError(f"family {self.family!r} needs the resized image size")

    @property
    def convention(self) -> Convention:
        return CONVENTIONS[self.family]

    def _scale(self) -> tuple[float, float]:
        """Pixels of the original image per model unit, ``(sx, sy)``."""
        height, width = self.image_size
        convention = self.convention
        if convention.kind == "resized_pixels":
            model_h, model_w = self.model_size  # type: ignore[misc]
            return width / model_w, height / model_h
        if convention.kind == "relative":
            return width / convention.scale, height / convention.scale
        return 1.0, 1.0

    def to_pixels(self, x: float, y: float) -> tuple[float, float]:
        sx, sy = self._scale()
        return x * sx, y * sy

    def from_pixels(self, x: float, y: float) -> tuple[float, float]:
        sx, sy = self._scale()
        return x / sx, y / sy

    def box_from_pixels(self, box: tuple[float, float, float, float]) -> list[float]:
        """A pixel box in the model's coordinates, rounded as the model would write it."""
        x1, y1 = self.from_pixels(box[0], box[1])
        x2, y2 = self.from_pixels(box[2], box[3])
        digits = 3 if self.convention.kind == "relative" and self.convention.scale <= 1.0 else 0
        return [round(v, digits) if digits else float(round(v)) for v in (x1, y1, x2, y2)]
