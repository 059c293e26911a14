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
from pycocotools import mask as coco

from reasonseg_ros.masks import (
    box_iou,
    decode_rle,
    encode_rle,
    label_image,
    mask_iou,
    mask_to_box,
    rle_area,
    rle_intersection_union,
    rle_iou,
)


def blob(h=40, w=50, box=(5, 7, 20, 30)):
    mask = np.zeros((h, w), dtype=bool)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = True
    return mask


def test_rle_is_pycocotools_own_and_round_trips():
    mask = blob()
    mask[0, 0] = True
    rle = encode_rle(mask)
    assert rle["size"] == [40, 50]
    assert isinstance(rle["counts"], str)
    ours = coco.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool)
    np.testing.assert_array_equal(ours, mask)
    np.testing.assert_array_equal(decode_rle(rle), mask)
    assert rle_area(rle) == mask.sum()


def test_decode_uncompressed_counts():
    # column-major runs: 3 background, 2 foreground, rest background in a 3x2 image
    mask = decode_rle({"size": [3, 2], "counts": [3, 2, 1]})
    np.testing.assert_array_equal(mask, np.array([[False, True], [False, True], [False, False]]))


def test_iou_hand_computed():
    a = blob(box=(0, 0, 10, 10))
    b = blob(box=(5, 0, 15, 10))
    assert mask_iou(a, b) == pytest.approx(50 / 150)
    assert rle_iou(encode_rle(a), encode_rle(b)) == pytest.approx(50 / 150)
    assert rle_intersection_union(encode_rle(a), encode_rle(b)) == (50, 150)
    empty = np.zeros_like(a)
    assert mask_iou(empty, empty) == 1.0
    assert rle_iou(encode_rle(empty), encode_rle(a)) == 0.0


def test_mask_to_box_uses_pixel_edges():
    assert mask_to_box(blob(box=(5, 7, 20, 30))) == (5.0, 7.0, 20.0, 30.0)
    assert mask_to_box(np.zeros((4, 4), dtype=bool)) is None


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_label_image_later_mask_wins_and_ids_fit_uint16():
    a, b = blob(box=(0, 0, 10, 10)), blob(box=(5, 0, 15, 10))
    labels = label_image(np.stack([a, b]), [3, 700])
    assert labels.dtype == np.uint16
    assert labels[0, 2] == 3 and labels[0, 7] == 700 and labels[0, 20] == 0
    with pytest.raises(ValueError, match=r"1..65535"):
        label_image(np.stack([a]), [70000])
    with pytest.raises(ValueError):
        label_image(np.stack([a]), [1, 2])
