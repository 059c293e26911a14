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
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    if not (isinstance(value, dict) and "size" in value and "counts" in value and len(value["size"]) == 2):
        raise ValueError(f"{where}: a mask must be an RLE {{'size': [h, w], 'counts': ...}}")
    return {"size": [int(v) for v in value["size"]], "counts": value["counts"]}


def read_jsonl(path: str | Path) -> list[GroundTruth]:
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            records.append(parse_record(data, f"{path}:{number}"))
    return records


def write_jsonl(path: str | Path, records: Iterable[GroundTruth]) -> None:
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
