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

"""A ``prompt`` target carrying a COCO RLE ``mask`` becomes Prompt.mask; bad RLEs are clear errors."""

import json

import numpy as np
import pytest

from reasonseg_ros.errors import InputError
from reasonseg_ros.masks import check_rle, encode_rle, rle_runs
from reasonseg_ros.memory import MemoryView
from reasonseg_ros.reasoner.prompt import PromptReasoner

pycocotools_mask = pytest.importorskip("pycocotools.mask")

IMAGE = np.zeros((6, 8, 3), dtype=np.uint8)
EMPTY = MemoryView("s", (), ())


def reason(*entries):
    return PromptReasoner().reason(IMAGE, json.dumps({"targets": list(entries)}), EMPTY)


def test_mask_target_becomes_the_prompt_mask():
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:4, 2:7] = True
    mask[5, 0] = True
    output = reason({"label": "cup", "mask": encode_rle(mask)})
    (target,) = output.targets
    assert target.label == "cup" and target.object_id is None
    assert np.array_equal(target.prompt.mask, mask)
    assert target.prompt.box is None and target.prompt.points is None


def test_uncompressed_counts_as_pycocotools_writes_them():
    mask = np.zeros((6, 8), dtype=bool)
    mask[2:5, 3] = True
    runs = [3 * 6 + 2, 3, 6 * 8 - 3 * 6 - 2 - 3]  # column-major runs: zeros, ones, zeros
    output = reason({"mask": {"size": [6, 8], "counts": runs}})
    assert np.array_equal(output.targets[0].prompt.mask, mask)


def test_compressed_runs_agree_with_pycocotools():
    rng = np.random.default_rng(3)
    for _ in range(50):
        mask = rng.random((13, 17)) > rng.random()
        rle = pycocotools_mask.encode(np.asfortranarray(mask, dtype=np.uint8))
        runs = rle_runs(rle["counts"].decode())
        assert sum(runs) == 13 * 17
        # Rebuild the mask from our runs (column-major, zeros first) and compare with pycocotools' decode.
        flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
        assert np.array_equal(flat.reshape(17, 13).T, pycocotools_mask.decode(rle).astype(bool))


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        ({"size": [5, 8], "counts": "0"}, "the mask is 5×8 (h×w) but the image is 6×8"),
        ({"size": [6, 8], "counts": "zz"}, "cannot appear in a compressed RLE"),
        ({"size": [6, 8], "counts": ""}, "cover 0 pixels, not h × w = 48"),
        ({"size": [6, 8], "counts": [10, 5]}, "cover 15 pixels"),
        ({"size": [6, 8], "counts": [50, -2]}, "not h × w"),
        ({"size": [6, 8], "counts": 12}, "compressed string or a list"),
        ({"size": [6], "counts": "0"}, "'size' must be [h, w]"),
        ({"counts": "0"}, "a mask must be an RLE"),
        ([1, 2], "a mask must be an RLE"),
        ({"size": [6, 8], "counts": [48]}, "is empty"),
    ],
)
def test_bad_mask_targets_are_clear_errors(mask, message):
    with pytest.raises(InputError, match=r"targets\[0\]\.mask") as info:
        reason({"label": "cup", "mask": mask})
    assert message in str(info.value)


def test_check_rle_accepts_what_encode_writes():
    rle = encode_rle(np.eye(4, 5, dtype=bool))
    assert check_rle(rle, (4, 5)) == rle


def test_oracle_in_mask_mode_hands_over_the_ground_truth_mask():
    from reasonseg_ros.config import OracleConfig
    from reasonseg_ros.reasoner.oracle import OracleReasoner

    mask = np.zeros((6, 8), dtype=bool)
    mask[2:5, 1:3] = True
    oracle = OracleReasoner(OracleConfig(prompt="mask"))
    oracle.expect("s", "the cup", [("cup", encode_rle(mask))])
    (target,) = oracle.reason(IMAGE, "the cup", MemoryView("s", (), ())).targets
    assert np.array_equal(target.prompt.mask, mask) and target.prompt.box is None
