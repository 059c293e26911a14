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
frame shifts the scene, and two shapes also move on their own (the red
square slides down, the small blue circle right). The dialogue has single
targets, a target named relative to an earlier one, several targets at
once, an absent target, and a reference back to a remembered object made
twenty frames after it was segmented, once it has moved (a memory frozen at
the first frame points at the wrong place there). Instructions come twice: as
plain language on ``/instruction`` and as ``prompt``-reasoner JSON (boxes
from the ground truth, object ids for remembered objects) on
``/instruction_prompt``, so the bag exercises both reasoner kinds. The
ground truth also has every frame's mask of every shape a session talks
about (tracking records, ``type: frame``), for scoring tracking.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonseg_ros.eval.bag_io import BagWriter
from reasonseg_ros.eval.ground_truth import FILE_NAME, FrameTruth, GroundTruth, ObjectTruth, write_jsonl
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
    draw: Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]
    """(ys, xs, pan, frame) -> bool mask."""


def _square(x: int, y: int, side: int, dy: float = 0.0) -> Callable[..., np.ndarray]:
    def draw(ys: np.ndarray, xs: np.ndarray, pan: int, frame: int) -> np.ndarray:
        top = y + round(dy * frame)
        return (xs >= x - pan) & (xs < x - pan + side) & (ys >= top) & (ys < top + side)

    return draw


def _circle(cx: int, cy: int, r: int, dx: float = 0.0) -> Callable[..., np.ndarray]:
    def draw(ys: np.ndarray, xs: np.ndarray, pan: int, frame: int) -> np.ndarray:
        centre = cx - pan + round(dx * frame)
        return (xs - centre) ** 2 + (ys - cy) ** 2 < r * r

    return draw


def _triangle(x: int, y: int, side: int) -> Callable[..., np.ndarray]:
    return lambda ys, xs, pan, frame: (ys < y + side) & (ys >= y) & (np.abs(xs - (x - pan)) * 2 < (ys - y))


SQUARE_DY_PX_PER_FRAME = 1.5
"""The red square's own motion (down), on top of the camera's pan."""
SMALL_CIRCLE_DX_PX_PER_FRAME = 3.0
"""The small blue circle's own motion (right), on top of the pan: it drifts right at 1 px per frame."""

SHAPES = [
    Shape("red square", (220, 40, 40), _square(60, 40, 50, dy=SQUARE_DY_PX_PER_FRAME)),
    Shape("blue circle", (40, 70, 220), _circle(170, 95, 28)),
    Shape("green triangle", (40, 190, 60), _triangle(120, 150, 60)),
    Shape("blue circle", (40, 70, 220), _circle(230, 175, 22, dx=SMALL_CIRCLE_DX_PX_PER_FRAME)),
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
    """The RGB image of ``frame`` and the exact visible mask of every shape in it (later shapes cover earlier)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    pan = frame * PAN_PX_PER_FRAME
    texture = 110 + 40 * np.sin((xs + pan) / 9.0) * np.cos(ys / 13.0)
    image = np.stack([texture * 0.9, texture * 0.8, texture * 0.7], axis=2).astype(np.uint8)
    masks: list[np.ndarray] = []
    for shape in SHAPES:
        mask = shape.draw(ys, xs, pan, frame)
        image[mask] = shape.color
        for earlier in masks:
            earlier &= ~mask
        masks.append(mask)
    return image, masks


def tracked_shapes(turns: list[Turn]) -> dict[str, list[int]]:
    """The shapes each session talks about: its tracking ground truth (truth id = shape index + 1)."""
    shapes: dict[str, list[int]] = {}
    for turn in turns:
        known = shapes.setdefault(turn.session, [])
        known += [i for i in turn.shapes if i not in known]
    return shapes


def write_demo_bag(out: str | Path, frames: int = 40) -> Path:
    """Write the bag (MCAP) and its ground truth (``ground_truth.jsonl`` inside the bag folder)."""
    out = Path(out)
    turns = [t for t in DIALOGUE if t.frame < frames]
    tracked = tracked_shapes(turns)
    records: list[GroundTruth] = []
    frame_records: list[FrameTruth] = []
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
            frame_records += [
                FrameTruth(
                    session,
                    stamp,
                    tuple(ObjectTruth(i + 1, SHAPES[i].name, encode_rle(masks[i])) for i in sorted(indices)),
                )
                for session, indices in tracked.items()
            ]
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
    write_jsonl(out / FILE_NAME, [*records, *frame_records])
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
