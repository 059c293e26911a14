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

"""The VLM prompt describes remembered objects in their live state (issue 13)."""

from reasonseg_ros.memory import MemoryView
from reasonseg_ros.reasoner.vlm.coords import CoordinateFrame
from reasonseg_ros.reasoner.vlm.prompt import build_prompt
from reasonseg_ros.types import SegmentedObject

S = 1_000_000_000


def remembered(object_id, status="visible", updated=None, since=None, box=(10.0, 20.0, 30.0, 40.0)):
    return SegmentedObject(
        object_id, "mug", box, {"size": [100, 100], "counts": ""}, 0.9, 1, 0, 0 * S, status, updated, since
    )


def user_text(*objects, now_ns=None):
    memory = MemoryView("s", tuple(objects), (), now_ns)
    return build_prompt("x", memory, CoordinateFrame("absolute", (100, 100)), memory_cap=10, point_mode="direct").user


def test_untracked_object_keeps_its_box_line():
    assert '- id 1: "mug", box [10, 20, 30, 40], round 0\n' in user_text(remembered(1))


def test_tracked_visible_object_is_given_where_it_is_now():
    text = user_text(remembered(1, updated=2 * S, box=(50.0, 60.0, 70.0, 80.0)), now_ns=2 * S)
    assert '- id 1: "mug", box [50, 60, 70, 80] (where it is now), round 0\n' in text


def test_occluded_object_says_for_how_long_it_is_not_visible():
    text = user_text(remembered(1, "occluded", updated=1 * S, since=int(1.5 * S)), now_ns=int(5.2 * S))
    assert '- id 1: "mug", not visible for 4.2 s (last seen at box [10, 20, 30, 40]), round 0\n' in text


def test_lost_object_has_no_box():
    text = user_text(remembered(1, "lost", updated=1 * S, since=3 * S), now_ns=43 * S)
    assert '- id 1: "mug", lost (not seen for 42.0 s), round 0\n' in text
    assert "[10, 20, 30, 40]" not in text
