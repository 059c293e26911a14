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

"""The ``prompt`` reasoner: the instruction already says where the objects are.

It is what a click-to-segment tool or a planner sends, and it runs the whole
pipeline without a language model. The instruction is JSON::

    {"targets": [{"label": "mug", "box": [x1, y1, x2, y2]},
                 {"label": "plate", "points": [[x, y], [x, y]], "point_labels": [1, 0]},
                 {"object_id": 3},
                 {"label": "cup", "mask": {"size": [h, w], "counts": "..."}}],
     "rejections": [{"phrase": "the red cup", "reason": "not on the table"}],
     "reply": "optional text"}

or just the list of targets. Coordinates are pixels of the image. A target
naming ``object_id`` re-segments a remembered object, prompted by its stored
box unless the target gives a box or points of its own. A ``mask`` (COCO
RLE of the image's size) is taken as the object's mask as it is: the first-frame
annotation of a video-object-segmentation benchmark, or a click tool's mask.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from reasonseg_ros.errors import InputError
from reasonseg_ros.masks import check_rle, decode_rle
from reasonseg_ros.memory import MemoryView
from reasonseg_ros.reasoner.validate import is_number as _is_number
from reasonseg_ros.types import Prompt, ReasonerOutput, Rejection, Target

EXAMPLE = '{"targets": [{"label": "mug", "box": [10, 20, 120, 140]}]}'
TARGET_KEYS = {"label", "box", "points", "point_labels", "mask", "object_id", "score"}


class PromptReasoner:
    name = "prompt (JSON boxes, points and object ids)"

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> ReasonerOutput:
        request = _parse(text)
        height, width = image.shape[:2]
        targets = tuple(
            _target(entry, f"targets[{i}]", width, height, memory) for i, entry in enumerate(request["targets"])
        )
        rejections = tuple(_rejection(entry, f"rejections[{i}]") for i, entry in enumerate(request["rejections"]))
        if not targets and not rejections:
            raise InputError("the instruction names no targets and no rejections")
        reply = request["reply"]
        if not isinstance(reply, str):
            raise InputError("'reply' must be a string")
        return ReasonerOutput(reply=reply, targets=targets, rejections=rejections)


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"the 'prompt' reasoner takes JSON such as {EXAMPLE} (not valid JSON: {exc.msg} at char {exc.pos}); "
            "plain-language instructions need a language-model reasoner: set reasoner.backend"
        ) from None
    if isinstance(data, list):
        data = {"targets": data}
    if not isinstance(data, dict):
        raise InputError(f"the instruction must be a JSON object or a list of targets, e.g. {EXAMPLE}")
    unknown = set(data) - {"targets", "rejections", "reply"}
    if unknown:
        raise InputError(f"unknown keys {sorted(unknown)}; expected targets, rejections, reply")
    request = {
        "targets": data.get("targets", []),
        "rejections": data.get("rejections", []),
        "reply": data.get("reply", ""),
    }
    for key in ("targets", "rejections"):
        if not isinstance(request[key], list):
            raise InputError(f"'{key}' must be a list")
    return request


def _target(entry: Any, where: str, width: int, height: int, memory: MemoryView) -> Target:
    if not isinstance(entry, dict):
        raise InputError(f"{where} must be an object with a box, points or an object_id")
    unknown = set(entry) - TARGET_KEYS
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}; expected {sorted(TARGET_KEYS)}")
    object_id = entry.get("object_id")
    remembered = None
    if object_id is not None:
        if not isinstance(object_id, int) or isinstance(object_id, bool):
            raise InputError(f"{where}.object_id must be an integer, got {object_id!r}")
        remembered = memory.get(object_id)
        if remembered is None:
            known = ", ".join(str(o.object_id) for o in memory.objects) or "none"
            raise InputError(
                f"{where}: object {object_id} is not in the memory of session '{memory.session}' (remembered: {known})"
            )
    box = _box(entry["box"], f"{where}.box", width, height) if "box" in entry else None
    points, labels = _points(entry, where, width, height)
    mask = _mask(entry["mask"], f"{where}.mask", width, height) if "mask" in entry else None
    if box is None and points is None and mask is None:
        if remembered is None:
            raise InputError(f"{where} needs a box, points or an object_id, or a mask")
        box = np.asarray(remembered.box, dtype=np.float32)
    label = entry.get("label", remembered.label if remembered else "object")
    if not isinstance(label, str):
        raise InputError(f"{where}.label must be a string")
    score = entry.get("score", 1.0)
    if not _is_number(score):
        raise InputError(f"{where}.score must be a number")
    prompt = Prompt(points=points, point_labels=labels, box=box, mask=mask)
    return Target(label, prompt, float(score), object_id)


def _mask(value: Any, where: str, width: int, height: int) -> np.ndarray:
    """A COCO RLE target mask, checked against the frame's size before it is decoded."""
    try:
        rle = check_rle(value, (height, width))
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    mask = decode_rle(rle)
    if not mask.any():
        raise InputError(f"{where} is empty: a mask target needs at least one pixel")
    return mask


def _box(value: Any, where: str, width: int, height: int) -> np.ndarray:
    if not (isinstance(value, list) and len(value) == 4 and all(_is_number(v) for v in value)):
        raise InputError(f"{where} must be [x1, y1, x2, y2] in pixels, got {value!r}")
    x1, y1, x2, y2 = value
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"{where} {value} is empty or inverted: x2 must exceed x1 and y2 exceed y1")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise InputError(f"{where} {value} lies outside the {width}×{height} image")
    return np.asarray(value, dtype=np.float32)


def _points(entry: dict[str, Any], where: str, width: int, height: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    if "points" not in entry:
        if "point_labels" in entry:
            raise InputError(f"{where}: point_labels without points")
        return None, None
    points = entry["points"]
    if not (
        isinstance(points, list)
        and points
        and all(isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in points)
    ):
        raise InputError(f"{where}.points must be a non-empty list of [x, y] pixels, got {points!r}")
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"{where}: point [{x}, {y}] lies outside the {width}×{height} image")
    labels = entry.get("point_labels", [1] * len(points))
    if not (isinstance(labels, list) and len(labels) == len(points) and all(v in (0, 1) for v in labels)):
        raise InputError(f"{where}.point_labels must list 1 (object) or 0 (background) for each point")
    return np.asarray(points, dtype=np.float32), np.asarray(labels, dtype=np.int64)


def _rejection(entry: Any, where: str) -> Rejection:
    if not (isinstance(entry, dict) and isinstance(entry.get("phrase"), str)):
        raise InputError(f"{where} must be an object with a 'phrase' string")
    reason = entry.get("reason", "")
    if not isinstance(reason, str):
        raise InputError(f"{where}.reason must be a string")
    return Rejection(entry["phrase"], reason)
