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


def rle_runs(counts: str) -> list[int]:
    """The run lengths packed in a compressed COCO RLE string; ValueError when it is malformed.

    Each run is a little-endian sequence of 5-bit groups stored as chr(48 + bits), bit 0x20 meaning
    "another group follows" and bit 0x10 of the last group the sign; from the third run on, a run
    is stored as its difference to the run two before.
    """
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError("the RLE string ends inside a run")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"character {counts[position]!r} cannot appear in a compressed RLE")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def check_rle(value: object, size: Sequence[int] | None = None) -> RLE:
    """A well-formed RLE ``{"size": [h, w], "counts": str | list}`` whose runs cover h × w exactly.

    ``size``, when given, is the ``(h, w)`` the mask must have. Raises ValueError saying what is wrong.
    """
    if not (isinstance(value, dict) and {"size", "counts"} <= set(value)):
        raise ValueError("a mask must be an RLE {'size': [h, w], 'counts': ...}")
    shape = value["size"]
    if not (
        isinstance(shape, list | tuple)
        and len(shape) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise ValueError(f"an RLE 'size' must be [h, w] with positive integers, got {shape!r}")
    if size is not None and [int(v) for v in size] != list(shape):
        raise ValueError(f"the mask is {shape[0]}×{shape[1]} (h×w) but the image is {size[0]}×{size[1]}")
    counts = value["counts"]
    if isinstance(counts, str):
        runs = rle_runs(counts)
    elif isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
        runs = counts
    else:
        raise ValueError("RLE 'counts' must be a compressed string or a list of run lengths")
    if any(r < 0 for r in runs) or sum(runs) != shape[0] * shape[1]:
        raise ValueError(f"the RLE runs cover {sum(runs)} pixels, not h × w = {shape[0] * shape[1]}")
    return {"size": [int(shape[0]), int(shape[1])], "counts": counts}
