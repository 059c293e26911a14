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

import numpy as np
import pytest

from reasonseg_ros.eval.metrics import Sample, score_sample, summarize
from reasonseg_ros.masks import encode_rle


def box(x1, y1, x2, y2, h=10, w=10):
    mask = np.zeros((h, w), dtype=bool)
    mask[y1:y2, x1:x2] = True
    return encode_rle(mask)


A = box(0, 0, 4, 5)  # 20 px
B = box(2, 0, 6, 5)  # 20 px, overlaps A in 10
C = box(6, 6, 10, 10)  # 16 px, disjoint from A and B


def test_single_object_iou_hand_computed():
    score = score_sample(Sample([A], [B]))
    assert (score.intersection, score.union) == (10, 30)
    assert score.iou == pytest.approx(1 / 3)
    assert score.has_target and not score.predicted_empty


def test_empty_prediction_and_empty_ground_truth():
    missed = score_sample(Sample([], [A]))
    assert (missed.intersection, missed.union, missed.iou) == (0, 20, 0.0) and missed.predicted_empty
    correct_rejection = score_sample(Sample([], []))
    assert correct_rejection.iou == 1.0 and not correct_rejection.has_target
    false_alarm = score_sample(Sample([A], []))
    assert false_alarm.iou == 0.0 and (false_alarm.intersection, false_alarm.union) == (0, 20)
    empty_mask_prediction = score_sample(Sample([box(0, 0, 0, 0)], [A]))
    assert empty_mask_prediction.predicted_empty and empty_mask_prediction.iou == 0.0


def test_multi_object_uses_the_union_and_matches_objects():
    score = score_sample(Sample([A, C], [B, C]))
    # union pred = A ∪ C = 36 px, union gt = B ∪ C = 36 px, intersection = 10 + 16
    assert (score.intersection, score.union) == (26, 46)
    assert score.iou == pytest.approx(26 / 46)
    assert score.object_ious == pytest.approx((1 / 3, 1.0))
    one_missing = score_sample(Sample([C], [B, C]))
    assert one_missing.object_ious == pytest.approx((0.0, 1.0))


def test_summary_hand_computed():
    samples = [
        Sample([A], [B], round_index=0, timings_ms={"decode": 10.0, "total": 20.0}),  # IoU 1/3, I 10 U 30
        Sample([C], [C], round_index=1, timings_ms={"decode": 30.0, "total": 40.0}),  # IoU 1,   I 16 U 16
        Sample([], [], round_index=1),  # correct rejection: IoU 1, I 0 U 0
        Sample([A], [], round_index=2),  # false alarm: IoU 0, I 0 U 20
        Sample([], [C], round_index=2),  # wrongly rejected: IoU 0, I 0 U 16
    ]
    m = summarize(samples)
    assert m["samples"] == 5 and m["samples_with_target"] == 3 and m["samples_without_target"] == 2
    assert m["gIoU"] == pytest.approx((1 / 3 + 1 + 1 + 0 + 0) / 5)
    assert m["cIoU"] == pytest.approx((10 + 16) / (30 + 16 + 20 + 16))
    assert m["N-acc"] == pytest.approx(1 / 2)
    assert m["T-acc"] == pytest.approx(2 / 3)
    assert m["precision"]["0.5"] == pytest.approx(1 / 3) and m["precision"]["0.9"] == pytest.approx(1 / 3)
    assert m["per_round"]["0"]["cIoU"] == pytest.approx(1 / 3)
    assert m["per_round"]["1"]["cIoU"] == pytest.approx(1.0) and m["per_round"]["1"]["samples"] == 2
    assert m["per_round"]["2"]["cIoU"] == 0.0 and m["per_round"]["2"]["gIoU"] == 0.0
    assert m["latency_ms"]["decode"]["p50"] == pytest.approx(20.0)
    assert m["per_object"]["objects"] == 3 and m["per_object"]["matched_at_0.5"] == pytest.approx(1 / 3)


def test_no_samples_and_size_mismatch():
    empty = summarize([])
    assert empty["samples"] == 0 and empty["gIoU"] is None and empty["cIoU"] is None and empty["N-acc"] is None
    with pytest.raises(ValueError, match="different sizes"):
        score_sample(Sample([A], [box(0, 0, 2, 2, h=5, w=5)]))


def test_ignore_region_is_left_out():
    ignore = box(0, 0, 2, 5)  # the left 10 px of A
    score = score_sample(Sample([A], [B], ignore=ignore))
    # A minus ignore = cols 2-3 (10 px), B = cols 2-5 (20 px): I = 10, U = 20
    assert (score.intersection, score.union) == (10, 20)
