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

"""Dialogue memory: the rounds of each session and the objects segmented in them.

Objects keep a stable id for as long as they are remembered; segmenting a
remembered object again (a target naming its id) updates it in place. Every
collection is bounded: the oldest rounds, the least recently segmented
objects and the least recently used sessions are evicted first.

With live tracking (docs/tracking.md) each object also holds its live state:
:meth:`DialogueMemory.update_live` moves its box, mask and score to the
newest tracked frame and keeps whether it is visible, occluded or lost, and
since when. An object is never deleted for being out of sight: it stays,
marked lost, until a reset or the bounds above evict it. Evictions are kept
for :meth:`DialogueMemory.drain_evicted`, so the engine can stop their tracks.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from reasonseg_ros.config import MemoryConfig
from reasonseg_ros.types import Rejection, SegmentedObject

SCHEMA_VERSION = 1
MAX_OBJECT_ID = 65535
"""Ids fit a uint16 label image; they wrap around, skipping ids still remembered."""


@dataclass(frozen=True)
class MemoryRound:
    round_index: int
    instruction: str
    reply: str
    object_ids: tuple[int, ...]
    rejections: tuple[Rejection, ...]
    frame_stamp_ns: int | None


@dataclass(frozen=True)
class Sighting:
    """Where a tracker saw a remembered object on one frame."""

    box: tuple[float, float, float, float]
    rle: dict[str, Any]
    score: float
    area: int


@dataclass
class LiveOutcome:
    """What :meth:`DialogueMemory.update_live` did."""

    objects: dict[int, SegmentedObject] = field(default_factory=dict)
    """The updated objects by id."""
    forgotten: list[int] = field(default_factory=list)
    """Ids unseen for ``forget_after_ns``: stop tracking them (memory keeps them, marked lost)."""
    missing: list[int] = field(default_factory=list)
    """Ids no longer remembered (evicted meanwhile): their tracks should go too."""


def last_seen_ns(obj: SegmentedObject) -> int:
    """Stamp of the last frame the object was seen on (tracked, or segmented)."""
    return obj.frame_stamp_ns if obj.updated_stamp_ns is None else obj.updated_stamp_ns


def status_since_ns(obj: SegmentedObject) -> int:
    """Stamp from which the object's status holds."""
    return obj.frame_stamp_ns if obj.status_since_ns is None else obj.status_since_ns


class SessionMemory:
    """One dialogue: its rounds and objects. Not thread-safe; use through :class:`DialogueMemory`."""

    def __init__(self, limits: MemoryConfig) -> None:
        self._limits = limits
        self.rounds: OrderedDict[int, MemoryRound] = OrderedDict()
        self.objects: OrderedDict[int, SegmentedObject] = OrderedDict()
        self.next_round = 0
        self.next_id = 1
        self.evicted: list[int] = []

    def allocate_id(self) -> int:
        for _ in range(MAX_OBJECT_ID):
            candidate = self.next_id
            self.next_id = candidate % MAX_OBJECT_ID + 1
            if candidate not in self.objects:
                return candidate
        raise RuntimeError("no free object id")  # unreachable: max_objects < MAX_OBJECT_ID

    def add_round(self, memory_round: MemoryRound, objects: list[SegmentedObject]) -> None:
        for obj in objects:
            self.objects.pop(obj.object_id, None)
            self.objects[obj.object_id] = obj
        self.rounds[memory_round.round_index] = memory_round
        self.next_round = max(self.next_round, memory_round.round_index + 1)
        self.trim()

    def trim(self) -> None:
        while len(self.objects) > self._limits.max_objects:
            self.evicted.append(self.objects.popitem(last=False)[0])
        while len(self.rounds) > self._limits.max_rounds:
            self.rounds.popitem(last=False)


class MemoryView:
    """Read-only view of one session, as reasoners see it."""

    def __init__(
        self,
        session: str,
        objects: tuple[SegmentedObject, ...],
        rounds: tuple[MemoryRound, ...],
        now_ns: int | None = None,
    ) -> None:
        self.session = session
        self.objects = objects
        """Remembered objects, least recently segmented first, in their live state."""
        self.rounds = rounds
        """Remembered rounds, oldest first."""
        self.now_ns = now_ns
        """Stamp of the frame the round looks at (for "not visible for 4.2 s"); None: unknown."""

    def get(self, object_id: int) -> SegmentedObject | None:
        for obj in self.objects:
            if obj.object_id == object_id:
                return obj
        return None

    def __len__(self) -> int:
        return len(self.objects)


class DialogueMemory:
    """All sessions; thread-safe, since the node's reset service runs beside the worker."""

    def __init__(self, limits: MemoryConfig | None = None) -> None:
        self.limits = limits or MemoryConfig()
        self._sessions: OrderedDict[str, SessionMemory] = OrderedDict()
        self._lock = threading.Lock()
        self._evicted: list[tuple[str, int]] = []

    def _session(self, name: str) -> SessionMemory:
        session = self._sessions.pop(name, None) or SessionMemory(self.limits)
        self._sessions[name] = session
        while len(self._sessions) > self.limits.max_sessions:
            gone, state = self._sessions.popitem(last=False)
            self._evicted.extend((gone, object_id) for object_id in state.objects)
        return session

    def view(self, session: str, now_ns: int | None = None) -> MemoryView:
        """The session as reasoners see it; ``now_ns``: stamp of the frame the round looks at."""
        with self._lock:
            state = self._sessions.get(session)
            if state is None:
                return MemoryView(session, (), (), now_ns)
            return MemoryView(session, tuple(state.objects.values()), tuple(state.rounds.values()), now_ns)

    def drain_evicted(self) -> list[tuple[str, int]]:
        """``(session, object_id)`` of the objects the bounds evicted since the last call (not resets)."""
        with self._lock:
            for name, state in self._sessions.items():
                self._evicted.extend((name, object_id) for object_id in state.evicted)
                state.evicted.clear()
            evicted, self._evicted = self._evicted, []
            return evicted

    def update_live(
        self,
        session: str,
        stamp_ns: int,
        seen: Mapping[int, Sighting],
        unseen: Iterable[int] = (),
        *,
        lost_after_ns: int,
        forget_after_ns: int,
    ) -> LiveOutcome:
        """Apply one tracking step: objects in ``seen`` are visible there; those in ``unseen`` are not.

        Unseen objects are occluded until ``lost_after_ns`` after they were last
        seen, lost from then on; past ``forget_after_ns`` they are listed in
        ``forgotten`` (their tracks should stop) but stay remembered. The order
        of the objects (eviction order) does not change: tracking is not a
        reference by the dialogue.
        """
        outcome = LiveOutcome()
        with self._lock:
            state = self._sessions.get(session)
            for object_id, sighting in seen.items():
                obj = state.objects.get(object_id) if state else None
                if obj is None:
                    outcome.missing.append(object_id)
                    continue
                since = status_since_ns(obj) if obj.status == "visible" else stamp_ns
                updated = replace(
                    obj,
                    box=tuple(float(v) for v in sighting.box),
                    rle=sighting.rle,
                    score=float(sighting.score),
                    area=int(sighting.area),
                    status="visible",
                    updated_stamp_ns=stamp_ns,
                    status_since_ns=since,
                )
                state.objects[object_id] = outcome.objects[object_id] = updated
            for object_id in unseen:
                obj = state.objects.get(object_id) if state else None
                if obj is None:
                    outcome.missing.append(object_id)
                    continue
                unseen_ns = stamp_ns - last_seen_ns(obj)
                forgotten = unseen_ns >= forget_after_ns
                # a forgotten object is lost, even when forget_after_s is set below lost_after_s
                status = "occluded" if unseen_ns < lost_after_ns and not forgotten else "lost"
                since = status_since_ns(obj) if obj.status == status else stamp_ns
                updated = replace(obj, status=status, status_since_ns=since)
                state.objects[object_id] = outcome.objects[object_id] = updated
                if forgotten:
                    outcome.forgotten.append(object_id)
        return outcome

    def mark_lost(self, session: str, object_ids: Iterable[int], stamp_ns: int) -> None:
        """Mark objects lost (no longer tracked: evicted from the tracker, or dropped on a resolution change)."""
        with self._lock:
            state = self._sessions.get(session)
            if state is None:
                return
            for object_id in object_ids:
                obj = state.objects.get(object_id)
                if obj is not None and obj.status != "lost":
                    state.objects[object_id] = replace(obj, status="lost", status_since_ns=stamp_ns)

    def record(
        self,
        session: str,
        instruction: str,
        reply: str,
        new_objects: list[dict[str, Any]],
        rejections: list[Rejection],
        frame_stamp_ns: int | None,
    ) -> tuple[int, list[SegmentedObject]]:
        """Store a round; returns its index and the objects with their ids.

        Each entry of ``new_objects`` has the fields of :class:`SegmentedObject`
        except ``round_index`` and ``frame_stamp_ns``; an ``object_id`` of None
        gets a fresh id.
        """
        with self._lock:
            state = self._session(session)
            round_index = state.next_round
            stored: list[SegmentedObject] = []
            for fields in new_objects:
                object_id = fields.get("object_id")
                if object_id is None:
                    object_id = state.allocate_id()
                stored.append(
                    SegmentedObject(
                        **{**fields, "object_id": object_id},
                        round_index=round_index,
                        frame_stamp_ns=frame_stamp_ns or 0,
                    )
                )
            state.add_round(
                MemoryRound(
                    round_index=round_index,
                    instruction=instruction,
                    reply=reply,
                    object_ids=tuple(o.object_id for o in stored),
                    rejections=tuple(rejections),
                    frame_stamp_ns=frame_stamp_ns,
                ),
                stored,
            )
            return round_index, stored

    def reset(self, session: str | None = None) -> int:
        """Forget one session, or all when ``session`` is None; returns how many were cleared."""
        with self._lock:
            if session is None:
                count = len(self._sessions)
                self._sessions.clear()
                return count
            return 1 if self._sessions.pop(session, None) is not None else 0

    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def to_json(self) -> str:
        with self._lock:
            data = {
                "schema_version": SCHEMA_VERSION,
                "sessions": {
                    name: {
                        "next_round": state.next_round,
                        "next_id": state.next_id,
                        "rounds": [_round_to_dict(r) for r in state.rounds.values()],
                        "objects": [_object_to_dict(o) for o in state.objects.values()],
                    }
                    for name, state in self._sessions.items()
                },
            }
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str, limits: MemoryConfig | None = None) -> DialogueMemory:
        data = json.loads(text)
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"memory schema version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        memory = cls(limits)
        for name, saved in data["sessions"].items():
            state = memory._session(name)
            objects = [_object_from_dict(o) for o in saved["objects"]]
            state.objects.update((o.object_id, o) for o in objects)
            for entry in saved["rounds"]:
                rejections = tuple(Rejection(**r) for r in entry.pop("rejections"))
                state.rounds[entry["round_index"]] = MemoryRound(
                    **{**entry, "object_ids": tuple(entry["object_ids"]), "rejections": rejections}
                )
            state.next_round = saved["next_round"]
            state.next_id = saved["next_id"]
            state.trim()
        return memory


def _object_to_dict(obj: SegmentedObject) -> dict[str, Any]:
    return asdict(obj)


def _object_from_dict(data: dict[str, Any]) -> SegmentedObject:
    return SegmentedObject(**{**data, "box": tuple(data["box"])})


def _round_to_dict(memory_round: MemoryRound) -> dict[str, Any]:
    return asdict(memory_round)
