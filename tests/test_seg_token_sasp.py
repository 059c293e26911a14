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

"""Similarity-as-Points on hand-made similarity maps."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra is not installed")

from reasonseg_ros.reasoner.seg_token.sasp import (  # noqa: E402
    SasPSettings,
    full_resolution_map,
    padded_map,
    points_from_similarity,
    refine_points,
    sample_bilinear,
    similarity,
)

RAW = SasPSettings(down_sample=1, refine=False)


def grid(values: dict[tuple[int, int], float], side: int = 4, fill: float = 0.5) -> torch.Tensor:
    scores = torch.full((side, side), fill)
    scores[0, 0] = 0.0  # fixes the min-max range to [0, 1]
    scores[side - 1, side - 1] = 1.0
    for (row, col), value in values.items():
        scores[row, col] = value
    return scores.reshape(-1)


def test_square_image_cells_become_points_at_cell_centres() -> None:
    scores = grid({(1, 2): 0.9, (2, 1): 0.1})  # plus (3,3)=1.0 positive and (0,0)=0.0 negative
    points, labels = points_from_similarity(scores, (40, 40), 336, SasPSettings(0.8, 0.2, 6, 1, False))
    # positives, highest first; negatives, lowest first; then neutral cells; cells are 10 px
    assert labels.tolist() == [1, 1, 0, 0, -1, -1]
    assert points[:4].tolist() == [[35, 35], [25, 15], [5, 5], [15, 25]]


def test_thresholds_decide_the_labels() -> None:
    scores = grid({(1, 1): 0.79, (1, 2): 0.8, (2, 2): 0.2, (2, 1): 0.21})
    _, labels = points_from_similarity(scores, (40, 40), 336, SasPSettings(0.8, 0.2, 16, 1, False))
    assert (labels == 1).sum() == 2 and (labels == 0).sum() == 2 and (labels == -1).sum() == 12
    _, looser = points_from_similarity(scores, (40, 40), 336, SasPSettings(0.6, 0.4, 16, 1, False))
    assert (looser == 1).sum() == 3 and (looser == 0).sum() == 3


def test_the_cap_keeps_the_strongest_and_short_lists_are_padded_neutral() -> None:
    scores = torch.linspace(0, 1, 16)
    points, labels = points_from_similarity(scores, (40, 40), 336, SasPSettings(0.5, 0.1, 3, 1, False))
    assert labels.tolist() == [1, 1, 1]
    assert points.tolist() == [[35, 35], [25, 35], [15, 35]]  # the three highest cells, bottom row
    padded_points, padded = points_from_similarity(scores, (40, 40), 336, SasPSettings(0.8, 0.2, 20, 1, False))
    assert len(padded) == 20 and (padded[16:] == -1).all() and (padded_points[16:] == 0).all()


def test_wide_image_maps_the_grid_onto_the_centre_crop() -> None:
    # 4x4 grid on a 40x80 image: CLIP saw the middle 40x40, the grid is padded by 2 cells each side
    scores = grid({(0, 3): 0.95})
    points, labels = points_from_similarity(scores, (40, 80), 224, SasPSettings(0.9, 0.0, 2, 1, False))
    assert labels.tolist() == [1, 1]
    assert points.tolist() == [[55, 35], [55, 5]]  # (row 3, col 3) and (row 0, col 3), shifted by 2 cells of 10 px
    assert points[:, 0].min() >= 20 and points[:, 0].max() < 60  # never in the padding


def test_down_sampling_and_coordinates_stay_in_the_image() -> None:
    scores = torch.rand(576, generator=torch.Generator().manual_seed(0))
    points, labels = points_from_similarity(scores, (480, 640), 336, SasPSettings())
    assert points.shape == (30, 2) and labels.shape == (30,)
    assert set(labels.tolist()) <= {1, 0, -1} and (labels == 1).any()
    assert (points[:, 0] <= 639).all() and (points[:, 1] <= 479).all() and (points >= 0).all()


def test_refinement_matches_reads_global_weighted_mean_and_moves_under_a_pixel() -> None:
    full = torch.zeros(1, 1, 20, 20)
    full[..., 11:] = 1.0
    points = np.array([[10.0, 10.0], [3.0, 3.0], [19.0, 0.0]], dtype=np.float32)
    moved = refine_points(full, (20, 20), points)
    # READ: softmax over every pixel, times exp(-d^2), normalised, weighted mean of the pixel grid
    gy, gx = torch.meshgrid(torch.arange(20.0), torch.arange(20.0), indexing="ij")
    probs = torch.softmax(full.reshape(-1), 0)
    for point, got in zip(points, moved, strict=True):
        weights = torch.exp(-((gx - point[0]) ** 2 + (gy - point[1]) ** 2)).reshape(-1) * probs
        weights = weights / weights.sum()
        want = [float((gx.reshape(-1) * weights).sum()), float((gy.reshape(-1) * weights).sum())]
        assert got == pytest.approx(want, abs=1e-4)
    assert 10.0 < moved[0, 0] < 11.0 and moved[0, 1] == pytest.approx(10.0, abs=1e-4)
    assert moved[1] == pytest.approx([3.0, 3.0], abs=1e-3)


def test_lazy_sampling_equals_the_full_resolution_map() -> None:
    scores = torch.rand(576, generator=torch.Generator().manual_seed(1))
    for size in [(480, 640), (37, 91), (300, 200)]:
        full = full_resolution_map(scores, 24, size, 336)
        ys, xs = torch.meshgrid(torch.arange(size[0]).float(), torch.arange(size[1]).float(), indexing="ij")
        lazy = sample_bilinear(padded_map(scores, 24, size, 336), size, ys, xs)
        assert torch.allclose(lazy, full, atol=1e-5)


def test_similarity_is_the_dot_product() -> None:
    seg = torch.tensor([1.0, 2.0])
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert similarity(seg, image).tolist() == [1.0, 2.0, 3.0]
