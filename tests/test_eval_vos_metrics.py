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

"""J, F and J&F (DAVIS definitions) against values worked out by hand on small masks."""

import numpy as np
import pytest

from reasonseg_ros.eval.metrics import (
    TrackFrame,
    boundary_map,
    boundary_measure,
    boundary_tolerance_px,
    dilate_disk,
    region_similarity,
    summarize_tracking,
)


def square(rows, cols, shape=(10, 10)):
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return mask


GT = square((2, 4), (2, 4))  # a 3×3 square


def test_boundary_map_by_hand():
    # seg2bmap marks a pixel whose 2×2 block (itself, right, below, below-right) is not uniform:
    # for the square at rows/cols 2..4 that is rows/cols 1..4 minus the uniform interior 2..3.
    expected = np.zeros((10, 10), dtype=bool)
    expected[1:5, 1:5] = True
    expected[2:4, 2:4] = False
    assert np.array_equal(boundary_map(GT), expected)


def test_boundary_map_at_the_image_border():
    mask = np.zeros((4, 4), dtype=bool)
    mask[2:, 2:] = True  # touches the last row and column
    edges = boundary_map(mask)
    # Last row: only the right neighbour counts -> (3, 1) differs from (3, 2); last column: only the one below
    # -> (1, 3) differs from (2, 3); the corner (3, 3) never counts.
    assert edges[3].tolist() == [False, True, False, False]
    assert edges[:, 3].tolist() == [False, True, False, False]
    assert edges[1, 1] and edges[1, 2] and edges[2, 1]


def test_tolerance_is_a_fraction_of_the_diagonal():
    assert boundary_tolerance_px((10, 10)) == 1  # ceil(0.008 × 14.1) = ceil(0.113)
    assert boundary_tolerance_px((240, 320)) == 4  # ceil(0.008 × 400) = ceil(3.2)
    assert boundary_tolerance_px((480, 854)) == 8  # ceil(0.008 × 979.7) = ceil(7.84)
    assert boundary_tolerance_px((240, 320), 3) == 3  # ≥ 1: pixels


def test_disk_dilation_is_the_disk():
    point = np.zeros((11, 11), dtype=bool)
    point[5, 5] = True
    ys, xs = np.mgrid[0:11, 0:11]
    for radius in (1, 2, 4):
        assert np.array_equal(dilate_disk(point, radius), (ys - 5) ** 2 + (xs - 5) ** 2 <= radius**2)


def test_disk_dilation_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    mask = rng.random((40, 50)) > 0.97
    for radius in (1, 3, 6):
        ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        kernel = (ys**2 + xs**2 <= radius**2).astype(np.uint8)
        reference = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
        assert np.array_equal(dilate_disk(mask, radius), reference)


def test_j_and_f_by_hand():
    # Shifted one column: IoU 6/12; every boundary pixel has its partner one pixel away (tolerance 1): F = 1.
    one = square((2, 4), (3, 5))
    assert region_similarity(GT, one) == pytest.approx(0.5)
    assert boundary_measure(GT, one) == pytest.approx(1.0)
    # Shifted three columns: no overlap; 6 of 12 boundary pixels each way lie within 1 px: P = R = 0.5, F = 0.5.
    three = square((2, 4), (5, 7))
    assert region_similarity(GT, three) == 0.0
    assert boundary_measure(GT, three) == pytest.approx(0.5)
    # Far away: nothing matches.
    assert boundary_measure(GT, square((6, 8), (6, 8))) == 0.0


def test_empty_masks():
    empty = np.zeros((10, 10), dtype=bool)
    assert region_similarity(empty, empty) == 1.0
    assert boundary_measure(empty, empty) == 1.0
    assert region_similarity(GT, empty) == 0.0 and region_similarity(empty, GT) == 0.0
    assert boundary_measure(GT, empty) == 0.0 and boundary_measure(empty, GT) == 0.0


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="different sizes"):
        region_similarity(GT, np.zeros((5, 5), dtype=bool))
    with pytest.raises(ValueError, match="different sizes"):
        boundary_measure(GT, np.zeros((5, 5), dtype=bool))


def test_summary_averages_frames_then_objects():
    a = [TrackFrame(1, 1.0, 0.5, True, "visible"), TrackFrame(2, 0.0, 0.0, True, "lost")]
    b = [TrackFrame(1, 0.5, 0.5, True, None), TrackFrame(2, 1.0, 1.0, False, "occluded")]
    summary = summarize_tracking({"s/1": ("cup", a), "s/2": ("mug", b)}, [1.0, 2.0, 3.0], steps=2)
    assert summary["per_object"]["s/1"]["J"] == pytest.approx(0.5)
    assert summary["per_object"]["s/1"]["F"] == pytest.approx(0.25)
    assert summary["per_object"]["s/1"]["J&F"] == pytest.approx(0.375)
    assert summary["J"] == pytest.approx((0.5 + 0.75) / 2)
    assert summary["F"] == pytest.approx((0.25 + 0.75) / 2)
    assert summary["J&F"] == pytest.approx((summary["J"] + summary["F"]) / 2)
    # Visible on three (object, frame) pairs; reported lost on one, absent from the step on one.
    assert summary["lost_while_visible"] == pytest.approx(1 / 3)
    assert summary["unreported_while_visible"] == pytest.approx(1 / 3)
    assert summary["occluded_while_visible"] == 0.0
    assert summary["per_object"]["s/1"]["lost_while_visible"] == pytest.approx(0.5)
    assert summary["per_object"]["s/2"]["iou_over_time"] == [[1, 0.5], [2, 1.0]]
    assert summary["latency_ms"]["p50"] == pytest.approx(2.0)
    assert set(summary["latency_ms"]) == {"p50", "p95"}


def test_void_pixels_are_left_out():
    void = np.zeros((10, 10), dtype=bool)
    void[:, 5:] = True  # the right half does not count
    one = square((2, 4), (3, 5))  # IoU 6/12 with GT; its column 5 is void
    # Without column 5: truth 9 px, prediction 6 px, intersection 6: J = 6/9.
    assert region_similarity(GT, one, void) == pytest.approx(6 / 9)
    # F is taken on the masks with void cleared (DAVIS): the same as on the cleared masks.
    assert boundary_measure(GT, one, void=void) == boundary_measure(GT & ~void, one & ~void)
    assert region_similarity(GT, square((6, 8), (6, 8)), np.ones((10, 10), dtype=bool)) == 1.0  # all void
