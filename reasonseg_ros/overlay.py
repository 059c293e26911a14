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

"""The debug picture that explains itself (drawn with Pillow's ImageDraw).

Each object: its mask tinted and outlined in the object's colour, ``id label``
on a tab at its box, and the SAM prompt that made it (the prompt box as a thin
rectangle, positive points as green dots, negative points as red crosses).
Rejections are written along the bottom; a red "RANDOM WEIGHTS" banner runs
along the top when the segmenter has random weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from reasonseg_ros.deps import require
from reasonseg_ros.types import Prompt, Rejection, RoundResult, SegmentedObject

POSITIVE = (40, 220, 60)
NEGATIVE = (230, 40, 40)
BANNER = (200, 0, 0)
BANNER_TEXT = "RANDOM WEIGHTS: these masks mean nothing"


def color_of(object_id: int) -> np.ndarray:
    """A stable, distinct RGB colour per object id (golden-ratio hue steps)."""
    hue = (object_id * 0.618033988749895) % 1.0
    h6 = hue * 6.0
    x = 1.0 - abs(h6 % 2.0 - 1.0)
    rgb = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(h6) % 6]
    return (np.asarray(rgb) * 215 + 40).astype(np.uint8)


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """An RGB picture of a label image: each id in its :func:`color_of` colour, background black."""
    out = np.zeros((*labels.shape, 3), dtype=np.uint8)
    for object_id in np.unique(labels):
        if object_id:
            out[labels == object_id] = color_of(int(object_id))
    return out


def mask_border(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (image edges count as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def draw_overlay(
    image: np.ndarray,
    masks: np.ndarray,
    objects: Sequence[SegmentedObject],
    alpha: float = 0.45,
    *,
    prompts: Sequence[Prompt | None] | None = None,
    rejections: Sequence[Rejection] = (),
    random_weights: bool = False,
) -> np.ndarray:
    """RGB copy of ``image`` with masks, outlines, ``id label`` tabs, prompts, rejections and the banner."""
    image_module = require("PIL.Image", "the overlay")
    draw_module = require("PIL.ImageDraw", "the overlay")
    out = image.astype(np.float32)
    for mask, obj in zip(masks, objects, strict=True):
        out[mask] = out[mask] * (1.0 - alpha) + color_of(obj.object_id).astype(np.float32) * alpha
    out = out.astype(np.uint8)
    for mask, obj in zip(masks, objects, strict=True):
        out[mask_border(mask)] = color_of(obj.object_id)

    picture = image_module.fromarray(out)
    draw = draw_module.Draw(picture)
    height, width = out.shape[:2]
    font = _font(max(10, min(height, width) // 30))
    banner = _text_height(draw, BANNER_TEXT, font) + 6 if random_weights else 0
    for index, obj in enumerate(objects):
        prompt = prompts[index] if prompts is not None and index < len(prompts) else None
        if prompt is not None:
            _draw_prompt(draw, prompt, tuple(int(v) for v in color_of(obj.object_id)), max(2, width // 160))
    placed: list[tuple[int, int, int, int]] = []
    for obj in objects:
        color = tuple(int(v) for v in color_of(obj.object_id))
        text = f"{obj.object_id} {obj.label}"
        placed.append(_tab(draw, (obj.box[0], obj.box[1]), text, color, font, (width, height, banner), placed))
    lines = [f'rejected "{r.phrase}"' + (f": {r.reason}" if r.reason else "") for r in rejections]
    y = height
    for line in reversed(lines):
        y -= _text_height(draw, line, font) + 4
        draw.rectangle((0, y, width, y + _text_height(draw, line, font) + 4), fill=(0, 0, 0))
        draw.text((4, y + 2), line, fill=(255, 255, 255), font=font)
    if random_weights:
        draw.rectangle((0, 0, width, banner), fill=BANNER)
        draw.text((4, 3), BANNER_TEXT, fill=(255, 255, 255), font=font)
    return np.asarray(picture)


def overlay_of(result: RoundResult) -> np.ndarray:
    """The overlay of a finished round (its frame, masks, prompts, rejections and weights)."""
    if result.image is None:
        raise ValueError("the round kept no image to draw on")
    masks = result.masks if result.masks is not None else np.zeros((0, *result.image.shape[:2]), dtype=bool)
    return draw_overlay(
        result.image,
        masks,
        result.objects,
        prompts=result.prompts,
        rejections=result.rejections,
        random_weights=result.random_weights,
    )


def _draw_prompt(draw: Any, prompt: Prompt, color: tuple[int, ...], radius: int) -> None:
    if prompt.box is not None:
        draw.rectangle(tuple(float(v) for v in prompt.box), outline=color, width=1)
    if prompt.points is not None and prompt.point_labels is not None:
        for (x, y), label in zip(prompt.points, prompt.point_labels, strict=True):
            if label == 1:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=POSITIVE, outline=(0, 0, 0))
            elif label == 0:
                draw.line((x - radius, y - radius, x + radius, y + radius), fill=NEGATIVE, width=2)
                draw.line((x - radius, y + radius, x + radius, y - radius), fill=NEGATIVE, width=2)


def _tab(
    draw: Any,
    corner: tuple[float, float],
    text: str,
    color: tuple[int, ...],
    font: Any,
    frame: tuple[int, int, int],
    placed: list[tuple[int, int, int, int]],
) -> tuple[int, int, int, int]:
    """``text`` on a tab of the object's colour just above its box; returns the tab's rectangle.

    ``frame`` is (width, height, rows kept free at the top for the banner); a tab that would cover one
    already ``placed`` moves down below it, so that objects with the same corner stay readable.
    """
    w, h, top_free = frame
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tab_w, tab_h = right - left + 6, bottom - top + 4
    x = min(max(0, int(corner[0])), max(0, w - tab_w))
    above = int(corner[1]) - tab_h
    y = above if above >= top_free else max(int(corner[1]), top_free)
    for _ in placed:  # each pass clears at least one tab; as many passes as tabs suffice
        hit = [r for r in placed if x < r[2] and r[0] < x + tab_w and y < r[3] and r[1] < y + tab_h]
        if not hit:
            break
        y = max(r[3] for r in hit) + 1
    y = min(y, max(0, h - tab_h))
    draw.rectangle((x, y, x + tab_w, y + tab_h), fill=color)
    dark = sum(color) < 380  # white on dark tabs, black on light ones
    draw.text((x + 3 - left, y + 2 - top), text, fill=(255, 255, 255) if dark else (0, 0, 0), font=font)
    return (x, y, x + tab_w, y + tab_h)


def _text_height(draw: Any, text: str, font: Any) -> int:
    _, top, _, bottom = draw.textbbox((0, 0), text or " ", font=font)
    return int(bottom - top)


def _font(size: int) -> Any:
    font_module = require("PIL.ImageFont", "the overlay")
    try:
        return font_module.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed-size bitmap font
        return font_module.load_default()
