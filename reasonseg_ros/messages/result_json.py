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

"""A round as JSON (schema in docs/result_schema.md), and the instruction envelope."""

from __future__ import annotations

import json
import math
from typing import Any

from reasonseg_ros.errors import InputError
from reasonseg_ros.limits import quote
from reasonseg_ros.types import Instruction, RoundResult

SCHEMA_VERSION = 1
ENVELOPE_KEYS = {"text", "session", "stamp", "stamp_ns", "id"}
MAX_ID_CHARS = 128
"""Longest correlation id an envelope may carry (it is echoed in every result)."""


def round_to_dict(result: RoundResult, *, include_masks: bool = True) -> dict[str, Any]:
    frame = None
    if result.image_size is not None:
        frame = {
            "stamp_ns": result.frame_stamp_ns,
            "frame_id": result.frame_id,
            "height": result.image_size[0],
            "width": result.image_size[1],
        }
    objects = []
    for obj in result.objects:
        entry: dict[str, Any] = {
            "id": obj.object_id,
            "label": obj.label,
            "score": round(float(obj.score), 6),
            "box": [float(v) for v in obj.box],
            "area": obj.area,
            "round": obj.round_index,
            "reidentified": obj.object_id in result.reidentified,
        }
        if include_masks:
            entry["mask"] = obj.rle
        objects.append(entry)
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "session": result.session,
        "instruction_id": result.instruction_id,
        "id_assigned": result.id_assigned,
        "round": result.round_index,
        "instruction": result.instruction,
        "reply": result.reply,
        "ok": result.ok,
        "error": None if result.ok else {"kind": result.error_kind, "message": result.error},
        "frame": frame,
        "requested_stamp_ns": result.requested_stamp_ns,
        "frame_gap_ms": None if result.frame_gap_ms is None else round(result.frame_gap_ms, 3),
        "objects": objects,
        "reidentified": list(result.reidentified),
        "rejections": [{"phrase": r.phrase, "reason": r.reason} for r in result.rejections],
        "warnings": list(result.warnings),
        "timings_ms": {k: round(v, 3) for k, v in result.timings_ms.items()},
        "embedding_cached": result.embedding_cached,
        "random_weights": result.random_weights,
    }
    if result.raw_output is not None:
        data["raw_output"] = result.raw_output
    if result.prompt is not None:
        data["prompt"] = result.prompt
    return data


def round_to_json(result: RoundResult, *, include_masks: bool = True) -> str:
    """The round as one line of JSON."""
    return json.dumps(round_to_dict(result, include_masks=include_masks), ensure_ascii=False)


def round_from_json(text: str) -> dict[str, Any]:
    """Parse a result published by this package; refuses other schema versions."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"result schema version {found!r}, this reader knows {SCHEMA_VERSION}")
    return data


def rejection_text(result: RoundResult) -> str | None:
    """One sentence per rejected target, or None when nothing was rejected."""
    if not result.rejections:
        return None
    sentences = []
    for rejection in result.rejections:
        reason = f": {rejection.reason}" if rejection.reason else ""
        sentences.append(f'No "{rejection.phrase}" found{reason}.')
    return " ".join(sentences)


def parse_instruction(text: str, default_session: str = "default") -> Instruction:
    """An instruction from the topic's text: plain text, or the JSON envelope ``{"text", "session", "stamp"}``.

    A JSON object without a ``"text"`` key is not an envelope: it is the
    instruction itself (the ``prompt`` reasoner takes JSON targets).
    ``stamp`` is ``{"sec": int, "nanosec": int}`` (ROS time) or seconds as a
    number; ``stamp_ns`` gives integer nanoseconds.
    """
    if not isinstance(text, str):
        raise InputError(f"an instruction must be text, got {type(text).__name__}")
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return Instruction(text, None, default_session)
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        return Instruction(text, None, default_session)
    if not isinstance(data, dict) or "text" not in data:
        return Instruction(text, None, default_session)
    unknown = set(data) - ENVELOPE_KEYS
    if unknown:
        names = sorted(key[:40] for key in unknown)[:5]  # a client could send huge keys
        raise InputError(f"instruction envelope has unknown keys {names}; expected {sorted(ENVELOPE_KEYS)}")
    instruction_id = envelope_id(data)
    body = data["text"]
    if not isinstance(body, str):
        raise InputError("the envelope's 'text' must be a string")
    session = data.get("session", default_session)
    if not isinstance(session, str) or not session:
        raise InputError("the envelope's 'session' must be a non-empty string")
    return Instruction(body, _stamp_ns(data), session, instruction_id)


def envelope_id(data: Any) -> str | None:
    """The ``id`` of an envelope (None when absent); :class:`InputError` unless a short non-empty string."""
    if not isinstance(data, dict) or data.get("id") is None:
        return None
    value = data["id"]
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise InputError(f"the envelope's 'id' must be a non-empty string of at most {MAX_ID_CHARS} characters")
    return value


def readable_envelope_id(text: Any) -> str | None:
    """The valid ``id`` of an envelope that was refused for another reason, so that its refusal still pairs."""
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    try:
        return envelope_id(json.loads(text))
    except (ValueError, InputError, RecursionError):
        return None


def _stamp_ns(data: dict[str, Any]) -> int | None:
    if "stamp" in data and "stamp_ns" in data:
        raise InputError("give either 'stamp' or 'stamp_ns', not both")
    if "stamp_ns" in data:
        value = data["stamp_ns"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"'stamp_ns' must be a non-negative integer, got {quote(value, 40)}")
        return value
    stamp = data.get("stamp")
    if stamp is None:
        return None
    if isinstance(stamp, dict):
        sec, nanosec = stamp.get("sec"), stamp.get("nanosec", 0)
        if set(stamp) - {"sec", "nanosec"} or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (sec, nanosec)
        ):
            raise InputError(f'\'stamp\' must be {{"sec": int, "nanosec": int}} or seconds, got {quote(stamp, 80)}')
        return sec * 1_000_000_000 + nanosec
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and math.isfinite(stamp) and stamp >= 0:
        return round(stamp * 1e9)
    raise InputError(f'\'stamp\' must be {{"sec": int, "nanosec": int}} or seconds, got {quote(stamp, 80)}')
