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

"""Reading a VLM's answer: tolerant JSON extraction, then validation against the image and memory.

The answer is never trusted: coordinates are mapped and clipped to the
image, degenerate or inverted boxes and points outside the image are dropped
with a warning, and ids that memory does not hold become rejections. Text
that holds no readable answer raises :class:`ModelOutputError` carrying it.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from reasonseg_ros.errors import ModelOutputError
from reasonseg_ros.limits import QUOTE_CHARS, quote
from reasonseg_ros.memory import MemoryView
from reasonseg_ros.reasoner.validate import is_int, is_number
from reasonseg_ros.reasoner.vlm.coords import CoordinateFrame
from reasonseg_ros.types import Prompt, ReasonerOutput, Rejection, Target

FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
RAW_IN_ERROR = QUOTE_CHARS
"""Characters of the raw answer quoted in an error message (the whole text is in raw_output, capped)."""
MAX_STARTS = 32
"""Opening brackets tried per text; bounds the work on long rambling output."""
MAX_PARSE_CHARS = 32768
"""Characters of an answer searched for JSON (an answer of vlm.max_new_tokens is a few KiB)."""
SCAN_BUDGET = 262144
"""Characters the bracket matcher may scan over all starts of one text: bounds the work on unclosed brackets."""
MAX_DEPTH = 16
"""Deepest bracket nesting read (an answer nests 4 deep); deeper text is never handed to a recursive decoder."""
ABSENT = re.compile(
    r"\b(?:(?:could|can|did|do|does)\s*(?:not|n't)|cannot|unable to)\s+(?:find|see|locate|detect|identify|spot)\b"
    r"|\bthere\s+(?:is|are|was|were)\s+no\b|\bthere(?:'s|\s+is)\s+nothing\b|\bno\s+(?:such|matching)\b"
    r"|\b(?:is|are)(?:\s+not|n't)\s+(?:present|visible|in\s+(?:the|this)\s+(?:image|picture|scene))\b"
    r"|\bdoes(?:\s+not|n't)\s+(?:appear|exist|contain)\b|\bnot\s+(?:present|visible)\b",
    re.IGNORECASE,
)
"""Prose that plainly says the object is absent (Qwen3-VL's "I could not find …" instead of JSON)."""

# Names the models use for the same field (ours first, then Qwen's native ones).
BOX_KEYS = ("box", "bbox_2d", "bbox", "box_2d")
POINT_KEYS = ("points", "positive_points", "point_2d", "point")
NEGATIVE_KEYS = ("negative_points", "negatives", "negative_point_2d")
LABEL_KEYS = ("label", "name", "phrase", "object")
SCORE_KEYS = ("confidence", "score")
ID_KEYS = ("object_id", "id")
ANSWER_KEYS = {"targets", "rejections", "reply", "objects"}


def extract_json(raw: str) -> Any:
    """The answer in ``raw``: inside a code fence, followed by text, or with single quotes.

    Every bracketed value is a candidate; the first that looks like an answer
    (an object with answer or target keys, a list of objects) wins over one
    that does not (a citation such as ``[1]`` in prose before the answer).
    """
    fallback: Any = None
    raw = raw[:MAX_PARSE_CHARS]
    texts = [m.group(1) for m in FENCE.finditer(raw)] + [raw]
    for text in texts:
        for value in _decode_all(text):
            if _looks_like_answer(value):
                return value
            if fallback is None and isinstance(value, dict | list):
                fallback = value
    if fallback is not None:
        return fallback
    raise ValueError("no JSON object or list found")


def _looks_like_answer(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(ANSWER_KEYS & set(value)) or any(k in value for k in BOX_KEYS + POINT_KEYS + ID_KEYS)
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _decode_all(text: str) -> Iterator[Any]:
    """Each bracketed value in ``text``, left to right; the inside of a decoded value is not tried again."""
    decoder = json.JSONDecoder()
    tried, position, scanned = 0, 0, 0
    while tried < MAX_STARTS and scanned < SCAN_BUDGET:
        start = _next_open(text, position)
        if start < 0:
            return
        tried += 1
        end, deepest = _balanced(text, start, SCAN_BUDGET - scanned)
        scanned += (end if end > 0 else len(text)) - start
        if end < 0:  # unclosed: a complete answer may still start inside
            position = start + 1
            continue
        if deepest > MAX_DEPTH:  # never handed to a recursive decoder; nothing inside is an answer either
            position = end
            continue
        span = text[start:end]
        try:
            # the span's depth is bounded, so the C scanner cannot recurse without bound
            value, used = decoder.raw_decode(span)
            if used == len(span):
                yield value
                position = end
                continue
        except (json.JSONDecodeError, RecursionError):
            pass
        loose = _python_literal(span)
        if loose is not None:
            yield loose
            position = end
        else:
            position = start + 1


def _next_open(text: str, position: int) -> int:
    found = [i for i in (text.find("{", position), text.find("[", position)) if i >= 0]
    return min(found) if found else -1


def _balanced(text: str, start: int, budget: int) -> tuple[int, int]:
    """``(end, deepest nesting)`` of the bracketed span opening at ``start``, honouring quotes of both kinds.

    ``end`` is -1 when the span does not close within ``budget`` characters. A loop, not recursion: any
    depth is safe here.
    """
    depth, deepest, quoting, escaped = 0, 0, "", False
    for i in range(start, min(len(text), start + budget)):
        c = text[i]
        if quoting:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quoting:
                quoting = ""
        elif c in "\"'":
            quoting = c
        elif c in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i + 1, deepest
    return -1, deepest


def _python_literal(chunk: str) -> Any:
    """Single-quoted, Python-style JSON (``True``/``None`` or ``true``/``null``, trailing commas)."""
    chunk = re.sub(r"\btrue\b", "True", chunk)
    chunk = re.sub(r"\bfalse\b", "False", chunk)
    chunk = re.sub(r"\bnull\b", "None", chunk)
    try:
        return ast.literal_eval(chunk)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def read_answer(
    raw: str, frame: CoordinateFrame, memory: MemoryView, instruction: str, *, keep_raw: bool = True
) -> ReasonerOutput:
    """Validate the answer ``raw`` for an image; raises :class:`ModelOutputError` when nothing is readable."""
    try:
        data = extract_json(raw)
    except ValueError:
        absent = _absent(raw, instruction, keep_raw)
        if absent is not None:
            return absent
        raise ModelOutputError(
            f"the VLM's answer holds no JSON (it may be too small, untuned or cut off by vlm.max_new_tokens): "
            f"{_quote(raw)}",
            raw,
        ) from None
    entries, rejections_data, reply = _split(data, raw)
    warnings: list[str] = []
    targets: list[Target] = []
    rejections: list[Rejection] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            warnings.append(f"target {i}: not an object ({_quote(repr(entry))}), ignored")
            continue
        made = _target(entry, i, frame, memory, warnings)
        if isinstance(made, Rejection):
            rejections.append(made)
        elif made is not None:
            targets.append(made)
    for i, entry in enumerate(rejections_data):
        rejection = _rejection(entry)
        if rejection is None:
            warnings.append(f"rejection {i}: neither a phrase nor an object with one, ignored")
        else:
            rejections.append(rejection)
    if not isinstance(reply, str):
        warnings.append(f"reply is not a string ({type(reply).__name__}), ignored")
        reply = ""
    if not targets and not rejections:
        reason = "the model's targets had no usable box or point" if entries else "the model found no matching object"
        rejections.append(Rejection(instruction, reason))
    return ReasonerOutput(
        reply=reply.strip(),
        targets=tuple(targets),
        rejections=tuple(rejections),
        warnings=tuple(warnings),
        raw_output=raw if keep_raw else None,
    )


def _absent(raw: str, instruction: str, keep_raw: bool) -> ReasonerOutput | None:
    """A rejection carrying the model's words when its prose (no JSON) plainly says nothing matches."""
    if not ABSENT.search(raw[:2000]):
        return None
    words = " ".join(raw[:2000].split())
    reason = words if len(words) <= RAW_IN_ERROR else words[:RAW_IN_ERROR] + "…"
    return ReasonerOutput(
        reply=reason,
        rejections=(Rejection(instruction, reason),),
        warnings=("the model answered in prose without JSON; read as a rejection",),
        raw_output=raw if keep_raw else None,
    )


def _split(data: Any, raw: str) -> tuple[list[Any], list[Any], Any]:
    """``(targets, rejections, reply)`` from our schema or from a Qwen-style list of boxes."""
    if isinstance(data, list):
        return data, [], ""
    if not ANSWER_KEYS & set(data):
        if any(k in data for k in BOX_KEYS + POINT_KEYS + ID_KEYS):
            return [data], [], ""  # one bare target
        raise ModelOutputError(
            f"the VLM's JSON has none of targets, rejections, reply: {_quote(raw)}",
            raw,
        )
    entries = data.get("targets", data.get("objects", []))
    rejections = data.get("rejections", [])
    if isinstance(entries, dict):
        entries = [entries]
    if isinstance(rejections, dict | str):
        rejections = [rejections]
    if not isinstance(entries, list) or not isinstance(rejections, list):
        raise ModelOutputError(f"the VLM's targets and rejections must be lists: {_quote(raw)}", raw)
    return entries, rejections, data.get("reply", "")


def _target(
    entry: dict[str, Any], index: int, frame: CoordinateFrame, memory: MemoryView, warnings: list[str]
) -> Target | Rejection | None:
    label = _first(entry, LABEL_KEYS)
    label = label.strip() if isinstance(label, str) and label.strip() else None
    where = f"target {index}" + (f' ("{label}")' if label else "")
    object_id = _first(entry, ID_KEYS)
    remembered = None
    if object_id is not None:
        if not is_int(object_id):
            warnings.append(f"{where}: object_id {object_id!r} is not an integer, ignored")
            object_id = None
        else:
            object_id = int(object_id)
            remembered = memory.get(object_id)
            if remembered is None:
                warnings.append(f"{where}: object {object_id} is not remembered; rejected")
                return Rejection(label or f"object {object_id}", f"object {object_id} is not in the dialogue memory")
    label = label or (remembered.label if remembered else "object")
    box = _box(_first(entry, BOX_KEYS), where, frame, warnings)
    points = _points(_first(entry, POINT_KEYS), f"{where} point", frame, warnings)
    negatives = _points(_first(entry, NEGATIVE_KEYS), f"{where} negative point", frame, warnings)
    if box is None and not points:
        if remembered is None:
            warnings.append(f"{where}: no usable box or point, dropped")
            return None
        box = np.asarray(remembered.box, dtype=np.float32)
        negatives = []  # negatives without a positive or box would prompt SAM for background only
    prompt_points = prompt_labels = None
    if points or negatives:
        prompt_points = np.asarray(points + negatives, dtype=np.float32)
        prompt_labels = np.asarray([1] * len(points) + [0] * len(negatives), dtype=np.int64)
    score = _first(entry, SCORE_KEYS)
    if score is None:
        score = 1.0
    elif not is_number(score):
        warnings.append(f"{where}: confidence {score!r} is not a number, taken as 1")
        score = 1.0
    score = float(min(max(score, 0.0), 1.0))
    prompt = Prompt(points=prompt_points, point_labels=prompt_labels, box=box)
    return Target(label, prompt, score, object_id if remembered is not None else None)


def _box(value: Any, where: str, frame: CoordinateFrame, warnings: list[str]) -> np.ndarray | None:
    if value is None:
        return None
    if not (isinstance(value, list | tuple) and len(value) == 4 and all(is_number(v) for v in value)):
        warnings.append(f"{where}: box {value!r} is not [x1, y1, x2, y2], dropped")
        return None
    x1, y1 = frame.to_pixels(value[0], value[1])
    x2, y2 = frame.to_pixels(value[2], value[3])
    if x2 <= x1 or y2 <= y1:
        warnings.append(f"{where}: box {list(value)} is degenerate or inverted, dropped")
        return None
    height, width = frame.image_size
    clipped = [min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height)]
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        warnings.append(f"{where}: box {list(value)} lies outside the image, dropped")
        return None
    if clipped != [x1, y1, x2, y2]:
        warnings.append(f"{where}: box {list(value)} clipped to the image")
    return np.asarray(clipped, dtype=np.float32)


def _points(value: Any, where: str, frame: CoordinateFrame, warnings: list[str]) -> list[tuple[float, float]]:
    if value is None:
        return []
    if isinstance(value, list | tuple) and len(value) == 2 and all(is_number(v) for v in value):
        value = [value]  # Qwen's point_2d is a single [x, y]
    if not isinstance(value, list | tuple):
        warnings.append(f"{where}s {value!r} are not a list of [x, y], dropped")
        return []
    height, width = frame.image_size
    kept = []
    for point in value:
        if isinstance(point, dict):
            point = _first(point, POINT_KEYS)
        if not (isinstance(point, list | tuple) and len(point) == 2 and all(is_number(v) for v in point)):
            warnings.append(f"{where} {point!r} is not [x, y], dropped")
            continue
        x, y = frame.to_pixels(point[0], point[1])
        if not (0 <= x < width and 0 <= y < height):
            warnings.append(f"{where} {list(point)} lies outside the image, dropped")
            continue
        kept.append((x, y))
    return kept


def _rejection(entry: Any) -> Rejection | None:
    if isinstance(entry, str) and entry.strip():
        return Rejection(entry.strip())
    if isinstance(entry, dict):
        phrase = _first(entry, ("phrase", "label", "target"))
        if isinstance(phrase, str) and phrase.strip():
            reason = entry.get("reason", "")
            return Rejection(phrase.strip(), reason if isinstance(reason, str) else "")
    return None


def _first(entry: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if entry.get(key) is not None:
            return entry[key]
    return None


def _quote(raw: str) -> str:
    return quote(raw, RAW_IN_ERROR)
