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

"""``reasonseg demo-bag``: a small synthetic scene with a multi-round dialogue and exact ground truth.

Shapes of known colours on a textured background; the camera pans, so every
frame shifts the scene. The dialogue has single targets, a target named
relative to an earlier one, several targets at once, an absent target, and
a reference back to a remembered object. Instructions come twice: as
plain language on ``/instruction`` and as ``prompt``-reasoner JSON (boxes
from the ground truth, object ids for remembered objects) on
``/instruction_prompt``, so the bag exercises both reasoner kinds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonseg_ros.eval.bag_io import BagWriter
from reasonseg_ros.eval.ground_truth import FILE_NAME, GroundTruth, write_jsonl
from reasonseg_ros.masks import encode_rle, mask_to_box
from reasonseg_ros.messages import numpy_to_image

IMAGE_TOPIC = "/camera/image"
INSTRUCTION_TOPIC = "/instruction"
PROMPT_TOPIC = "/instruction_prompt"
HEIGHT, WIDTH = 240, 320
FRAME_PERIOD_NS = 100_000_000  # 10 Hz
PAN_PX_PER_FRAME = 2


@dataclass(frozen=True)
class Shape:
    name: str
    color: tuple[int, int, int]
    draw: Callable[[np.ndarray, np.ndarray, int], np.ndarray]
    """(ys, xs, pan) -> bool mask."""


def _square(x: int, y: int, side: int) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    return lambda ys, xs, pan: (xs >= x - pan) & (xs < x - pan + side) & (ys >= y) & (ys < y + side)


def _circle(cx: int, cy: int, r: int) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    return lambda ys, xs, pan: (xs - (cx - pan)) ** 2 + (ys - cy) ** 2 < r * r


def _triangle(x: int, y: int, side: int) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    return lambda ys, xs, pan: (ys < y + side) & (ys >= y) & (np.abs(xs - (x - pan)) * 2 < (ys - y))


SHAPES = [
    Shape("red square", (220, 40, 40), _square(60, 70, 50)),
    Shape("blue circle", (40, 70, 220), _circle(170, 95, 28)),
    Shape("green triangle", (40, 190, 60), _triangle(120, 150, 60)),
    Shape("blue circle", (40, 70, 220), _circle(250, 170, 22)),
]


@dataclass(frozen=True)
class Turn:
    frame: int
    session: str
    text: str
    shapes: tuple[int, ...]
    """Indices into SHAPES; empty for an absent target."""
    remembered: bool = False
    """The prompt JSON names the object by the id it got earlier in the session."""


DIALOGUE = [
    Turn(5, "demo", "the red square", (0,)),
    Turn(10, "demo", "the circle right of it", (1,)),
    Turn(15, "demo", "all the blue circles", (1, 3)),
    Turn(20, "demo", "the purple star", ()),
    Turn(25, "demo", "the square again", (0,), remembered=True),
    Turn(30, "other", "the green triangle", (2,)),
]


def render(frame: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The RGB image of ``frame`` and the exact mask of every shape in it."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    pan = frame * PAN_PX_PER_FRAME
    texture = 110 + 40 * np.sin((xs + pan) / 9.0) * np.cos(ys / 13.0)
    image = np.stack([texture * 0.9, texture * 0.8, texture * 0.7], axis=2).astype(np.uint8)
    masks = []
    for shape in SHAPES:
        mask = shape.draw(ys, xs, pan)
        image[mask] = shape.color
        masks.append(mask)
    return image, masks


def write_demo_bag(out: str | Path, frames: int = 40) -> Path:
    """Write the bag (MCAP) and its ground truth (``ground_truth.jsonl`` inside the bag folder)."""
    out = Path(out)
    turns = [t for t in DIALOGUE if t.frame < frames]
    records = []
    ids: dict[tuple[str, int], int] = {}
    next_id: dict[str, int] = {}
    rounds: dict[str, int] = {}
    with BagWriter(out) as bag:
        image_cls = bag.types["sensor_msgs/msg/Image"]
        for frame in range(frames):
            stamp = frame * FRAME_PERIOD_NS
            image, masks = render(frame)
            bag.write(
                IMAGE_TOPIC,
                "sensor_msgs/msg/Image",
                numpy_to_image(image_cls, _header(bag, stamp), image, "rgb8"),
                stamp,
            )
            for turn in (t for t in turns if t.frame == frame):
                round_index = rounds.get(turn.session, 0)
                rounds[turn.session] = round_index + 1
                envelope = {"session": turn.session, "stamp_ns": stamp}
                prompt = _prompt_json(turn, masks, ids, next_id)
                when = stamp + FRAME_PERIOD_NS // 2
                bag.write(INSTRUCTION_TOPIC, "std_msgs/msg/String", _string(bag, {"text": turn.text, **envelope}), when)
                bag.write(PROMPT_TOPIC, "std_msgs/msg/String", _string(bag, {"text": prompt, **envelope}), when)
                records.append(
                    GroundTruth(
                        index=len(records),
                        session=turn.session,
                        round=round_index,
                        text=turn.text,
                        objects=tuple((SHAPES[i].name, encode_rle(masks[i])) for i in turn.shapes),
                        stamp_ns=stamp,
                        extra={"prompt_text": prompt},
                    )
                )
    write_jsonl(out / FILE_NAME, records)
    return out


def _prompt_json(turn: Turn, masks: list[np.ndarray], ids: dict[tuple[str, int], int], next_id: dict[str, int]) -> str:
    """What a planner would send the ``prompt`` reasoner for this turn (ids as the engine will number them)."""
    if not turn.shapes:
        return json.dumps({"rejections": [{"phrase": turn.text, "reason": "not in the scene"}]})
    targets = []
    for index in turn.shapes:
        key = (turn.session, index)
        if turn.remembered and key in ids:
            targets.append({"object_id": ids[key]})
            continue
        targets.append({"label": SHAPES[index].name, "box": [int(v) for v in mask_to_box(masks[index])]})
        ids[key] = next_id.get(turn.session, 1)  # a target without an id always becomes a new object
        next_id[turn.session] = ids[key] + 1
    return json.dumps({"targets": targets})


def _header(bag: BagWriter, stamp_ns: int) -> object:
    time = bag.types["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    return bag.types["std_msgs/msg/Header"](stamp=time, frame_id="demo_camera")


def _string(bag: BagWriter, data: dict) -> object:
    return bag.types["std_msgs/msg/String"](data=json.dumps(data))
