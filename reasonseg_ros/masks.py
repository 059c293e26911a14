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

"""Masks, boxes and label images; run-length encoding is pycocotools' own."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reasonseg_ros.deps import require
from reasonseg_ros.types import RLE

Box = tuple[float, float, float, float]


def _mask_utils():  # noqa: ANN202 - a module
    return require("pycocotools.mask", "mask run-length encoding")


def encode_rle(mask: np.ndarray) -> RLE:
    """Encode one H×W bool mask as a JSON-ready pycocotools RLE."""
    if mask.ndim != 2:
        raise ValueError(f"expected an H×W mask, got shape {mask.shape}")
    rle = _mask_utils().encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: RLE) -> np.ndarray:
    """Decode a pycocotools RLE (compressed string or uncompressed list counts) to H×W bool."""
    utils = _mask_utils()
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        compressed = utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    else:
        compressed = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return utils.decode(compressed).astype(bool)


def _as_coco(rle: RLE) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def rle_area(rle: RLE) -> int:
    return int(_mask_utils().area(_as_coco(rle)))


def rle_iou(a: RLE, b: RLE) -> float:
    """IoU of two RLE masks of the same size; 1.0 when both are empty."""
    inter, union = rle_intersection_union(a, b)
    return 1.0 if union == 0 else inter / union


def rle_intersection_union(a: RLE, b: RLE) -> tuple[int, int]:
    """Pixel counts of ``a ∩ b`` and ``a ∪ b``."""
    utils = _mask_utils()
    ca, cb = _as_coco(a), _as_coco(b)
    inter = int(utils.area(utils.merge([ca, cb], intersect=True)))
    union = int(utils.area(utils.merge([ca, cb], intersect=False)))
    return inter, union


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks; 1.0 when both are empty."""
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else float(np.count_nonzero(a & b)) / union


def mask_to_box(mask: np.ndarray) -> Box | None:
    """Tight ``[x1, y1, x2, y2]`` box (pixel edges, x2/y2 exclusive) or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return 0.0 if union <= 0 else inter / union


def label_image(masks: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """H×W uint16 image, 0 = background, pixel = object id.

    Where masks overlap, the later mask wins, so the order of ``masks`` is
    the drawing order.
    """
    if masks.ndim != 3 or masks.shape[0] != len(ids):
        raise ValueError(f"{len(ids)} ids for masks of shape {masks.shape}")
    if any(not 0 < i < 65536 for i in ids):
        raise ValueError(f"object ids must be in 1..65535 for a uint16 label image, got {list(ids)}")
    labels = np.zeros(masks.shape[1:], dtype=np.uint16)
    for mask, object_id in zip(masks, ids, strict=True):
        labels[mask] = object_id
    return labels
