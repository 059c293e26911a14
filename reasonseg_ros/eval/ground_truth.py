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

"""Ground truth for bag replay: one JSON record per instruction (docs/evaluation.md).

Record::

    {"index": 0, "stamp_ns": 1500000000, "session": "demo", "round": 0, "text": "the red square",
     "objects": [{"label": "red square", "mask": {"size": [h, w], "counts": "..."}}],
     "ignore": null}

``index`` is the instruction's position on the instruction topic (0, 1, …);
``objects`` is empty when the referred object is absent; ``ignore`` is an
optional RLE of pixels left out of scoring (ReasonSeg's "ignore" regions).

Tracking ground truth: one record per annotated frame of a session, marked
``"type": "frame"``::

    {"type": "frame", "session": "demo", "stamp_ns": 1600000000,
     "objects": [{"object_id": 1, "label": "red square", "mask": {"size": [h, w], "counts": "..."}}]}

``object_id`` is the id the engine gives the object in that session; an
empty mask says the object is out of sight on that frame.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonseg_ros.masks import check_rle
from reasonseg_ros.types import RLE

FILE_NAME = "ground_truth.jsonl"
"""Converters and ``demo-bag`` write the sidecar inside the bag folder under this name."""


@dataclass(frozen=True)
class GroundTruth:
    index: int
    session: str
    round: int
    text: str
    objects: tuple[tuple[str, RLE], ...]
    """``(label, mask)`` per expected object; empty for an absent target."""
    stamp_ns: int | None = None
    ignore: RLE | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def masks(self) -> list[RLE]:
        return [mask for _, mask in self.objects]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "stamp_ns": self.stamp_ns,
            "session": self.session,
            "round": self.round,
            "text": self.text,
            "objects": [{"label": label, "mask": mask} for label, mask in self.objects],
            "ignore": self.ignore,
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass(frozen=True)
class ObjectTruth:
    """Where one tracked object is on one frame."""

    object_id: int
    label: str
    mask: RLE
    """Empty when the object is out of sight."""


@dataclass(frozen=True)
class FrameTruth:
    """Per-frame ground truth of the objects tracked in one session."""

    session: str
    stamp_ns: int
    objects: tuple[ObjectTruth, ...]
    void: RLE | None = None
    """Pixels left out of J and F (DAVIS's void label 255)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": FRAME_TYPE,
            "session": self.session,
            "stamp_ns": self.stamp_ns,
            "objects": [{"object_id": o.object_id, "label": o.label, "mask": o.mask} for o in self.objects],
            **({"void": self.void} if self.void is not None else {}),
        }


FRAME_TYPE = "frame"
"""The ``type`` of a tracking record; instruction records have none (or ``"instruction"``)."""


def parse_any(data: Any, where: str) -> GroundTruth | FrameTruth:
    """An instruction record or a frame record, by its ``type``."""
    if isinstance(data, dict) and data.get("type", "instruction") == FRAME_TYPE:
        return parse_frame(data, where)
    return parse_record(data, where)


def parse_frame(data: Any, where: str) -> FrameTruth:
    """One frame record; a malformed one raises ValueError naming ``where`` and what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a record must be a JSON object")
    unknown = set(data) - {"type", "session", "stamp_ns", "objects", "void"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} in a frame record")
    stamp = data.get("stamp_ns")
    if not _is_count(stamp):
        raise ValueError(f"{where}: a frame record needs 'stamp_ns', a non-negative integer (got {stamp!r})")
    entries = data.get("objects", [])
    if not isinstance(entries, list):
        raise ValueError(f"{where}: 'objects' must be a list")
    objects, size = [], None
    for k, entry in enumerate(entries):
        at = f"{where}: objects[{k}]"
        if not isinstance(entry, dict) or "mask" not in entry:
            raise ValueError(f"{at} must be an object with 'object_id' and 'mask'")
        object_id = entry.get("object_id")
        if not _is_count(object_id) or object_id < 1:
            raise ValueError(f"{at}.object_id must be a positive integer (got {object_id!r})")
        if any(o.object_id == object_id for o in objects):
            raise ValueError(f"{at}: object {object_id} appears twice on this frame")
        mask = _rle(entry["mask"], at)
        if size is not None and mask["size"] != size:
            raise ValueError(f"{at}: mask is {mask['size']}, an earlier mask on this frame is {size}")
        size = mask["size"]
        objects.append(ObjectTruth(int(object_id), str(entry.get("label", "")), mask))
    void = None
    if data.get("void") is not None:
        void = _rle(data["void"], f"{where}: void")
        if size is not None and void["size"] != size:
            raise ValueError(f"{where}: void is {void['size']}, the masks {size}")
    return FrameTruth(str(data.get("session", "default")), int(stamp), tuple(objects), void)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_record(data: Any, where: str) -> GroundTruth:
    """One record; a malformed one raises ValueError naming ``where``."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a record must be a JSON object")
    try:
        objects = tuple((str(o.get("label", "")), _rle(o["mask"], where)) for o in data.get("objects", []))
        return GroundTruth(
            index=int(data["index"]),
            session=str(data.get("session", "default")),
            round=int(data.get("round", 0)),
            text=str(data.get("text", "")),
            objects=objects,
            stamp_ns=None if data.get("stamp_ns") is None else int(data["stamp_ns"]),
            ignore=None if data.get("ignore") is None else _rle(data["ignore"], where),
            extra=dict(data.get("extra", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{where}: malformed ground-truth record ({type(exc).__name__}: {exc})") from None


def _rle(value: Any, where: str) -> RLE:
    try:
        return check_rle(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_jsonl(path: str | Path) -> list[GroundTruth]:
    """The instruction records of a file (frame records are left out: :func:`read_ground_truth` has both)."""
    return read_ground_truth(path)[0]


def read_ground_truth(path: str | Path) -> tuple[list[GroundTruth], list[FrameTruth]]:
    """Instruction records and tracking frame records of a JSON-lines file, in file order."""
    records: list[GroundTruth] = []
    frames: list[FrameTruth] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            record = parse_any(data, f"{path}:{number}")
            (frames if isinstance(record, FrameTruth) else records).append(record)  # type: ignore[arg-type]
    return records, frames


def index_frames(frames: Iterable[FrameTruth]) -> dict[tuple[str, int], FrameTruth]:
    """Frame records by ``(session, stamp_ns)``; the same frame twice is an error."""
    found: dict[tuple[str, int], FrameTruth] = {}
    for frame in frames:
        key = (frame.session, frame.stamp_ns)
        if key in found:
            raise ValueError(f"ground truth has frame {frame.stamp_ns} of session '{frame.session}' twice")
        found[key] = frame
    return found


def write_jsonl(path: str | Path, records: Iterable[GroundTruth | FrameTruth]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.to_dict()) + "\n")


@dataclass(frozen=True)
class Matching:
    pairs: list[tuple[int, GroundTruth]]
    """``(instruction index, record)`` for every instruction that has ground truth."""
    problems: list[str]
    """Mismatches, listed in the report: never silently ignored."""


def match(instructions: Sequence[tuple[str, str]], records: Sequence[GroundTruth]) -> Matching:
    """Pair instructions ``(session, text)`` in bag order with records by ``index``, checking what they say."""
    by_index: dict[int, GroundTruth] = {}
    problems: list[str] = []
    for record in records:
        if record.index in by_index:
            problems.append(f"ground truth has index {record.index} twice; the later record is ignored")
            continue
        by_index[record.index] = record
    pairs = []
    for index, (session, text) in enumerate(instructions):
        record = by_index.pop(index, None)
        if record is None:
            problems.append(f"instruction {index} ({text[:60]!r}) has no ground truth: not scored")
            continue
        if record.text and text not in (record.text, record.extra.get("prompt_text")):
            problems.append(
                f"instruction {index}: bag says {text[:60]!r}, ground truth says {record.text[:60]!r}: not scored"
            )
            continue
        if record.session != session:
            problems.append(f"instruction {index}: session {session!r} in the bag, {record.session!r} in ground truth")
        pairs.append((index, record))
    for index in sorted(by_index):
        problems.append(f"ground truth index {index} has no instruction in the bag: not scored")
    return Matching(pairs, problems)
