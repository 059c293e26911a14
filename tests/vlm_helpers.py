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
