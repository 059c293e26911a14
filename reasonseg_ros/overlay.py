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

"""A debug picture: masks tinted over the image, with their boxes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reasonseg_ros.types import SegmentedObject


def color_of(object_id: int) -> np.ndarray:
    """A stable, distinct RGB colour per object id (golden-ratio hue steps)."""
    hue = (object_id * 0.618033988749895) % 1.0
    h6 = hue * 6.0
    x = 1.0 - abs(h6 % 2.0 - 1.0)
    rgb = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(h6) % 6]
    return (np.asarray(rgb) * 215 + 40).astype(np.uint8)


def draw_overlay(
    image: np.ndarray, masks: np.ndarray, objects: Sequence[SegmentedObject], alpha: float = 0.5
) -> np.ndarray:
    """RGB copy of ``image`` with each mask blended in its object's colour and its box outlined."""
    out = image.astype(np.float32)
    for mask, obj in zip(masks, objects, strict=True):
        color = color_of(obj.object_id).astype(np.float32)
        out[mask] = out[mask] * (1.0 - alpha) + color * alpha
    out = out.astype(np.uint8)
    height, width = out.shape[:2]
    for obj in objects:
        color = color_of(obj.object_id)
        x1, y1 = int(obj.box[0]), int(obj.box[1])
        x2, y2 = min(int(np.ceil(obj.box[2])) - 1, width - 1), min(int(np.ceil(obj.box[3])) - 1, height - 1)
        out[y1, x1 : x2 + 1] = color
        out[y2, x1 : x2 + 1] = color
        out[y1 : y2 + 1, x1] = color
        out[y1 : y2 + 1, x2] = color
    return out
