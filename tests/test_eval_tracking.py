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

"""Tracking evaluation: scoring rules on hand-made steps (replay: test_eval_tracking_replay.py)."""

import numpy as np
import pytest

from reasonseg_ros.eval.ground_truth import FrameTruth, GroundTruth, ObjectTruth
from reasonseg_ros.eval.metrics import boundary_measure
from reasonseg_ros.eval.track_eval import RecordedStep, export_davis, link_rounds, score_tracking
from reasonseg_ros.masks import encode_rle


def square(x, y, side=3, shape=(10, 10)):
    mask = np.zeros(shape, dtype=bool)
    mask[y : y + side, x : x + side] = True
    return mask


def truth(stamp, x):
    return FrameTruth("s", stamp, (ObjectTruth(7, "cup", encode_rle(square(x, 2))),))


def result(stamp, mask, object_id=1):
    return {
        "ok": True,
        "session": "s",
        "frame": {"stamp_ns": stamp},
        "objects": [{"id": object_id, "mask": encode_rle(mask)}],
    }


def step(stamp, mask, available=None, status="visible", object_id=1):
    rle = None if mask is None else encode_rle(mask)
    objects = {("s", object_id): (status, rle)}
    return RecordedStep(
        stamp if available is None else available, stamp, f"s/{stamp:05d}.jpg", (10, 10), 2.0, None, objects
    )


FRAMES = [truth(0, 1), truth(10, 2), truth(20, 3), truth(30, 4)]  # the cup moves one pixel right per frame


def test_deterministic_scores_each_frame_against_its_own_step_after_the_seed():
    steps = [step(0, None), step(10, square(2, 2)), step(20, square(2, 2)), step(30, None, status="lost")]
    summary, problems = score_tracking(steps, FRAMES, [(result(0, square(1, 2)), None)], "deterministic")
    assert problems == []
    cup = summary["per_object"]["s/7"]
    # The seed frame (0) is not scored; frame 10 exact; frame 20 one pixel behind: IoU 6/12; frame 30 lost: 0.
    assert cup["iou_over_time"] == [[10, 1.0], [20, 0.5], [30, 0.0]]
    assert cup["J"] == pytest.approx(0.5)
    f_20 = boundary_measure(square(3, 2), square(2, 2))
    assert cup["F"] == pytest.approx((1.0 + f_20 + 0.0) / 3)
    assert cup["lost_while_visible"] == pytest.approx(1 / 3)
    assert summary["J&F"] == pytest.approx((cup["J"] + cup["F"]) / 2)
    assert summary["steps"] == 4 and summary["latency_ms"]["p50"] == 2.0


def test_realtime_scores_the_newest_step_available_when_the_frame_arrived():
    # Steps on frames 0 and 20 finish 5 ns after their frame: frame 10 sees step 0, 20 sees 0, 30 sees 20.
    steps = [step(0, square(1, 2), available=5), step(20, square(3, 2), available=25)]
    summary, _ = score_tracking(steps, FRAMES, [(result(0, square(1, 2)), None)], "realtime")
    # frame 10 (x=2) vs x=1: 6/12; frame 20 (x=3) vs x=1: 3/15; frame 30 (x=4) vs step 20 (x=3): 6/12.
    assert summary["per_object"]["s/7"]["iou_over_time"] == [[10, 0.5], [20, 0.2], [30, 0.5]]
    assert summary["mode"] == "realtime"


def test_link_falls_back_to_the_instruction_ground_truth_and_lists_unseeded_objects():
    frames = [
        FrameTruth(
            "s", t, (ObjectTruth(7, "cup", encode_rle(square(1, 2))), ObjectTruth(8, "mug", encode_rle(square(6, 6))))
        )
        for t in (0, 10)
    ]
    garbage = square(0, 7, side=2)  # a poor mask: overlaps nothing
    record = GroundTruth(0, "s", 0, "the cup", (("cup", encode_rle(square(1, 2))),))
    steps = [step(10, square(1, 2), object_id=4)]
    summary, problems = score_tracking(steps, frames, [(result(0, garbage, object_id=4), record)], "deterministic")
    assert summary["per_object"]["s/7"]["J"] == 1.0
    assert "s/8" not in summary["per_object"]
    assert problems == ["ground-truth object 8 of session 's' was never segmented: not scored"]
    # Without the instruction's ground truth the poor mask links nothing.
    summary, problems = score_tracking(steps, frames, [(result(0, garbage, object_id=4), None)], "deterministic")
    assert summary["objects"] == 0 and len(problems) == 2


def test_a_missing_object_and_a_wrong_size_count_as_empty():
    steps = [step(10, square(1, 2, shape=(5, 5)))]
    summary, problems = score_tracking(steps, FRAMES[:2], [(result(0, square(1, 2)), None)], "deterministic")
    assert summary["per_object"]["s/7"]["J"] == 0.0
    assert any("vs ground truth" in p for p in problems)


def test_export_writes_davis_pngs_labelled_with_the_truth_ids(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    seed = result(0, square(1, 2), object_id=4)
    seed["frame"].update(frame_id="s/00000.jpg", height=10, width=10)
    rounds = [(seed, None)]
    steps = [step(0, None, object_id=4), step(10, square(2, 2), object_id=4), step(20, None, object_id=4)]
    links = link_rounds(FRAMES, rounds)
    assert links == {("s", 7): [(0, 4)]}
    assert export_davis(steps, rounds, links, tmp_path) == 3
    pngs = {p.name: np.asarray(Image.open(p)) for p in sorted((tmp_path / "s").iterdir())}
    assert sorted(pngs) == ["00000.png", "00010.png", "00020.png"]
    assert Image.open(tmp_path / "s" / "00000.png").mode == "P"
    assert np.array_equal(pngs["00000.png"], square(1, 2) * 7)  # the seed, labelled with the truth id
    assert np.array_equal(pngs["00010.png"], square(2, 2) * 7)
    assert not pngs["00020.png"].any()  # not visible: background
