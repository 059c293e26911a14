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
from helpers import scene

from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.errors import CheckpointError, InputError
from reasonseg_ros.masks import mask_iou
from reasonseg_ros.segmenter.prompt_batch import batch_prompts
from reasonseg_ros.types import Prompt

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
from segment_anything import SamPredictor  # noqa: E402

from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter, build_sam  # noqa: E402

SINGLE_PROMPTS = [
    Prompt(points=[[100, 80]]),
    Prompt(points=[[100, 80], [30, 200]], point_labels=[1, 0]),
    Prompt(box=[50, 40, 200, 180]),
    Prompt(points=[[120, 90], [10, 10]], point_labels=[1, 0], box=[50, 40, 200, 180]),
]


@pytest.fixture(scope="module")
def image():
    return scene(240, 320)


@pytest.fixture(scope="module")
def predictor(tiny_sam, image):
    predictor = SamPredictor(tiny_sam)
    predictor.set_image(image)
    return predictor


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("prompt", SINGLE_PROMPTS, ids=["point", "points", "box", "mixed"])
def test_single_prompt_matches_sam_predictor(tiny_sam, image, predictor, prompt, multimask):
    segmenter = TorchSamSegmenter(tiny_sam, multimask=multimask)
    embedding = segmenter.embed(image)
    assert torch.equal(embedding.features, predictor.features)
    result = segmenter.decode(embedding, [prompt])
    masks, scores, _ = predictor.predict(prompt.points, prompt.point_labels, prompt.box, multimask_output=multimask)
    best = int(scores.argmax())
    assert result.masks.shape == (1, 240, 320) and result.masks.dtype == bool
    np.testing.assert_array_equal(result.masks[0], masks[best])
    assert result.scores[0] == pytest.approx(scores[best], abs=1e-6)


@pytest.mark.parametrize("batch_size", [0, 1, 2, 5])
def test_batched_decode_keeps_order_and_equals_single_decodes(tiny_sam, image, batch_size):
    segmenter = TorchSamSegmenter(tiny_sam, batch_size=batch_size)
    boxes = [Prompt(box=[10 + 20 * i, 15 + 10 * i, 150 + 30 * i, 200]) for i in range(5)]
    embedding = segmenter.embed(image)
    batched = segmenter.decode(embedding, boxes)
    assert batched.masks.shape == (5, 240, 320) and batched.scores.shape == (5,)
    for i, prompt in enumerate(boxes):
        alone = segmenter.decode(embedding, [prompt])
        assert mask_iou(alone.masks[0], batched.masks[i]) > 0.999
        assert alone.scores[0] == pytest.approx(batched.scores[i], abs=1e-4)
    reverse = segmenter.decode(embedding, boxes[::-1])
    np.testing.assert_allclose(reverse.scores, batched.scores[::-1], atol=1e-4)


@pytest.mark.parametrize(("h", "w"), [(240, 320), (300, 200), (97, 513)])
def test_masks_come_back_at_the_original_size(segmenter, h, w):
    result = segmenter.decode(
        segmenter.embed(scene(h, w)), [Prompt(box=[0, 0, w / 2, h / 2]), Prompt(points=[[w - 1, h - 1]])]
    )
    assert result.masks.shape == (2, h, w)


def test_mixed_batch_pads_with_not_a_point(tiny_sam, image):
    segmenter = TorchSamSegmenter(tiny_sam, batch_size=3)
    embedding = segmenter.embed(image)
    prompts = [Prompt(points=[[100, 80]]), Prompt(box=[50, 40, 200, 180]), Prompt(embedding=np.full(256, 0.1))]
    batch = batch_prompts(prompts, embedding.original_size, embedding.input_size)
    sparse = segmenter.sparse_embeddings(batch)
    pad = segmenter.sam.prompt_encoder.not_a_point_embed.weight[0]
    assert sparse.shape == (3, 1 + 2 + 1, 256)  # one point slot, two box corners, one embedding token
    assert torch.equal(sparse[1, 0], pad) and torch.equal(sparse[2, 0], pad)  # no point
    assert torch.equal(sparse[0, 1], pad) and torch.equal(sparse[0, 2], pad)  # no box
    assert torch.equal(sparse[0, 3], pad) and torch.equal(sparse[1, 3], pad)  # no embedding
    assert torch.allclose(sparse[2, 3], torch.full((256,), 0.1))  # embedding passes through unchanged, last
    result = segmenter.decode(embedding, prompts)
    assert result.masks.shape == (3, 240, 320)


def test_embedding_prompt_reaches_the_decoder_and_uses_single_mask_output(segmenter, image):
    embedding = segmenter.embed(image)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(1, 256)) * 3, rng.normal(size=(1, 256)) * 3
    ra, rb = segmenter.decode(embedding, [Prompt(embedding=a)]), segmenter.decode(embedding, [Prompt(embedding=b)])
    assert not np.array_equal(ra.masks, rb.masks) or ra.scores[0] != rb.scores[0]
    encoder, decoder = segmenter.sam.prompt_encoder, segmenter.sam.mask_decoder
    with torch.inference_mode():
        sparse = torch.as_tensor(a, dtype=torch.float32)[None]
        dense = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *encoder.image_embedding_size)
        _, iou = decoder(embedding.features, encoder.get_dense_pe(), sparse, dense, multimask_output=False)
    assert ra.scores[0] == pytest.approx(float(iou[0, 0]), abs=1e-6)
    with pytest.raises(InputError, match="128-d, SAM expects 256-d"):
        segmenter.decode(embedding, [Prompt(embedding=np.ones(128))])


def test_checkpoint_round_trip(tmp_path, tiny_sam, image):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_sam.state_dict(), path)
    loaded = TorchSamSegmenter.from_config(SegmenterConfig(model_type="vit_tiny", checkpoint=str(path)))
    assert str(path) in loaded.name
    prompt = [Prompt(box=[50, 40, 200, 180])]
    ref = TorchSamSegmenter(tiny_sam)
    np.testing.assert_array_equal(
        loaded.decode(loaded.embed(image), prompt).masks, ref.decode(ref.embed(image), prompt).masks
    )


def test_missing_checkpoint_names_file_url_and_option(tmp_path):
    with pytest.raises(CheckpointError) as info:
        TorchSamSegmenter.from_config(SegmenterConfig(model_type="vit_b", cache_dir=str(tmp_path)))
    message = str(info.value)
    assert str(tmp_path / "sam_vit_b_01ec64.pth") in message
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth" in message
    assert "segmenter.checkpoint" in message and "\n" not in message
    with pytest.raises(CheckpointError, match=r"not found: .*nope.pth; set segmenter.checkpoint"):
        TorchSamSegmenter.from_config(SegmenterConfig(model_type="vit_h", checkpoint=str(tmp_path / "nope.pth")))


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"\x80\x04not really a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=r"cannot read SAM checkpoint .*broken.pth"):
        TorchSamSegmenter.from_config(SegmenterConfig(model_type="vit_tiny", checkpoint=str(path)))


class Payload:
    """Not a tensor: weights_only loading must refuse to unpickle it."""


def test_checkpoint_loading_runs_no_pickled_code(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"image_encoder.x": Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot read SAM checkpoint"):
        TorchSamSegmenter.from_config(SegmenterConfig(model_type="vit_tiny", checkpoint=str(path)))


def test_checkpoint_of_another_architecture_names_the_fix(tmp_path, tiny_sam):
    path = tmp_path / "vit_b_like.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16)}, path)
    with pytest.raises(CheckpointError, match=r"is a SAM vit_b checkpoint but segmenter.model_type is vit_tiny: set"):
        TorchSamSegmenter.from_config(SegmenterConfig(model_type="vit_tiny", checkpoint=str(path)))
    state = tiny_sam.state_dict()
    state.pop("mask_decoder.iou_token.weight")
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"does not match SAM vit_tiny: .*iou_token"):
        TorchSamSegmenter.from_config(SegmenterConfig(model_type="vit_tiny", checkpoint=str(path)))


def test_official_architectures_build_with_their_sizes():
    sam = build_sam("vit_b")
    assert sam.image_encoder.patch_embed.proj.weight.shape[0] == 768
    assert len(sam.image_encoder.blocks) == 12 and sam.image_encoder.img_size == 1024
