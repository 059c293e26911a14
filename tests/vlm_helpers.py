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

"""Builders shared by the VLM reasoner tests."""

from __future__ import annotations

from reasonseg_ros.memory import MemoryView
from reasonseg_ros.types import SegmentedObject


def remembered(object_id: int, label: str, box: tuple[float, float, float, float], round_index: int) -> SegmentedObject:
    x1, y1, x2, y2 = box
    return SegmentedObject(
        object_id=object_id,
        label=label,
        box=box,
        rle={"size": [1, 1], "counts": ""},
        score=0.9,
        area=int((x2 - x1) * (y2 - y1)),
        round_index=round_index,
        frame_stamp_ns=0,
    )


def memory_of(*objects: SegmentedObject, session: str = "s") -> MemoryView:
    return MemoryView(session, tuple(objects), ())
