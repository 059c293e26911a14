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


# -- live state (tracking) -----------------------------------------------------------------------

S = 1_000_000_000


def sighting(x=10.0):
    from reasonseg_ros.memory import Sighting

    return Sighting(box=(x, 2.0, x + 5, 6.0), rle={"size": [4, 4], "counts": "0F"}, score=0.9, area=16)


def live(memory, stamp_s, seen=(), unseen=(), lost_after_s=1.0, forget_after_s=5.0):
    return memory.update_live(
        "s",
        int(stamp_s * S),
        {i: sighting(10.0 + stamp_s) for i in seen},
        unseen,
        lost_after_ns=int(lost_after_s * S),
        forget_after_ns=int(forget_after_s * S),
    )


def test_live_update_moves_the_object_and_keeps_its_place_in_memory():
    memory = DialogueMemory()
    memory.record("s", "a", "", [obj("mug"), obj("cup")], [], 0)
    outcome = live(memory, 0.5, seen=[1])
    mug = memory.view("s").get(1)
    assert mug == outcome.objects[1]
    assert mug.box == (10.5, 2.0, 15.5, 6.0) and mug.area == 16 and mug.score == 0.9 and mug.rle["counts"] == "0F"
    assert mug.status == "visible" and mug.updated_stamp_ns == S // 2
    assert mug.status_since_ns == 0  # visible since it was segmented, at stamp 0
    assert mug.round_index == 0 and mug.frame_stamp_ns == 0  # where it was segmented is kept
    assert [o.object_id for o in memory.view("s").objects] == [1, 2]  # tracking is not a dialogue reference


def test_unseen_object_goes_occluded_then_lost_then_forgotten_but_stays_remembered():
    memory = DialogueMemory()
    memory.record("s", "a", "", [obj("mug")], [], 0)
    live(memory, 1.0, seen=[1])  # last seen at 1 s
    box_seen = memory.view("s").get(1).box
    live(memory, 1.5, unseen=[1])
    mug = memory.view("s").get(1)
    assert (mug.status, mug.status_since_ns, mug.updated_stamp_ns) == ("occluded", int(1.5 * S), S)
    assert mug.box == box_seen  # the last place it was seen
    live(memory, 1.9, unseen=[1])
    assert memory.view("s").get(1).status_since_ns == int(1.5 * S)  # still occluded since 1.5 s
    assert live(memory, 2.0, unseen=[1]).forgotten == []  # exactly lost_after_s unseen: lost
    assert (memory.view("s").get(1).status, memory.view("s").get(1).status_since_ns) == ("lost", 2 * S)
    assert live(memory, 5.9, unseen=[1]).forgotten == []
    assert live(memory, 6.0, unseen=[1]).forgotten == [1]
    assert memory.view("s").get(1).status == "lost" and memory.view("s").get(1).status_since_ns == 2 * S
    live(memory, 7.0, seen=[1])
    assert (memory.view("s").get(1).status, memory.view("s").get(1).status_since_ns) == ("visible", 7 * S)


def test_live_update_of_an_evicted_object_is_reported_missing():
    memory = DialogueMemory(MemoryConfig(max_objects=1))
    memory.record("s", "a", "", [obj("mug")], [], 0)
    memory.record("s", "b", "", [obj("cup")], [], 0)
    assert memory.drain_evicted() == [("s", 1)] and memory.drain_evicted() == []
    outcome = live(memory, 1.0, seen=[1], unseen=[2])
    assert outcome.missing == [1] and set(outcome.objects) == {2}


def test_evicted_sessions_are_drained_with_their_objects_and_reset_is_not():
    memory = DialogueMemory(MemoryConfig(max_sessions=1))
    memory.record("a", "x", "", [obj(), obj()], [], 0)
    memory.record("b", "x", "", [obj()], [], 0)
    assert memory.drain_evicted() == [("a", 1), ("a", 2)]
    memory.reset("b")
    assert memory.drain_evicted() == []  # the caller of reset knows what it cleared


def test_mark_lost_and_view_stamp():
    memory = DialogueMemory()
    memory.record("s", "a", "", [obj("mug")], [], 0)
    memory.mark_lost("s", [1, 99], 3 * S)
    view = memory.view("s", now_ns=4 * S)
    assert view.now_ns == 4 * S
    assert (view.get(1).status, view.get(1).status_since_ns) == ("lost", 3 * S)


def test_live_state_survives_json():
    memory = DialogueMemory()
    memory.record("s", "a", "", [obj("mug")], [], 0)
    live(memory, 1.0, seen=[1])
    live(memory, 1.5, unseen=[1])
    restored = DialogueMemory.from_json(memory.to_json())
    assert restored.view("s").objects == memory.view("s").objects


def test_a_forgotten_object_is_lost_even_before_lost_after():
    memory = DialogueMemory()
    memory.record("s", "a", "", [obj("mug")], [], 0)
    assert live(memory, 1.0, unseen=[1], lost_after_s=5.0, forget_after_s=1.0).forgotten == [1]
    assert memory.view("s").get(1).status == "lost"
