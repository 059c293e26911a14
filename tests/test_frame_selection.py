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

"""An instruction is answered on the frame it names or not at all, and the result says which (issue 15)."""

from __future__ import annotations

import json

import pytest
from helpers import frame, targets

from reasonseg_ros.errors import InputError
from reasonseg_ros.messages.result_json import round_to_json
from reasonseg_ros.types import Instruction

BOX = {"label": "red square", "box": [40, 60, 120, 140]}
PERIOD = 100_000_000  # a 10 Hz camera


def camera(engine, stamps):
    for stamp in stamps:
        engine.submit_frame(frame(stamp_ns=stamp))


def test_a_named_frame_that_never_arrived_is_refused_not_replaced_by_its_neighbour(make_engine):
    engine = make_engine()  # default: tolerance derived from the camera's rate
    camera(engine, [0, PERIOD, 3 * PERIOD, 4 * PERIOD])  # frame 2 was refused upstream (truncated data)
    result = engine.handle(Instruction(targets(BOX), stamp_ns=2 * PERIOD))
    assert not result.ok and result.error_kind == "bad_input"
    assert "nearest is 0.100 s away" in result.error and "60 ms" not in result.error
    assert result.requested_stamp_ns == 2 * PERIOD and result.frame_gap_ms is None
    data = json.loads(round_to_json(result))
    assert data["requested_stamp_ns"] == 2 * PERIOD and data["frame"] is None


def test_a_stamp_between_two_frames_is_answered_and_the_gap_reported(make_engine):
    engine = make_engine()
    camera(engine, [0, PERIOD, 2 * PERIOD])
    result = engine.handle(Instruction(targets(BOX), stamp_ns=PERIOD + 45_000_000))  # 45 ms after frame 1
    assert result.ok and result.frame_stamp_ns == PERIOD
    assert result.requested_stamp_ns == PERIOD + 45_000_000 and result.frame_gap_ms == pytest.approx(45.0)
    data = json.loads(round_to_json(result))
    assert data["frame_gap_ms"] == pytest.approx(45.0) and data["requested_stamp_ns"] == PERIOD + 45_000_000


def test_the_derived_tolerance_follows_the_camera_rate_and_a_configured_one_wins(make_engine):
    engine = make_engine()
    camera(engine, [0])
    assert engine.stamp_tolerance_s()[0] == pytest.approx(0.1)  # rate unknown yet: the default
    camera(engine, [PERIOD // 3, 2 * PERIOD // 3, PERIOD])  # 30 Hz
    assert engine.stamp_tolerance_s()[0] == pytest.approx(0.6 / 30, rel=1e-3)
    with pytest.raises(InputError, match="no frame within"):
        engine.select_frame(PERIOD + 25_000_000)  # 25 ms past the newest 30 Hz frame
    fixed = make_engine({"engine.stamp_tolerance_s": 0.5})
    camera(fixed, [0, 4 * PERIOD])
    assert fixed.select_frame(2 * PERIOD - 1).frame.stamp_ns == 0


def test_a_round_on_the_newest_frame_reports_no_requested_stamp(make_engine):
    engine = make_engine()
    camera(engine, [0, PERIOD])
    result = engine.handle(Instruction(targets(BOX)))
    assert result.ok and result.requested_stamp_ns is None and result.frame_gap_ms is None
    data = json.loads(round_to_json(result))
    assert data["requested_stamp_ns"] is None and data["frame_gap_ms"] is None
