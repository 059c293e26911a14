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

"""gRefCOCO (GRES) -> bag: expressions with one, several or no target.

Layout: ``SRC/instances.json`` (COCO) and ``SRC/grefs(<split_by>).json``: a
list of refs with ``ann_id`` a list of annotation ids (``[-1]`` or
``no_target: true`` for an expression that matches nothing), ``image_id``,
``split`` and ``sentences`` (``sent``, ``sent_id``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from reasonseg_ros.eval.convert.common import ImageSample, Query, coco_segmentation_to_rle, referring_group
from reasonseg_ros.eval.convert.refcoco import load_instances


def find_grefs(src: Path, split_by: str | None) -> Path:
    pattern = f"grefs({split_by}).json" if split_by else "grefs(*).json"
    found = sorted(src.glob(pattern))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ValueError(f"expected one {pattern} in {src} (found: {names}); choose with --split-by")
    return found[0]


def samples(src: Path, images_dir: Path, split: str | None, split_by: str | None) -> Iterator[ImageSample]:
    images, annotations = load_instances(src)
    path = find_grefs(src, split_by)
    try:
        refs = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    by_image: dict[int, list[dict]] = {}
    for ref in refs:
        if split is None or ref.get("split") == split:
            by_image.setdefault(ref["image_id"], []).append(ref)
    for image_id, image_refs in by_image.items():
        info = images[image_id]
        height, width = info["height"], info["width"]
        queries = []
        for ref in image_refs:
            ann_ids = ref["ann_id"] if isinstance(ref["ann_id"], list) else [ref["ann_id"]]
            absent = ref.get("no_target", False) or ann_ids == [-1]
            objects = (
                ()
                if absent
                else tuple(
                    (
                        str(annotations[a].get("category_id", "")),
                        coco_segmentation_to_rle(annotations[a]["segmentation"], height, width),
                    )
                    for a in ann_ids
                    if a != -1
                )
            )
            for sentence in ref["sentences"]:
                session = f"grefcoco-{ref['ref_id']}-{sentence.get('sent_id', len(queries))}"
                queries.append(Query(sentence["sent"], objects, session))
        yield ImageSample(images_dir / info["file_name"], referring_group(queries, "grefcoco"))
