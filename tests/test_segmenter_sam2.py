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

"""The sam2 segmenter against SAM 2.1's own ``SAM2ImagePredictor`` on a tiny random model (tests/sam2_tiny.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import scene
from sam2_tiny import feature_sizes

from reasonseg_ros.config import SegmenterConfig, load_config
from reasonseg_ros.errors import CheckpointError, ConfigError, InputError, MissingDependencyError
from reasonseg_ros.masks import mask_iou
from reasonseg_ros.types import Prompt

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
pytest.importorskip("sam2", reason="the sam2 extra is not installed")
from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: E402

from reasonseg_ros.segmenter import create_segmenter  # noqa: E402
from reasonseg_ros.segmenter.sam2_image import Sam2ImageSegmenter  # noqa: E402

PROMPTS = [
    Prompt(points=[[100, 80]]),
    Prompt(points=[[100, 80], [30, 200]], point_labels=[1, 0]),
    Prompt(box=[50, 40, 200, 180]),
    Prompt(points=[[120, 90], [10, 10]], point_labels=[1, 0], box=[50, 40, 200, 180]),
]


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return scene(240, 320, seed=3)


@pytest.fixture(scope="module")
def predictor(tiny_sam2, image):
    predictor = SAM2ImagePredictor(tiny_sam2.model)
    predictor._bb_feat_sizes = feature_sizes()  # it assumes 1024-pixel inputs; the tiny model takes 256
    predictor.set_image(image)
    return predictor


def test_embedding_is_the_predictors(tiny_sam2, image, predictor):
    embedding = Sam2ImageSegmenter(tiny_sam2).embed(image)
    fpn = embedding.features["backbone_fpn"]
    with_no_memory = fpn[-1] + tiny_sam2.model.no_mem_embed.reshape(1, -1, 1, 1)
    torch.testing.assert_close(with_no_memory, predictor._features["image_embed"], rtol=0, atol=0)
    for ours, theirs in zip(fpn[:-1], predictor._features["high_res_feats"], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert embedding.original_size == (240, 320) and embedding.input_size == (256, 256)


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("prompt", PROMPTS, ids=["point", "points", "box", "mixed"])
def test_single_prompt_matches_sam2_image_predictor(tiny_sam2, image, predictor, prompt, multimask):
    segmenter = Sam2ImageSegmenter(tiny_sam2, multimask=multimask)
    result = segmenter.decode(segmenter.embed(image), [prompt])
    masks, scores, _ = predictor.predict(prompt.points, prompt.point_labels, prompt.box, multimask_output=multimask)
    best = int(scores.argmax())
    assert result.masks.shape == (1, 240, 320) and result.masks.dtype == bool
    np.testing.assert_array_equal(result.masks[0], masks[best] > 0.5)
    assert result.scores[0] == pytest.approx(scores[best], abs=1e-6)


def test_batched_boxes_match_the_predictors_batched_boxes(tiny_sam2, image, predictor):
    boxes = np.array([[10 + 20 * i, 15 + 10 * i, 150 + 30 * i, 200] for i in range(4)], dtype=np.float32)
    segmenter = Sam2ImageSegmenter(tiny_sam2, batch_size=4)
    result = segmenter.decode(segmenter.embed(image), [Prompt(box=b) for b in boxes])
    masks, scores, _ = predictor.predict(box=boxes, multimask_output=True)
    best = scores.argmax(axis=1)
    for i in range(4):
        np.testing.assert_array_equal(result.masks[i], masks[i, best[i]] > 0.5)
        assert result.scores[i] == pytest.approx(scores[i, best[i]], abs=1e-5)


@pytest.mark.parametrize("batch_size", [0, 1, 3])
def test_mixed_batches_keep_order_and_equal_single_decodes(tiny_sam2, image, batch_size):
    segmenter = Sam2ImageSegmenter(tiny_sam2, batch_size=batch_size)
    embedding = segmenter.embed(image)
    prompts = [Prompt(box=[10 + 20 * i, 15 + 10 * i, 150 + 30 * i, 200]) for i in range(3)] + PROMPTS[:2]
    batched = segmenter.decode(embedding, prompts)
    assert batched.masks.shape == (5, 240, 320) and batched.scores.shape == (5,)
    for i, prompt in enumerate(prompts[:3]):
        alone = segmenter.decode(embedding, [prompt])
        assert mask_iou(alone.masks[0], batched.masks[i]) > 0.99
    reverse = segmenter.decode(embedding, prompts[:3][::-1])
    np.testing.assert_allclose(reverse.scores, batched.scores[:3][::-1], atol=1e-4)


@pytest.mark.parametrize(("h", "w"), [(300, 200), (97, 513)])
def test_masks_come_back_at_the_original_size(tiny_sam2, h, w):
    segmenter = Sam2ImageSegmenter(tiny_sam2)
    result = segmenter.decode(segmenter.embed(scene(h, w)), [Prompt(box=[5, 5, w // 2, h // 2])])
    assert result.masks.shape == (1, h, w)


def test_one_encode_per_frame_shared_through_the_memo(tiny_sam2, image):
    calls = []
    handle = tiny_sam2.model.image_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        segmenter = Sam2ImageSegmenter(tiny_sam2)
        frame = image.copy()
        segmenter.embed(frame)
        segmenter.embed(frame)
        tiny_sam2.encode(frame)
        assert len(calls) == 1
        segmenter.embed(frame.copy())  # another array (another frame): encoded again
        assert len(calls) == 2
    finally:
        handle.remove()


def test_bad_prompts_and_images_are_clear_errors(tiny_sam2, image):
    segmenter = Sam2ImageSegmenter(tiny_sam2)
    embedding = segmenter.embed(image)
    with pytest.raises(InputError, match="SEG"):
        segmenter.decode(embedding, [Prompt(embedding=np.zeros((1, 32), np.float32))])
    with pytest.raises(InputError, match="H×W×3 uint8"):
        segmenter.embed(np.zeros((10, 10), np.uint8))


def test_missing_checkpoint_names_the_file_and_the_url(tmp_path):
    config = SegmenterConfig(backend="sam2", cache_dir=str(tmp_path))
    with pytest.raises(CheckpointError) as info:
        create_segmenter(config)
    message = str(info.value)
    assert "\n" not in message and "sam2.1_hiera_tiny.pt" in message
    assert "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt" in message
    config = load_config(
        None,
        {
            "segmenter.backend": "sam2",
            "segmenter.sam2.model": "sam2.1_hiera_b+",
            "segmenter.checkpoint": str(tmp_path / "mine.pt"),
        },
    )
    with pytest.raises(CheckpointError, match=r"mine\.pt"):
        create_segmenter(config.segmenter)


def test_missing_sam2_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sam2.build_sam", None)  # import fails as if sam2 were not installed
    with pytest.raises(MissingDependencyError, match=r"reasonseg_ros\[sam2\]"):
        create_segmenter(SegmenterConfig(backend="sam2", random_weights=True))


def test_a_corrupt_checkpoint_is_named(tmp_path):
    bad = tmp_path / "sam2.1_hiera_tiny.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot read SAM 2\.1 checkpoint"):
        create_segmenter(SegmenterConfig(backend="sam2", cache_dir=str(tmp_path)))


def test_preflight_names_missing_sam2_checkpoints_before_anything_loads(tmp_path):
    from reasonseg_ros.preflight import preflight

    config = load_config(
        None,
        {
            "segmenter.backend": "sam2",
            "segmenter.cache_dir": str(tmp_path),
            "tracking.backend": "sam2",
            "tracking.sam2.model": "sam2.1_hiera_l",
            "tracking.sam2.cache_dir": str(tmp_path),
        },
    )
    with pytest.raises(ConfigError) as info:
        preflight(config)
    message = str(info.value)
    assert "sam2.1_hiera_tiny.pt" in message and "sam2.1_hiera_large.pt" in message and "tracking.sam2" in message
    (tmp_path / "sam2.1_hiera_tiny.pt").write_bytes(b"")
    (tmp_path / "sam2.1_hiera_large.pt").write_bytes(b"")
    preflight(config)  # both on disk: nothing to say before loading
