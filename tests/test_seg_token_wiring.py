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

"""Wiring between the [SEG] model and its prompts, each checked against an independent reference.

CLIP preprocessing (transformers' own processor with the published openai settings, and a hand-made
image whose crop is known), the image-token slice Similarity-as-Points reads (generated and
teacher-forced), the SasP refinement step, the -1 aspect-ratio padding, and the SegLLM crop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

transformers = pytest.importorskip("transformers", reason="the vlm extra is not installed")
torch = pytest.importorskip("torch", reason="the torch extra is not installed")

from reasonseg_ros.memory import MemoryView  # noqa: E402
from reasonseg_ros.reasoner.seg_token.layouts import LAYOUTS  # noqa: E402
from reasonseg_ros.reasoner.seg_token.model import clip_processor  # noqa: E402
from reasonseg_ros.reasoner.seg_token.reasoner import SegTokenReasoner  # noqa: E402
from tests.helpers import scene  # noqa: E402
from tests.seg_token_tiny import tiny_model, tiny_tokenizer  # noqa: E402

EMPTY = MemoryView("default", (), ())

# preprocessor_config.json of openai/clip-vit-large-patch14 as published (the -336 one differs only in the
# two sizes); LISA, GSVA and READ call CLIPImageProcessor.from_pretrained on these towers.
OPENAI_CLIP = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}


def published_processor(side: int) -> Any:
    config = dict(OPENAI_CLIP, crop_size=side, size=side)
    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return cls.from_dict(config)


@pytest.mark.parametrize("side", [224, 336])
@pytest.mark.parametrize("size", [(37, 91), (301, 200), (480, 641), (336, 336)])
def test_clip_preprocessing_equals_transformers_processor_with_the_published_settings(
    side: int, size: tuple[int, int]
) -> None:
    model = tiny_model(side, "linear" if side == 224 else "mlp2x_gelu")
    image = scene(*size, seed=size[0])
    want = published_processor(side)(images=image, return_tensors="pt")["pixel_values"]
    got = model.preprocess(image)
    assert got.shape == (1, 3, side, side)
    assert torch.allclose(got, want, atol=1e-6)


def test_clip_sees_the_centre_crop_not_a_squashed_image() -> None:
    # thirds of a 100x300 image: red | green | blue; shortest side to 224 makes it 224x672, and the centre
    # crop keeps columns 224..447: the green third only (bicubic may bleed a few pixels at the seams)
    image = np.zeros((100, 300, 3), dtype=np.uint8)
    image[:, :100, 0] = image[:, 100:200, 1] = image[:, 200:, 2] = 255
    pixels = tiny_model(224).preprocess(image)[0]
    mean = torch.tensor(OPENAI_CLIP["image_mean"]).view(3, 1, 1)
    std = torch.tensor(OPENAI_CLIP["image_std"]).view(3, 1, 1)
    rgb = (pixels * std + mean)[:, :, 4:-4]
    assert torch.allclose(rgb[1], torch.ones_like(rgb[1]), atol=0.02)
    assert rgb[0].abs().max() < 0.02 and rgb[2].abs().max() < 0.02


def test_a_checkpoints_preprocessor_config_is_used(tmp_path: Path) -> None:
    config = dict(OPENAI_CLIP, image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.25, 0.25])
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    processor = clip_processor(224, tmp_path)
    assert list(processor.image_mean) == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="crop_size"):
        clip_processor(336, tmp_path)


# ---- the image-token slice Similarity-as-Points reads ----------------------------------------------------


def llava_image_positions(ids: list[int], num_patches: int) -> list[int]:
    """Where LLaVA puts the image features: the placeholder's index, then ``num_patches`` positions on."""
    from reasonseg_ros.reasoner.seg_token.conversation import IMAGE_PLACEHOLDER

    expanded: list[int | str] = []
    for token in ids:
        expanded.extend(["img"] * num_patches if token == IMAGE_PLACEHOLDER else [token])
    return [i for i, t in enumerate(expanded) if t == "img"]


@pytest.fixture(scope="module")
def read_reasoner() -> SegTokenReasoner:
    return SegTokenReasoner(tiny_model(336, "mlp2x_gelu"), tiny_tokenizer(), LAYOUTS["read"])


def capture_decoded(reasoner: SegTokenReasoner, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    original = reasoner.build_output

    def spy(image: np.ndarray, text: str, decoded: Any) -> Any:
        seen.append(decoded)
        return original(image, text, decoded)

    monkeypatch.setattr(reasoner, "build_output", spy)
    return seen


def reference_points(reasoner: SegTokenReasoner, image: np.ndarray, ids: list[int], seg_row: int) -> np.ndarray:
    """SasP points from states picked by LLaVA's own image positions and the [SEG] row given."""
    from reasonseg_ros.reasoner.seg_token.sasp import points_from_similarity

    model = reasoner.model
    with torch.inference_mode():
        states = model.last_hidden_states(ids, model.preprocess(image))
    image_states = states[llava_image_positions(ids, model.num_patches)]
    scores = image_states.float() @ states[seg_row].float()
    points, _ = points_from_similarity(scores, image.shape[:2], model.image_size, reasoner.sasp)
    return points


def test_teacher_forced_sasp_reads_the_image_tokens_llava_placed(
    read_reasoner: SegTokenReasoner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reasonseg_ros.reasoner.seg_token.conversation import tokenize_with_image

    image = scene(120, 160, seed=7)
    seen = capture_decoded(read_reasoner, monkeypatch)
    output, decoded = read_reasoner.teacher_force(image, "segment the mug", "the mug:[SEG]", EMPTY)
    ids = tokenize_with_image(
        read_reasoner.tokenizer, read_reasoner.prompt_text("segment the mug", EMPTY, "the mug:[SEG]")
    )
    with torch.inference_mode():
        states = read_reasoner.model.last_hidden_states(ids, read_reasoner.model.preprocess(image))
    assert torch.equal(seen[0].image_states, states[llava_image_positions(ids, 576)])
    want = reference_points(read_reasoner, image, ids, decoded.positions[0])
    assert np.allclose(output.targets[0].prompt.points, want, atol=1e-4)


def test_generated_sasp_reads_the_image_tokens_llava_placed(
    read_reasoner: SegTokenReasoner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reasonseg_ros.reasoner.seg_token.conversation import tokenize_with_image
    from tests.test_seg_token_model import ForcedTokens

    image = scene(100, 150, seed=8)
    seen = capture_decoded(read_reasoner, monkeypatch)
    output = ForcedTokens(read_reasoner, [" the", " mug", ":", "[SEG]", "</s>"]).reason(image, "the mug", EMPTY)
    decoded = seen[0]
    prompt = tokenize_with_image(read_reasoner.tokenizer, read_reasoner.prompt_text("the mug", EMPTY))
    ids = prompt + decoded.ids
    with torch.inference_mode():
        states = read_reasoner.model.last_hidden_states(ids, read_reasoner.model.preprocess(image))
    assert torch.allclose(decoded.image_states, states[llava_image_positions(ids, 576)], atol=1e-4)
    seg_row = len(prompt) + decoded.ids.index(read_reasoner.seg_id) - 1 + 575  # the state before [SEG]
    want = reference_points(read_reasoner, image, ids, seg_row)
    assert np.allclose(output.targets[0].prompt.points, want, atol=0.05)


# ---- the SasP refinement step ------------------------------------------------------------------------------


def read_refined(scores: Any, image_size: tuple[int, int], clip: int, points: np.ndarray) -> np.ndarray:
    """READ's refinement written out.

    Min-max, bilinear to CLIP size, zero pad to the aspect ratio, bilinear to the image, then per point the
    mean pixel position weighted by softmax(map) * exp(-d^2) over every pixel.
    """
    functional = torch.nn.functional
    side = round(scores.numel() ** 0.5)
    sm = scores.reshape(1, 1, side, side).float()
    sm = (sm - sm.min()) / (sm.max() - sm.min())
    h, w = image_size
    scale = clip / min(h, w)
    sm = functional.interpolate(sm, (clip, clip), mode="bilinear")
    pad_h, pad_w = (int(h * scale) - clip) // 2, (int(w * scale) - clip) // 2
    full = functional.interpolate(functional.pad(sm, (pad_w, pad_w, pad_h, pad_h)), image_size, mode="bilinear")
    gy, gx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    probs = torch.softmax(full.reshape(-1), 0)
    out = []
    for x, y in points:
        weights = torch.exp(-((gx - float(x)) ** 2 + (gy - float(y)) ** 2)).reshape(-1) * probs
        weights = weights / weights.sum()
        out.append([float((gx.reshape(-1) * weights).sum()), float((gy.reshape(-1) * weights).sum())])
    return np.asarray(out, dtype=np.float32)


def test_read_reasoner_applies_the_refinement_step(read_reasoner: SegTokenReasoner) -> None:
    from reasonseg_ros.reasoner.seg_token.sasp import SasPSettings, points_from_similarity

    assert read_reasoner.sasp is not None and read_reasoner.sasp.refine
    scores = torch.rand(576, generator=torch.Generator().manual_seed(3))
    size = (60, 90)
    coarse, labels = points_from_similarity(scores, size, 336, SasPSettings(refine=False))
    refined, same = points_from_similarity(scores, size, 336, read_reasoner.sasp)
    used = labels != -1
    assert (same == labels).all()
    assert np.allclose(refined[used], read_refined(scores, size, 336, coarse[used]), atol=1e-3)
    assert not np.allclose(refined[used], coarse[used], atol=1e-2)  # the step moves points off the cell centres


# ---- the -1 padding of the aspect-ratio padding ------------------------------------------------------------


def test_aspect_padding_never_becomes_points() -> None:
    from reasonseg_ros.reasoner.seg_token.sasp import SasPSettings, points_from_similarity

    # 4x4 grid on a 40x80 image: CLIP saw columns 20..59; values by hand (0 and 1 fix the min-max range)
    scores = torch.tensor(
        [[0.0, 0.5, 0.5, 0.1], [0.5, 0.9, 0.5, 0.5], [0.5, 0.5, 0.15, 0.5], [0.5, 0.5, 0.5, 1.0]]
    ).reshape(-1)
    points, labels = points_from_similarity(scores, (40, 80), 224, SasPSettings(0.8, 0.2, 40, 1, False))
    # negatives: the in-crop cells <= 0.2, lowest first; positives: the cells >= 0.8, highest first
    assert (labels == 1).sum() == 2 and (labels == 0).sum() == 3
    assert points[labels == 0].tolist() == [[25, 5], [55, 5], [45, 25]]
    assert points[labels == 1].tolist() == [[55, 35], [35, 15]]
    # the rest of the crop is neutral; the padding cells (2 columns each side) are never chosen
    assert (labels == -1).sum() == 40 - 5 and ((points[labels != -1, 0] >= 20) & (points[labels != -1, 0] < 60)).all()
    assert len({tuple(p) for p in points[labels == -1][:11]}) == 11


# ---- the SegLLM crop -----------------------------------------------------------------------------------------


def test_segllm_memory_token_embeds_the_object_not_its_background() -> None:
    from reasonseg_ros.masks import encode_rle
    from reasonseg_ros.reasoner.seg_token.segllm import MemoryEncoder
    from reasonseg_ros.types import SegmentedObject

    model = tiny_model(224)
    encoder = MemoryEncoder(model.hidden_size)
    image = scene(60, 80, seed=2)
    yy, xx = np.mgrid[:60, :80]
    mask = (yy - 25) ** 2 + (xx - 40) ** 2 <= 15**2  # a disc: its box holds background corners
    box = (25.0, 10.0, 56.0, 41.0)
    remembered = SegmentedObject(1, "the disc", box, encode_rle(mask), 0.9, 600, 0, 0)
    with torch.inference_mode():
        tokens = encoder(model, image, [remembered])
        crop = np.where(mask[..., None], image, 0)[10:41, 25:56]  # the object, background zeroed, its box
        pixels = published_processor(224)(images=np.ascontiguousarray(crop), return_tensors="pt")["pixel_values"]
        want = model.encode_image(pixels)[0].mean(dim=0)
    assert torch.allclose(tokens[0], want, atol=1e-5)
