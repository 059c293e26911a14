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

"""The one versioned prompt of the VLM reasoners, and its bounded memory block.

The model sees the image, a system text that fixes the JSON answer and the
coordinate convention of its family, the remembered objects of the session
(id, label, box in the model's coordinates, round), and the instruction.
With live tracking the box is where the object is now, and an object out of
sight is listed as "not visible for 4.2 s" or "lost" instead of with a box
that is no longer true (docs/tracking.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from reasonseg_ros.memory import MemoryView, last_seen_ns
from reasonseg_ros.reasoner.vlm.coords import CoordinateFrame
from reasonseg_ros.types import SegmentedObject

PROMPT_VERSION = "vlm-json-2"
"""Changes whenever the wording or the answer schema changes; reported in the reasoner's name."""

ANSWER_SCHEMA = (
    '{"targets": [{"label": "<what it is>", "box": [x1, y1, x2, y2], '
    '"points": [[x, y]], "negative_points": [[x, y]], "confidence": 0.9, "object_id": null}], '
    '"rejections": [{"phrase": "<words of the instruction>", "reason": "<why>"}], '
    '"reply": "<one short sentence for the user>"}'
)

SYSTEM_TEXT = """You are the eyes of a robot. Find every object in the image that the user's instruction refers to.
Answer with ONE JSON object and nothing else, in this form:
{schema}
Rules:
- One target per object: "all the mugs" gives one target for each mug.
- Coordinates are {coords}; the image is {width} wide and {height} high in them. x comes before y; \
a box is [left, top, right, bottom].
{points_rule}
- A phrase of the instruction that matches nothing in the image goes in "rejections" with a reason; \
never invent an object.
- If a target is one of the remembered objects listed by the user, set "object_id" to its id \
(you may then leave out the box); otherwise "object_id" is null.
- "confidence" is how sure you are, from 0 to 1."""

DIRECT_POINTS = (
    '- "points": one to three points on the object; "negative_points": up to two points close to it but not on it.'
)
QUERY_POINTS = '- Leave "points" and "negative_points" empty: the box is enough.'

QUERY_CONTEXT = "The {label} is inside the box [{box}]. Answer Yes or No: is this point on the {label}?"
"""Shared by all the questions about one target, so that each question adds only its point."""
QUESTION = "[{x}, {y}]"


@dataclass(frozen=True)
class PromptText:
    """The two texts sent with the image; ``image_first`` puts the image before the user text."""

    system: str
    user: str
    listed_ids: tuple[int, ...] = ()
    """Ids of the remembered objects the memory block lists."""

    def render(self) -> str:
        """Both texts, for results and logs (the image is shown as ``<image>``)."""
        return f"[system]\n{self.system}\n[user]\n<image>\n{self.user}"


def select_memory(memory: MemoryView, cap: int) -> list[SegmentedObject]:
    """At most ``cap`` remembered objects, most recently segmented or referred to first.

    A remembered object that a round refers to is segmented again, which
    moves it to the newest round, so recency covers both.
    """
    order = {obj.object_id: i for i, obj in enumerate(memory.objects)}
    ranked = sorted(memory.objects, key=lambda o: (o.round_index, order[o.object_id]), reverse=True)
    return ranked[: max(cap, 0)]


def memory_block(memory: MemoryView, frame: CoordinateFrame, cap: int) -> tuple[str, tuple[int, ...]]:
    """The remembered objects as text, bounded by ``cap``; returns the text and the ids listed."""
    listed = select_memory(memory, cap)
    if not listed:
        return "Remembered objects: none.", ()
    lines = ["Remembered objects from earlier rounds (most recent first):"]
    for obj in listed:
        where = _where(obj, frame, memory.now_ns)
        lines.append(f'- id {obj.object_id}: "{obj.label}", {where}, round {obj.round_index}')
    left_out = len(memory.objects) - len(listed)
    if left_out > 0:
        lines.append(f"({left_out} older objects are not listed.)")
    return "\n".join(lines), tuple(o.object_id for o in listed)


def _where(obj: SegmentedObject, frame: CoordinateFrame, now_ns: int | None) -> str:
    """Where a remembered object is: its box (the tracked one, when tracking follows it), or how long it is unseen."""
    box = "[" + ", ".join(_number(v) for v in frame.box_from_pixels(obj.box)) + "]"
    unseen = "" if now_ns is None else f" for {max(now_ns - last_seen_ns(obj), 0) / 1e9:.1f} s"
    if obj.status == "occluded":
        return f"not visible{unseen} (last seen at box {box})"
    if obj.status == "lost":
        return f"lost (not seen{unseen})"
    if obj.updated_stamp_ns is not None:
        return f"box {box} (where it is now)"
    return f"box {box}"


def build_prompt(
    instruction: str, memory: MemoryView, frame: CoordinateFrame, *, memory_cap: int, point_mode: str
) -> PromptText:
    """The system and user texts for one round."""
    width, height = _extent(frame)
    system = SYSTEM_TEXT.format(
        schema=ANSWER_SCHEMA,
        coords=frame.convention.describe,
        width=_number(width),
        height=_number(height),
        points_rule=DIRECT_POINTS if point_mode == "direct" else QUERY_POINTS,
    )
    block, listed = memory_block(memory, frame, memory_cap)
    user = f"{block}\nInstruction: {instruction}"
    return PromptText(system, user, listed)


def query_target(label: str, box: list[float]) -> str:
    """The text that places one target and asks about "this point", before its questions."""
    return QUERY_CONTEXT.format(label=label, box=", ".join(_number(v) for v in box))


def query_question(x: float, y: float) -> str:
    """One candidate point; the fewer its tokens, the cheaper each candidate."""
    return QUESTION.format(x=_number(x), y=_number(y))


def _extent(frame: CoordinateFrame) -> tuple[float, float]:
    """``(width, height)`` of the image in the model's coordinates."""
    if frame.convention.kind == "relative":
        return frame.convention.scale, frame.convention.scale
    resized = frame.convention.kind == "resized_pixels"
    height, width = frame.model_size if resized else frame.image_size  # type: ignore[misc]
    return float(width), float(height)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
