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

"""The overlay's pixels: outline colour on the mask border, tint inside, prompts, rejections, the banner."""

import numpy as np
import pytest

pytest.importorskip("PIL.ImageDraw")

from reasonseg_ros.overlay import (
    BANNER,
    NEGATIVE,
    POSITIVE,
    color_of,
    colorize_labels,
    draw_overlay,
    mask_border,
)
from reasonseg_ros.types import Prompt, Rejection, SegmentedObject

H, W = 120, 160


def _object(object_id, mask, label="mug"):
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return SegmentedObject(object_id, label, box, {}, 0.9, int(mask.sum()), 0, 0)


@pytest.fixture
def square():
    mask = np.zeros((H, W), dtype=bool)
    mask[50:90, 40:100] = True
    return mask


def test_the_outline_has_the_objects_colour_and_the_inside_is_a_tint(square):
    image = np.full((H, W, 3), 100, dtype=np.uint8)
    out = draw_overlay(image, square[None], [_object(7, square)])
    color = color_of(7)
    # the left and bottom borders (the tab sits over the top one): exactly the object's colour
    assert (out[70, 40] == color).all() and (out[89, 70] == color).all()
    # one pixel inside: blended, neither the colour nor the image
    inside = out[70, 60].astype(int)
    expected = np.round(100 * 0.55 + color.astype(float) * 0.45).astype(int)
    assert np.abs(inside - expected).max() <= 1
    # outside the mask, away from the tab: untouched
    assert (out[110, 150] == 100).all() and (out[70, 20] == 100).all()


def test_mask_border_is_the_ring_of_pixels_next_to_the_outside(square):
    border = mask_border(square)
    # a 40×60 rectangle: its ring has 2·60 + 2·38 pixels (hand count)
    assert border.sum() == 2 * 60 + 2 * 38
    assert border[50, 70] and border[70, 40] and not border[70, 70]


def test_id_and_label_tab_sits_above_the_box(square):
    image = np.zeros((H, W, 3), dtype=np.uint8)
    out = draw_overlay(image, square[None], [_object(3, square, "plate")])
    tab = out[35:50, 40:100]
    # the tab is filled with the object's colour, and its text is drawn in another colour on it
    assert (tab == color_of(3)).all(axis=2).mean() > 0.3
    assert (~(tab == color_of(3)).all(axis=2) & (tab.sum(axis=2) > 0)).any()


def test_prompts_positive_dot_negative_cross_and_box(square):
    image = np.full((H, W, 3), 128, dtype=np.uint8)
    prompt = Prompt(points=[[70, 70], [20, 20]], point_labels=[1, 0], box=[30, 45, 110, 95])
    out = draw_overlay(image, square[None], [_object(1, square)], prompts=[prompt])
    assert tuple(out[70, 70]) == POSITIVE
    assert tuple(out[20, 20]) == NEGATIVE  # the crossing of the two strokes
    assert (out[95, 60] == color_of(1)).all()  # bottom edge of the prompt box


def test_banner_iff_random_weights_and_rejections_written(square):
    image = np.full((H, W, 3), 128, dtype=np.uint8)
    plain = draw_overlay(image, square[None], [_object(1, square)])
    banner = draw_overlay(image, square[None], [_object(1, square)], random_weights=True)
    assert not (plain[:6] == BANNER).all(axis=2).any()
    assert (banner[:6] == BANNER).all(axis=2).mean() > 0.5
    rejected = draw_overlay(image, np.zeros((0, H, W), bool), [], rejections=[Rejection("the fork", "not there")])
    assert (rejected[-8:] != 128).any() and (rejected[:40] == 128).all()


def test_colorized_labels_use_the_object_colours():
    labels = np.zeros((4, 5), dtype=np.uint16)
    labels[1:3, 1:3] = 4
    labels[0, 4] = 9
    picture = colorize_labels(labels)
    assert (picture[1, 1] == color_of(4)).all() and (picture[0, 4] == color_of(9)).all()
    assert (picture[0, 0] == 0).all()


def test_a_tab_at_the_top_edge_stays_below_the_banner():
    mask = np.zeros((H, W), dtype=bool)
    mask[0:60, 0:80] = True  # touches the top edge, where the banner is
    out = draw_overlay(np.zeros((H, W, 3), dtype=np.uint8), mask[None], [_object(2, mask)], random_weights=True)
    banner_rows = int((out[:, W - 1] == BANNER).all(axis=1).sum())
    assert banner_rows > 0
    below = out[banner_rows : banner_rows + 6, 0:30]
    assert (below == color_of(2)).all(axis=2).mean() > 0.3  # the id tab, not hidden under the banner


def test_tabs_of_objects_with_the_same_corner_do_not_cover_each_other(square):
    out = draw_overlay(
        np.zeros((H, W, 3), dtype=np.uint8), np.stack([square, square]), [_object(1, square), _object(2, square)]
    )
    tab_region = out[:, 40:60]
    assert (tab_region == color_of(1)).all(axis=2).any() and (tab_region == color_of(2)).all(axis=2).any()
