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

"""Per-frame tracking ground truth: round trip, and clear errors on malformed records."""

import json

import numpy as np
import pytest

from reasonseg_ros.eval.ground_truth import (
    FrameTruth,
    GroundTruth,
    ObjectTruth,
    index_frames,
    read_ground_truth,
    read_jsonl,
    write_jsonl,
)
from reasonseg_ros.masks import decode_rle, encode_rle


def mask(h=4, w=5, on=((1, 2),)):
    m = np.zeros((h, w), dtype=bool)
    for y, x in on:
        m[y, x] = True
    return m


def test_round_trip_keeps_instructions_and_frames_apart(tmp_path):
    instruction = GroundTruth(0, "s", 0, "the cup", (("cup", encode_rle(mask())),), stamp_ns=5)
    objects = (ObjectTruth(1, "cup", encode_rle(mask())), ObjectTruth(2, "", encode_rle(mask(on=()))))
    frame = FrameTruth("s", 100, objects, void=encode_rle(mask(on=((0, 0),))))
    path = tmp_path / "gt.jsonl"
    write_jsonl(path, [instruction, frame])
    records, frames = read_ground_truth(path)
    assert [r.text for r in records] == ["the cup"]
    assert frames == [frame]
    assert np.array_equal(decode_rle(frames[0].objects[0].mask), mask())
    assert not decode_rle(frames[0].objects[1].mask).any()
    assert [r.text for r in read_jsonl(path)] == ["the cup"]  # the instruction-only reader is unchanged
    assert json.loads(path.read_text().splitlines()[1])["type"] == "frame"


def test_uncompressed_counts_are_accepted(tmp_path):
    path = tmp_path / "gt.jsonl"
    path.write_text(
        json.dumps(
            {
                "type": "frame",
                "stamp_ns": 0,
                "objects": [{"object_id": 3, "mask": {"size": [2, 2], "counts": [1, 2, 1]}}],
            }
        )
        + "\n\n"
    )
    _, frames = read_ground_truth(path)
    assert frames[0].session == "default" and frames[0].objects[0].label == ""
    assert decode_rle(frames[0].objects[0].mask).sum() == 2


GOOD = {"size": [2, 2], "counts": [4]}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"type": "frame", "objects": []}, "stamp_ns"),
        ({"type": "frame", "stamp_ns": -1, "objects": []}, "stamp_ns"),
        ({"type": "frame", "stamp_ns": 1.5, "objects": []}, "stamp_ns"),
        ({"type": "frame", "stamp_ns": 0, "objects": {}}, "'objects' must be a list"),
        ({"type": "frame", "stamp_ns": 0, "objects": [{"mask": GOOD}]}, "object_id must be a positive integer"),
        ({"type": "frame", "stamp_ns": 0, "objects": [{"object_id": 0, "mask": GOOD}]}, "positive integer"),
        ({"type": "frame", "stamp_ns": 0, "objects": [{"object_id": 1}]}, "'object_id' and 'mask'"),
        ({"type": "frame", "stamp_ns": 0, "objects": [{"object_id": 1, "mask": GOOD}] * 2}, "appears twice"),
        ({"type": "frame", "stamp_ns": 0, "objects": [{"object_id": 1, "mask": {"size": [2, 2]}}]}, "must be an RLE"),
        (
            {"type": "frame", "stamp_ns": 0, "objects": [{"object_id": 1, "mask": {"size": [2, 2], "counts": [3]}}]},
            "cover 3 pixels, not h × w = 4",
        ),
        (
            {"type": "frame", "stamp_ns": 0, "objects": [{"object_id": 1, "mask": {"size": [0, 2], "counts": []}}]},
            "positive integers",
        ),
        (
            {"type": "frame", "stamp_ns": 0, "objects": [{"object_id": 1, "mask": {"size": [2, 2], "counts": 7}}]},
            "'counts' must be",
        ),
        (
            {
                "type": "frame",
                "stamp_ns": 0,
                "objects": [{"object_id": 1, "mask": GOOD}, {"object_id": 2, "mask": {"size": [1, 4], "counts": [4]}}],
            },
            "an earlier mask",
        ),
        ({"type": "frame", "stamp_ns": 0, "object": []}, "unknown keys"),
        (
            {
                "type": "frame",
                "stamp_ns": 0,
                "objects": [{"object_id": 1, "mask": GOOD}],
                "void": {"size": [1, 4], "counts": [4]},
            },
            "void is",
        ),
    ],
)
def test_malformed_frame_records_name_the_line(tmp_path, record, message):
    path = tmp_path / "gt.jsonl"
    path.write_text(json.dumps({"index": 0, "text": "x", "objects": []}) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=message) as info:
        read_ground_truth(path)
    assert f"{path}:2" in str(info.value)


def test_the_same_frame_twice_is_an_error():
    frame = FrameTruth("s", 7, ())
    with pytest.raises(ValueError, match="frame 7 of session 's' twice"):
        index_frames([frame, frame])
    assert set(index_frames([frame, FrameTruth("t", 7, ())])) == {("s", 7), ("t", 7)}
