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

"""``reasonseg convert FORMAT SRC --out BAG``: referring-segmentation datasets -> bags with ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from reasonseg_ros.eval.convert import grefcoco, multiround, reasonseg, refcoco
from reasonseg_ros.eval.convert.common import ImageSample, write_bag

FORMATS = ("refcoco", "refcoco+", "refcocog", "fprefcoco", "grefcoco", "reasonseg", "multiround", "davis")
FORMAT_HELP = {
    "refcoco": "SRC holds instances.json and refs(<split_by>).p; images under --images (default SRC/images)",
    "refcoco+": "as refcoco (RefCOCO+ refs)",
    "refcocog": "as refcoco (RefCOCOg refs; --split-by umd or google)",
    "fprefcoco": "as refcoco; false-premise sentences (is_false_premise / exist: false) expect no object",
    "grefcoco": "SRC holds instances.json and grefs(unc).json; ann_id [-1] or no_target expects no object",
    "reasonseg": "ReasonSeg folder, --split val picks SRC/val; NAME.jpg + NAME.json per image",
    "multiround": "SRC is one JSON file of dialogues (docs/evaluation.md gives its layout)",
    "davis": "DAVIS-format folder (DAVIS 2017, MOSE): JPEGImages/ and Annotations/ per sequence",
}
"""What SRC is for each format (``reasonseg convert --help``)."""


def dataset_samples(
    fmt: str, src: Path, images: Path | None = None, split: str | None = None, split_by: str | None = None
) -> Iterator[ImageSample]:
    if fmt in ("refcoco", "refcoco+", "refcocog", "fprefcoco"):
        return refcoco.samples(src, images or src / "images", split, split_by, fmt)
    if fmt == "grefcoco":
        return grefcoco.samples(src, images or src / "images", split, split_by)
    if fmt == "reasonseg":
        return reasonseg.samples(src / split if split else src)
    if fmt == "multiround":
        return multiround.samples(src)
    raise ValueError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")


def convert(
    fmt: str,
    src: str | Path,
    out: str | Path,
    images: str | Path | None = None,
    split: str | None = None,
    split_by: str | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> tuple[Path, int, int]:
    """Write the bag and its ground truth; returns (bag, images, instructions).

    ``davis`` (DAVIS 2017, MOSE: videos) writes sequences of frames; its ``limit`` counts sequences.
    """
    if fmt == "davis":
        from reasonseg_ros.eval.convert import davis

        return davis.convert(src, out, split, limit)
    samples = dataset_samples(fmt, Path(src), Path(images) if images else None, split, split_by)
    return write_bag(samples, out, limit, progress=progress)


__all__ = ["FORMATS", "FORMAT_HELP", "convert", "dataset_samples"]
