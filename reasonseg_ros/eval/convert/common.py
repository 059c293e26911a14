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

"""What every dataset converter shares: samples in, a bag with its ground truth out."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.deps import require
from reasonseg_ros.eval.bag_io import BagWriter
from reasonseg_ros.eval.ground_truth import FILE_NAME, GroundTruth, write_jsonl
from reasonseg_ros.messages import numpy_to_image
from reasonseg_ros.types import RLE

IMAGE_TOPIC = "/camera/image"
INSTRUCTION_TOPIC = "/instruction"
FRAME_SPACING_NS = 1_000_000_000
"""Each image is one frame, a second apart on the bag's timeline."""
INSTRUCTION_SPACING_NS = 10_000_000


@dataclass(frozen=True)
class Query:
    text: str
    objects: tuple[tuple[str, RLE], ...]
    """Expected ``(label, mask)``; empty when the referred object is absent."""
    session: str
    round: int = 0
    ignore: RLE | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Kept in the ground-truth record's ``extra`` (``reference``: how the reference evaluations pose it)."""


@dataclass(frozen=True)
class ImageSample:
    image: Path
    queries: tuple[Query, ...]


def referring_group(queries: Sequence[Query], dataset: str) -> tuple[Query, ...]:
    """Mark each of an image's referring queries with all of them, as GSVA's evaluation asks them together.

    ``extra["reference"]``: ``dataset``, the image's phrases in order (``group``), which are present and
    this query's ``position`` (``reasoner/seg_token/reference.py``).
    """
    group = [q.text for q in queries]
    present = [bool(q.objects) for q in queries]
    return tuple(
        dataclasses.replace(
            q, extra={"reference": {"dataset": dataset, "group": group, "present": present, "position": k}}
        )
        for k, q in enumerate(queries)
    )


def load_rgb(path: Path) -> np.ndarray:
    image_module = require("PIL.Image", "reading dataset images")
    try:
        with image_module.open(path) as picture:
            return np.asarray(picture.convert("RGB"))
    except OSError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int) -> RLE:
    """COCO polygons (each a flat ``[x1, y1, x2, y2, ...]``) as one merged RLE."""
    utils = require("pycocotools.mask", "rasterising polygons")
    valid = [list(map(float, p)) for p in polygons if len(p) >= 6]
    if not valid:
        return encode_empty(height, width)
    merged = utils.merge(utils.frPyObjects(valid, height, width))
    return {"size": [height, width], "counts": merged["counts"].decode("ascii")}


def coco_segmentation_to_rle(segmentation: object, height: int, width: int) -> RLE:
    """A COCO annotation's ``segmentation``: polygons, uncompressed or compressed RLE."""
    utils = require("pycocotools.mask", "rasterising COCO masks")
    if isinstance(segmentation, list):
        return polygons_to_rle(segmentation, height, width)
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = utils.frPyObjects(segmentation, height, width)
        return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    if isinstance(segmentation, dict):
        counts = segmentation["counts"]
        return {"size": [height, width], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
    raise ValueError(f"unknown COCO segmentation of type {type(segmentation).__name__}")


def encode_empty(height: int, width: int) -> RLE:
    from reasonseg_ros.masks import encode_rle

    return encode_rle(np.zeros((height, width), dtype=bool))


def limited(samples: Iterable[ImageSample], limit: int | None) -> Iterator[ImageSample]:
    """Stop once ``limit`` queries have been yielded (cutting the last image's queries short)."""
    left = limit
    for sample in samples:
        if left is not None and left <= 0:
            return
        if left is not None and len(sample.queries) > left:
            sample = ImageSample(sample.image, sample.queries[:left])
        if left is not None:
            left -= len(sample.queries)
        yield sample


def write_bag(
    samples: Iterable[ImageSample], out: str | Path, limit: int | None = None, progress: bool = False
) -> tuple[Path, int, int]:
    """Write images and timed instructions (MCAP) and ``ground_truth.jsonl``; returns (bag, images, queries).

    ``progress`` shows a bar of the images written (tqdm, from the eval extra).
    """
    out = Path(out)
    samples = iter(samples)
    first = next(samples, None)  # read the dataset's index before creating anything
    if first is None:
        raise ValueError("the dataset has no samples (check --split)")
    try:
        chained: Iterable[ImageSample] = itertools.chain([first], samples)
        if progress:
            tqdm = require("tqdm", "the convert progress bar").tqdm
            chained = tqdm(chained, unit="image", desc=out.name, dynamic_ncols=True)
        return _write(chained, out, limit)
    except BaseException:
        if out.exists():
            shutil.rmtree(out)  # no half-written bag left behind
        raise


def _write(samples: Iterable[ImageSample], out: Path, limit: int | None) -> tuple[Path, int, int]:
    records: list[GroundTruth] = []
    images = 0
    with BagWriter(out) as bag:
        types = bag.types
        for frame, sample in enumerate(limited(samples, limit)):
            pixels = load_rgb(sample.image)
            stamp = frame * FRAME_SPACING_NS
            time = types["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9)
            header = types["std_msgs/msg/Header"](stamp=time, frame_id=sample.image.name)
            msg = numpy_to_image(types["sensor_msgs/msg/Image"], header, pixels, "rgb8")
            bag.write(IMAGE_TOPIC, "sensor_msgs/msg/Image", msg, stamp)
            images += 1
            for k, query in enumerate(sample.queries):
                for _, rle in query.objects:
                    if list(rle["size"]) != [pixels.shape[0], pixels.shape[1]]:
                        raise ValueError(f"{sample.image}: a mask is {rle['size']}, the image {pixels.shape[:2]}")
                envelope = {"text": query.text, "session": query.session, "stamp_ns": stamp}
                when = stamp + (k + 1) * INSTRUCTION_SPACING_NS
                bag.write(
                    INSTRUCTION_TOPIC,
                    "std_msgs/msg/String",
                    types["std_msgs/msg/String"](data=json.dumps(envelope)),
                    when,
                )
                records.append(
                    GroundTruth(
                        len(records),
                        query.session,
                        query.round,
                        query.text,
                        query.objects,
                        stamp,
                        query.ignore,
                        dict(query.extra),
                    )
                )
    write_jsonl(out / FILE_NAME, records)
    return out, images, len(records)
