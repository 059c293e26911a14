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

"""refCOCO, refCOCO+, refCOCOg and FP-RefCOCO (false premises) -> bag.

Layout (the REFER toolkit's): ``SRC/instances.json`` (COCO images,
annotations with polygon or RLE segmentation, categories) and
``SRC/refs(<split_by>).p``, a pickle of plain dicts: ``ref_id``, ``ann_id``,
``image_id``, ``split``, ``sentences`` (each ``sent``, ``sent_id``; FP-RefCOCO
adds ``is_false_premise`` and the corrected ``gt_sent``; R-RefCOCO ``exist``).
Images are looked up by their ``file_name`` under ``--images``.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasonseg_ros.eval.convert.common import ImageSample, Query, coco_segmentation_to_rle, referring_group


class PlainDataUnpickler(pickle.Unpickler):
    """Loads only built-in containers and scalars: a refs file that names any class is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a refs file holds only plain data")


def load_refs(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as handle:
        try:
            refs = PlainDataUnpickler(handle).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(refs, list):
        raise ValueError(f"{path} holds a {type(refs).__name__}, expected a list of refs")
    return refs


def find_refs(src: Path, split_by: str | None) -> Path:
    if split_by:
        path = src / f"refs({split_by}).p"
        if not path.is_file():
            raise ValueError(f"{path} not found")
        return path
    found = sorted(src.glob("refs(*).p"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ValueError(f"expected one refs(*).p in {src} (found: {names}); choose with --split-by")
    return found[0]


def load_instances(src: Path) -> tuple[dict[int, dict], dict[int, dict]]:
    path = src / "instances.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    return {img["id"]: img for img in data["images"]}, {ann["id"]: ann for ann in data["annotations"]}


def samples(src: Path, images_dir: Path, split: str | None, split_by: str | None, name: str) -> Iterator[ImageSample]:
    images, annotations = load_instances(src)
    refs = load_refs(find_refs(src, split_by))
    by_image: dict[int, list[dict]] = {}
    for ref in refs:
        if split is None or ref.get("split") == split:
            by_image.setdefault(ref["image_id"], []).append(ref)
    for image_id, image_refs in by_image.items():
        info = images[image_id]
        height, width = info["height"], info["width"]
        queries = []
        for ref in image_refs:
            ann = annotations[ref["ann_id"]]
            label = str(ref.get("category_id", ""))
            mask = coco_segmentation_to_rle(ann["segmentation"], height, width)
            for sentence in ref["sentences"]:
                present = not sentence.get("is_false_premise", False) and sentence.get("exist", True)
                queries.append(
                    Query(
                        text=sentence["sent"],
                        objects=((label, mask),) if present else (),
                        session=f"{name}-{ref['ref_id']}-{sentence.get('sent_id', len(queries))}",
                    )
                )
        yield ImageSample(images_dir / info["file_name"], referring_group(queries, name))
