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

"""Multi-round dialogues (SegLLM's MRSeg style) -> bag; the format is ours, documented in docs/evaluation.md.

``SRC`` is a JSON file::

    {"dialogues": [
      {"image": "kitchen.jpg", "session": "kitchen-1",
       "rounds": [
         {"text": "the mug", "objects": [{"label": "mug", "polygons": [[x1, y1, x2, y2, ...]]}]},
         {"text": "the plate left of it", "objects": [{"label": "plate", "mask": {"size": [h, w], "counts": "..."}}]},
         {"text": "the fork", "objects": []}]}]}

Image paths are relative to the JSON file. All rounds of a dialogue run on
its image in one session, so later rounds can refer to earlier objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from reasonseg_ros.eval.convert.common import ImageSample, Query, load_rgb, polygons_to_rle


def samples(src: Path) -> Iterator[ImageSample]:
    try:
        data = json.loads(src.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {src}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("dialogues"), list):
        raise ValueError(f"{src}: expected {{'dialogues': [...]}}")
    for number, dialogue in enumerate(data["dialogues"]):
        image = src.parent / dialogue["image"]
        height, width = load_rgb(image).shape[:2]
        session = dialogue.get("session", f"dialogue-{number}")
        queries = []
        for index, turn in enumerate(dialogue["rounds"]):
            objects = []
            for obj in turn.get("objects", []):
                if "mask" in obj:
                    mask = {"size": list(obj["mask"]["size"]), "counts": obj["mask"]["counts"]}
                elif "polygons" in obj:
                    mask = polygons_to_rle(obj["polygons"], height, width)
                else:
                    raise ValueError(f"{src}: dialogue {number} round {index}: an object needs a mask or polygons")
                objects.append((str(obj.get("label", "")), mask))
            queries.append(Query(turn["text"], tuple(objects), session, round=index))
        yield ImageSample(image, tuple(queries))
