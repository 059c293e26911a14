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

import json

import numpy as np
import pytest

from reasonseg_ros.errors import InputError
from reasonseg_ros.masks import decode_rle, encode_rle
from reasonseg_ros.messages import (
    detections_to_boxes,
    objects_to_detections,
    parse_instruction,
    rejection_text,
    round_from_json,
    round_to_json,
)
from reasonseg_ros.types import Rejection, RoundResult, SegmentedObject

rosbags_types = pytest.importorskip("reasonseg_ros.messages.rosbags_types")
pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")


def mask(x1, y1, x2, y2):
    m = np.zeros((20, 30), dtype=bool)
    m[y1:y2, x1:x2] = True
    return m


def result():
    masks = [mask(2, 3, 10, 12), mask(15, 0, 30, 5)]
    objects = [
        SegmentedObject(1, "mug", (2.0, 3.0, 10.0, 12.0), encode_rle(masks[0]), 0.9, int(masks[0].sum()), 0, 7),
        SegmentedObject(4, "plate", (15.0, 0.0, 30.0, 5.0), encode_rle(masks[1]), 0.5, int(masks[1].sum()), 0, 7),
    ]
    return RoundResult(
        session="kitchen",
        instruction="mug and plate, no fork",
        round_index=0,
        reply="found two",
        objects=objects,
        rejections=[Rejection("fork", "not on the table")],
        frame_stamp_ns=7,
        frame_id="cam",
        image_size=(20, 30),
        timings_ms={"total": 12.5},
        masks=np.stack(masks),
    ), masks


def test_detections_have_boxes_ids_labels_scores_and_serialize():
    ts = rosbags_types.typestore()
    header = ts.types["std_msgs/msg/Header"](
        stamp=ts.types["builtin_interfaces/msg/Time"](sec=0, nanosec=7), frame_id="cam"
    )
    msg = objects_to_detections(ts.types, header, result()[0].objects)
    name = "vision_msgs/msg/Detection2DArray"
    back = ts.deserialize_cdr(ts.serialize_cdr(msg, name), name)
    assert detections_to_boxes(back) == [
        ("1", "mug", pytest.approx(0.9), (2.0, 3.0, 10.0, 12.0)),
        ("4", "plate", pytest.approx(0.5), (15.0, 0.0, 30.0, 5.0)),
    ]
    first = back.detections[0]
    assert first.bbox.center.position.x == 6.0 and first.bbox.size_y == 9.0 and first.header.frame_id == "cam"
    assert first.results[0].pose.pose.orientation.w == 1.0
    assert objects_to_detections(ts.types, header, []).detections == []


def test_result_json_fields_and_masks():
    res, masks = result()
    data = round_from_json(round_to_json(res))
    assert data["schema_version"] == 1 and data["ok"] is True and data["error"] is None
    assert data["session"] == "kitchen" and data["round"] == 0 and data["reply"] == "found two"
    assert data["frame"] == {"stamp_ns": 7, "frame_id": "cam", "height": 20, "width": 30}
    assert [o["id"] for o in data["objects"]] == [1, 4] and data["objects"][0]["box"] == [2.0, 3.0, 10.0, 12.0]
    for entry, expected in zip(data["objects"], masks, strict=True):
        np.testing.assert_array_equal(decode_rle(entry["mask"]), expected)
    assert data["rejections"] == [{"phrase": "fork", "reason": "not on the table"}]
    assert "raw_output" not in data
    slim = json.loads(round_to_json(res, include_masks=False))
    assert "mask" not in slim["objects"][0]


def test_error_round_json_and_rejection_text():
    failed = RoundResult(
        session="s", instruction="x", error="the instruction is empty", error_kind="bad_input", raw_output="??"
    )
    data = round_from_json(round_to_json(failed))
    assert data["ok"] is False and data["error"] == {"kind": "bad_input", "message": "the instruction is empty"}
    assert data["frame"] is None and data["raw_output"] == "??"
    assert rejection_text(failed) is None
    assert rejection_text(result()[0]) == 'No "fork" found: not on the table.'
    with pytest.raises(ValueError, match="schema version 2"):
        round_from_json('{"schema_version": 2}')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("find the mug", ("find the mug", None, "default")),
        ('{"targets": [{"box": [0, 0, 1, 1]}]}', ('{"targets": [{"box": [0, 0, 1, 1]}]}', None, "default")),
        ('{"text": "the mug", "session": "k"}', ("the mug", None, "k")),
        ('{"text": "the mug", "stamp": {"sec": 2, "nanosec": 5}}', ("the mug", 2_000_000_005, "default")),
        ('{"text": "the mug", "stamp": 1.5}', ("the mug", 1_500_000_000, "default")),
        ('{"text": "the mug", "stamp_ns": 42}', ("the mug", 42, "default")),
        ("{not json", ("{not json", None, "default")),
    ],
)
def test_instruction_envelope(text, expected):
    instruction = parse_instruction(text)
    assert (instruction.text, instruction.stamp_ns, instruction.session) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"text": 3}', "'text' must be a string"),
        ('{"text": "a", "session": ""}', "'session' must be a non-empty string"),
        ('{"text": "a", "stamp": "noon"}', "'stamp' must be"),
        ('{"text": "a", "stamp": {"sec": -1}}', "'stamp' must be"),
        ('{"text": "a", "stamp_ns": 1.5}', "'stamp_ns' must be a non-negative integer"),
        ('{"text": "a", "stamp": 1, "stamp_ns": 1}', "either 'stamp' or 'stamp_ns'"),
        ('{"text": "a", "sesion": "k"}', "unknown keys ['sesion']"),
    ],
)
def test_bad_envelopes(text, message):
    with pytest.raises(InputError) as info:
        parse_instruction(text)
    assert message in str(info.value)
