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

from reasonseg_ros.segmenter.prompt_batch import PAD_LABEL, batch_prompts, resized_shape, to_input_coords
from reasonseg_ros.types import Prompt

transforms = pytest.importorskip("segment_anything.utils.transforms", reason="the torch extra is not installed")


@pytest.mark.parametrize(("h", "w"), [(720, 1280), (1280, 720), (480, 640), (333, 517), (1024, 1024), (10, 900)])
def test_coordinate_transform_matches_segment_anything(h, w):
    resize = transforms.ResizeLongestSide(1024)
    assert resized_shape(h, w, 1024) == resize.get_preprocess_shape(h, w, 1024)
    coords = np.random.default_rng(0).uniform(0, min(h, w), (7, 2))
    ours = to_input_coords(coords, (h, w), resized_shape(h, w, 1024))
    np.testing.assert_allclose(ours, resize.apply_coords(coords, (h, w)), rtol=1e-6)
    boxes = np.array([[1.0, 2.0, w - 3.0, h - 4.0]])
    ours_box = to_input_coords(boxes.reshape(2, 2), (h, w), resized_shape(h, w, 1024)).reshape(1, 4)
    np.testing.assert_allclose(ours_box, resize.apply_boxes(boxes, (h, w)), rtol=1e-6)


def test_points_only_batch_gets_one_pad_point_like_sam():
    batch = batch_prompts(
        [Prompt(points=[[1, 2]]), Prompt(points=[[3, 4], [5, 6]], point_labels=[1, 0])], (10, 10), (10, 10)
    )
    assert batch.point_coords.shape == (2, 3, 2)
    np.testing.assert_array_equal(batch.point_labels, [[1, PAD_LABEL, PAD_LABEL], [1, 0, PAD_LABEL]])
    assert batch.boxes is None and batch.embeddings is None and batch.size == 2


def test_mixed_batch_layout():
    prompts = [
        Prompt(box=[0, 0, 5, 5]),
        Prompt(points=[[1, 1]]),
        Prompt(embedding=np.ones((2, 256))),
        Prompt(points=[[2, 2]], box=[1, 1, 4, 4], embedding=np.ones(256)),
    ]
    batch = batch_prompts(prompts, (20, 10), (40, 20))
    # with boxes in the batch, no extra pad point: slots = max points
    assert batch.point_coords.shape == (4, 1, 2)
    np.testing.assert_array_equal(batch.point_labels[:, 0], [PAD_LABEL, 1, PAD_LABEL, 1])
    np.testing.assert_array_equal(batch.has_box, [True, False, False, True])
    np.testing.assert_allclose(batch.boxes[3], [2, 2, 8, 8])  # scaled ×2
    np.testing.assert_allclose(batch.point_coords[1, 0], [2, 2])
    assert batch.embeddings.shape == (4, 2, 256)
    np.testing.assert_array_equal(batch.embedding_mask, [[False, False], [False, False], [True, True], [True, False]])


def test_prompt_validation():
    with pytest.raises(ValueError, match="needs points, a box, an embedding or a mask"):
        Prompt()
    with pytest.raises(ValueError, match="2 points but 1 point labels"):
        Prompt(points=[[0, 0], [1, 1]], point_labels=[1])
    with pytest.raises(ValueError, match="different widths"):
        batch_prompts([Prompt(embedding=np.ones(256)), Prompt(embedding=np.ones(128))], (4, 4), (4, 4))
