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

"""ReasonSeg (LISA) -> bag.

Layout: a split folder (``train``, ``val``, ``test``) of ``NAME.jpg`` with
``NAME.json``: ``text`` (a list of instructions for the image),
``is_sentence`` and ``shapes`` (each ``label`` and polygon ``points``
``[[x, y], ...]``). Shapes labelled ``target`` form the mask; ``ignore``
shapes are left out of scoring; ``flag`` shapes are deprecated and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from reasonseg_ros.eval.convert.common import ImageSample, Query, load_rgb, polygons_to_rle
from reasonseg_ros.masks import decode_rle, encode_rle


def samples(src: Path) -> Iterator[ImageSample]:
    annotations = sorted(src.glob("*.json"))
    if not annotations:
        raise ValueError(f"no ReasonSeg annotations (*.json) in {src}")
    for path in annotations:
        image_path = path.with_suffix(".jpg")
        if not image_path.is_file():
            raise ValueError(f"{path} has no image {image_path.name}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            data = json.loads(path.read_text(encoding="cp1252"))  # some ReasonSeg files are not UTF-8
        height, width = load_rgb(image_path).shape[:2]
        target, ignore = [], []
        for shape in data.get("shapes", []):
            label = shape["label"].lower()
            if label == "flag":
                continue
            flat = [float(v) for point in shape["points"] for v in point]
            (ignore if "ignore" in label else target).append(flat)
        target_rle = polygons_to_rle(target, height, width)
        ignore_rle = polygons_to_rle(ignore, height, width) if ignore else None
        if ignore_rle is not None:  # an ignored region wins over the target, as in LISA's evaluation
            target_rle = encode_rle(decode_rle(target_rle) & ~decode_rle(ignore_rle))
        texts = data["text"] if isinstance(data["text"], list) else [data["text"]]
        sentence = bool(data.get("is_sentence", False))
        queries = tuple(
            Query(
                text,
                (("target", target_rle),),
                f"reasonseg-{path.stem}-{i}",
                ignore=ignore_rle,
                # the references pose a sentence and a phrase differently and score only an image's first text
                extra={"reference": {"dataset": "reasonseg", "is_sentence": sentence, "first": i == 0}},
            )
            for i, text in enumerate(texts)
        )
        yield ImageSample(image_path, queries)
