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

import dataclasses

import pytest

from reasonseg_ros.config import MemoryConfig
from reasonseg_ros.memory import MAX_OBJECT_ID, DialogueMemory
from reasonseg_ros.types import Rejection


def obj(label="mug", object_id=None):
    return {
        "object_id": object_id,
        "label": label,
        "box": (1.0, 2.0, 3.0, 4.0),
        "rle": {"size": [4, 4], "counts": "04"},
        "score": 0.5,
        "area": 4,
    }


def test_ids_are_stable_and_resegmenting_keeps_the_id():
    memory = DialogueMemory()
    r0, first = memory.record("s", "a", "ok", [obj("mug"), obj("plate")], [], 10)
    assert r0 == 0 and [o.object_id for o in first] == [1, 2]
    r1, again = memory.record("s", "b", "", [obj("mug again", object_id=1), obj("fork")], [], 20)
    assert r1 == 1 and [o.object_id for o in again] == [1, 3]
    view = memory.view("s")
    assert view.get(1).label == "mug again" and view.get(1).round_index == 1 and view.get(1).frame_stamp_ns == 20
    assert [o.object_id for o in view.objects] == [2, 1, 3]  # least recently segmented first
    assert [r.instruction for r in view.rounds] == ["a", "b"]


def test_bounds_evict_oldest():
    memory = DialogueMemory(MemoryConfig(max_rounds=2, max_objects=3, max_sessions=2))
    for i in range(4):
        memory.record("s", f"i{i}", "", [obj(f"o{i}")], [Rejection("x")], i)
    memory.record("s", "again", "", [obj(object_id=2)], [], 9)
    view = memory.view("s")
    assert [r.instruction for r in view.rounds] == ["i3", "again"]
    assert [o.object_id for o in view.objects] == [3, 4, 2]  # 1 evicted; 2 refreshed
    memory.record("t", "x", "", [], [], 0)
    memory.view("s")  # reading does not refresh; recording does
    memory.record("u", "x", "", [], [], 0)
    assert memory.sessions() == ["t", "u"]


def test_ids_wrap_and_skip_remembered():
    memory = DialogueMemory(MemoryConfig(max_objects=2))
    memory.record("s", "a", "", [obj(), obj()], [], 0)
    state = memory._sessions["s"]
    state.next_id = MAX_OBJECT_ID
    _, stored = memory.record("s", "b", "", [obj(), obj(), obj()], [], 0)
    assert [o.object_id for o in stored] == [MAX_OBJECT_ID, 3, 4]  # 1 and 2 were still remembered


def test_reset_one_or_all():
    memory = DialogueMemory()
    memory.record("a", "x", "", [obj()], [], 0)
    memory.record("b", "x", "", [obj()], [], 0)
    assert memory.reset("a") == 1 and memory.reset("a") == 0
    assert len(memory.view("a")) == 0 and len(memory.view("b")) == 1
    assert memory.reset() == 1 and memory.sessions() == []
    _, stored = memory.record("b", "x", "", [obj()], [], 0)
    assert stored[0].object_id == 1 and stored[0].round_index == 0


def test_view_is_read_only():
    memory = DialogueMemory()
    memory.record("s", "x", "", [obj()], [], 0)
    view = memory.view("s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.objects[0].label = "changed"
    assert isinstance(view.objects, tuple) and isinstance(view.rounds, tuple)
    memory.record("s", "y", "", [obj()], [], 0)
    assert len(view.objects) == 1  # a snapshot, not a live list


def test_json_round_trip():
    memory = DialogueMemory()
    memory.record("s", "find the mug", "here", [obj("mug"), obj("cup")], [Rejection("red cup", "none")], 123)
    memory.record("t", "x", "", [obj()], [], None)
    restored = DialogueMemory.from_json(memory.to_json())
    assert restored.to_json() == memory.to_json()
    assert restored.view("s").objects == memory.view("s").objects
    assert restored.view("s").rounds == memory.view("s").rounds
    _, stored = restored.record("s", "more", "", [obj()], [], 0)
    assert stored[0].object_id == 3 and stored[0].round_index == 1
    with pytest.raises(ValueError, match="schema version"):
        DialogueMemory.from_json('{"schema_version": 99, "sessions": {}}')
