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

"""The ``vlm`` backend on a tiny random Qwen2.5-VL built from configs with the real classes.

The model is saved to a folder once per session and loaded back through
``AutoProcessor`` / ``AutoModelForImageTextToText``, as a real one would be.
Its answers are random text: these tests check plumbing, never quality.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from helpers import scene
from vlm_helpers import memory_of

from reasonseg_ros.config import load_config
from reasonseg_ros.errors import CheckpointError, ModelOutputError
from reasonseg_ros.reasoner import create_reasoner
from reasonseg_ros.reasoner.vlm.client import QueryGroup
from reasonseg_ros.reasoner.vlm.local import LocalVlm
from reasonseg_ros.reasoner.vlm.prompt import PromptText
from reasonseg_ros.reasoner.vlm.query import candidate_points, choose_points
from reasonseg_ros.reasoner.vlm.reasoner import VlmReasoner
from reasonseg_ros.types import Instruction

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
pytest.importorskip("transformers", reason="the vlm extra is not installed")

HEIGHT, WIDTH = 120, 160


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from reasonseg_ros.reasoner.vlm.tiny import build_tiny_qwen2_5_vl

    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny_qwen2_5_vl"))


def vlm_overrides(folder: Any, **extra: Any) -> dict[str, Any]:
    return {
        "reasoner.backend": "vlm",
        "reasoner.vlm.model": str(folder),
        "reasoner.vlm.dtype": "float32",
        "reasoner.vlm.max_new_tokens": 24,
        "reasoner.vlm.max_pixels": 28 * 28 * 64,
        "reasoner.vlm.local_files_only": True,
        **{f"reasoner.vlm.{k}": v for k, v in extra.items()},
    }


@pytest.fixture(scope="session")
def tiny_reasoner(tiny_vlm_dir: Any) -> VlmReasoner:
    return create_reasoner(load_config(None, vlm_overrides(tiny_vlm_dir)).reasoner)  # type: ignore[return-value]


def test_the_factory_loads_the_folder_through_the_auto_classes(tiny_reasoner):
    client = tiny_reasoner.client
    assert isinstance(client, LocalVlm)
    assert type(client.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert "vlm-json-2" in tiny_reasoner.name and "qwen2_5_vl" in tiny_reasoner.name


def test_the_chat_template_places_system_image_and_instruction(tiny_reasoner):
    client = tiny_reasoner.client
    text = client._template("SYSTEM TEXT", "USER TEXT")
    assert text.index("<|im_start|>system\nSYSTEM TEXT") < text.index("<|vision_start|><|image_pad|>")
    assert text.index("<|image_pad|>") < text.index("USER TEXT") < text.rindex("<|im_start|>assistant\n")
    inputs = client.encode(scene(HEIGHT, WIDTH), "SYSTEM TEXT", "USER TEXT")
    grid = inputs["image_grid_thw"][0].tolist()
    pads = int((inputs["input_ids"] == client.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum())
    assert pads == grid[0] * grid[1] * grid[2] // 4  # one token per 2×2 merged patch
    assert (grid[1] * 14, grid[2] * 14) == client.model_size(HEIGHT, WIDTH)


def test_random_output_goes_down_the_error_path_through_the_engine(tiny_reasoner, make_engine):
    from reasonseg_ros.types import Frame

    image = scene(HEIGHT, WIDTH)
    raw = tiny_reasoner.client.generate(image, PromptText("s", "u"))
    assert isinstance(raw, str)
    with pytest.raises(ModelOutputError) as caught:
        tiny_reasoner.reason(image, "the mug", memory_of())
    assert caught.value.raw_output is not None
    engine = make_engine(reasoner=tiny_reasoner)
    engine.submit_frame(Frame(image, 1, "camera"))
    result = engine.handle(Instruction("the mug"))
    assert not result.ok and result.error_kind == "unreadable_output"
    assert result.raw_output == caught.value.raw_output  # greedy decoding is reproducible
    assert result.round_index is None


def test_a_missing_model_folder_is_a_checkpoint_error(tmp_path):
    config = load_config(None, vlm_overrides(tmp_path / "nothing-here"))
    with pytest.raises(CheckpointError, match=r"reasoner\.vlm\.model"):
        create_reasoner(config.reasoner)


# --- query mode ----------------------------------------------------------------------------------


def test_candidates_lie_inside_and_around_the_box():
    box = np.array([40, 30, 100, 90], dtype=np.float32)
    points = candidate_points(box, 20, 0.2, (HEIGHT, WIDTH))
    assert len(points) == 20
    inside = (points[:, 0] > 40) & (points[:, 0] < 100) & (points[:, 1] > 30) & (points[:, 1] < 90)
    assert inside.sum() == 14 and (~inside).sum() == 6
    near_edge = candidate_points(np.array([0, 0, 60, 60], dtype=np.float32), 20, 0.2, (HEIGHT, WIDTH))
    assert len(near_edge) < 20 and (near_edge >= 0).all()  # ring points off the image are left out


def test_choose_points_keeps_the_surest_within_the_thresholds():
    points = np.arange(12, dtype=np.float32).reshape(6, 2)
    p_yes = np.array([0.9, 0.1, 0.55, 0.7, 0.3, 0.05])
    chosen, labels = choose_points(points, p_yes, positive=0.6, negative=0.35, max_points=2)
    assert labels.tolist() == [1, 1, 0, 0]
    np.testing.assert_array_equal(chosen, points[[0, 3, 5, 1]])


class ScriptedGenerate(LocalVlm):
    """The tiny model with its generate step replaced by a fixed answer; query scoring stays real."""

    answer = ""

    def generate(self, image: np.ndarray, prompt: PromptText) -> str:
        return self.answer


def sequences_in(kwargs: dict[str, Any]) -> int:
    """How many independent sequences one forward computes: batch rows, or the blocks of a packed row's mask."""
    mask = kwargs.get("attention_mask")
    if mask is None or mask.dim() != 4:
        return int(kwargs["input_ids"].shape[0])
    assert kwargs["input_ids"].shape[0] == 1
    total = int(kwargs["input_ids"].shape[1])
    sees = mask[0, 0, :, -total:] == 0
    # a sequence starts where a token may not see the token before it
    return 1 + int((~sees.diagonal(-1)).sum())


def test_query_mode_scores_all_candidates_in_one_forward_after_one_prefix_pass(tiny_reasoner):
    base = tiny_reasoner.client
    config = load_config(
        None,
        {
            "reasoner.vlm.point_mode": "query",
            "reasoner.vlm.query_candidates": 6,
            "reasoner.vlm.query_positive": 0.5,
            "reasoner.vlm.query_negative": 0.5,
            "reasoner.vlm.max_pixels": 28 * 28 * 64,
        },
    ).reasoner.vlm
    client = ScriptedGenerate(base.model, base.processor, config)
    height, width = client.model_size(HEIGHT, WIDTH)
    client.answer = json.dumps(
        {
            "targets": [
                {"label": "mug", "box": [10, 10, width // 2, height // 2]},
                {"label": "bowl", "box": [width // 2, 20, width - 10, height - 10]},
            ]
        }
    )
    calls: list[dict[str, Any]] = []

    def record(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        calls.append(
            {
                "sequences": sequences_in(kwargs),
                "image": kwargs.get("pixel_values") is not None,
                "cached": kwargs.get("past_key_values") is not None,
            }
        )

    handle = base.model.register_forward_hook(record, with_kwargs=True)
    image = scene(HEIGHT, WIDTH)
    try:
        output = VlmReasoner(client, config).reason(image, "the mug and the bowl", memory_of())
    finally:
        handle.remove()
    counts = [len(candidate_points(t.prompt.box, 6, config.query_margin, (HEIGHT, WIDTH))) for t in output.targets]
    assert len(counts) == 2 and all(counts)
    # one pass over image + instruction, then per target: its box sentence once, all its candidates in one forward
    assert calls[0] == {"sequences": 1, "image": True, "cached": False}
    assert calls[1:] == [
        call
        for count in counts
        for call in (
            {"sequences": 1, "image": False, "cached": True},
            {"sequences": count, "image": False, "cached": True},
        )
    ]
    for target in output.targets:
        assert target.prompt.box is not None and target.prompt.points is not None
        assert set(target.prompt.point_labels.tolist()) <= {0, 1}


GROUPS = [
    QueryGroup(
        "The mug is inside the box [4, 4, 60, 50]. Answer Yes or No: is this point on the mug?",
        ("[5, 5]", "[30, 20]", "[100, 7]", "[1000, 1000] or not?"),  # lengths differ: right padding must not matter
    ),
    QueryGroup("The bowl is inside the box [70, 10, 160, 100]. Is this point on the bowl?", ("[80, 20]",)),
]


def p_yes_of(client: LocalVlm, logits: Any) -> float:
    log_probs = torch.log_softmax(logits.float(), -1)
    yes = torch.logsumexp(log_probs[client._yes_ids], -1)
    no = torch.logsumexp(log_probs[client._no_ids], -1)
    return float(torch.sigmoid(yes - no))


def test_batched_scores_equal_unbatched_full_forwards_for_an_answer_given_as_text(tiny_reasoner):
    client = tiny_reasoner.client
    image = scene(HEIGHT, WIDTH, seed=3)
    prompt = PromptText("system text", "Instruction: the mug and the bowl")
    answer = '{"targets": [{"label": "mug", "box": [4, 4, 60, 50]}]}'
    batched = client.yes_probabilities(image, prompt, answer, GROUPS)
    head, between, tail = client.conversation(prompt)
    single = []
    for group in GROUPS:
        for question in group.questions:
            inputs = client._encode(image, f"{head}{answer}{between}{group.context} {question}{tail}")
            with torch.inference_mode():
                single.append(p_yes_of(client, client.model(**inputs).logits[0, -1]))
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert len(set(np.round(batched, 6))) > 1  # the questions are really told apart


def test_packed_and_batched_question_scoring_agree(tiny_reasoner, monkeypatch):
    """FlashAttention takes no 4D mask, so there the questions run as batch rows over a repeated cache."""
    client = tiny_reasoner.client
    image = scene(HEIGHT, WIDTH, seed=3)
    prompt = PromptText("system text", "Instruction: the mug and the bowl")
    answer = '{"targets": []}'
    assert client._packs_questions()
    packed = client.yes_probabilities(image, prompt, answer, GROUPS)
    monkeypatch.setattr(client, "_packs_questions", lambda: False)
    batched = client.yes_probabilities(image, prompt, answer, GROUPS)
    np.testing.assert_allclose(packed, batched, atol=1e-5)


def test_sliding_window_models_score_questions_as_batch_rows(tiny_vlm_dir, tmp_path):
    """Their cache keeps only the window, so one packed mask cannot fit every layer."""
    import shutil

    folder = tmp_path / "sliding"
    shutil.copytree(tiny_vlm_dir, folder)
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    text = config.get("text_config", config)
    text.update({"use_sliding_window": True, "sliding_window": 16, "max_window_layers": 0})
    text.pop("layer_types", None)
    config_file.write_text(json.dumps(config))
    client = create_reasoner(load_config(None, vlm_overrides(folder)).reasoner).client
    assert not client._packs_questions()
    prompt = PromptText("system text", "Instruction: the mug and the bowl")
    scores = client.yes_probabilities(scene(HEIGHT, WIDTH, seed=3), prompt, '{"targets": []}', GROUPS)
    assert scores.shape == (5,) and np.isfinite(scores).all()


def test_questions_continue_the_generation_cache_without_encoding_the_image_again(tiny_vlm_dir):
    from dataclasses import replace

    base = create_reasoner(load_config(None, vlm_overrides(tiny_vlm_dir)).reasoner).client
    client = LocalVlm(base.model, base.processor, replace(base.config, point_mode="query", max_new_tokens=9))
    image = scene(HEIGHT, WIDTH, seed=4)
    prompt = PromptText("system text", "Instruction: the mug")
    answer = client.generate(image, prompt)
    generated = client._generated
    assert generated is not None and generated.prompt is prompt
    calls: list[dict[str, Any]] = []

    def record(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        calls.append({"sequences": sequences_in(kwargs), "image": kwargs.get("pixel_values") is not None})

    handle = client.model.register_forward_hook(record, with_kwargs=True)
    try:
        batched = client.yes_probabilities(image, prompt, answer, GROUPS)
    finally:
        handle.remove()
    # the end of the answer + the next turn's header, then per target: its text, then its questions in one forward
    assert calls == [{"sequences": 1, "image": False}] + [
        call
        for group in GROUPS
        for call in ({"sequences": 1, "image": False}, {"sequences": len(group.questions), "image": False})
    ]
    # the reference: every question run from scratch on the exact token ids (image, prompt, generated answer)
    _head, between, tail = client.conversation(prompt)
    header = client._tokens(between)
    answer_ids = generated.new_ids if header[0] == generated.new_ids[-1] else [*generated.new_ids, header[0]]
    single = []
    for group in GROUPS:
        for question in group.questions:
            ids = (
                generated.inputs["input_ids"][0].tolist()
                + answer_ids
                + header[1:]
                + client._tokens(group.context)
                + client._tokens(f" {question}{tail}")
            )
            inputs = dict(generated.inputs)
            inputs["input_ids"] = torch.tensor([ids])
            inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
            if "mm_token_type_ids" in inputs:
                types = generated.inputs["mm_token_type_ids"]
                extra = torch.zeros((1, len(ids) - types.shape[1]), dtype=types.dtype)
                inputs["mm_token_type_ids"] = torch.cat([types, extra], dim=1)
            with torch.inference_mode():
                single.append(p_yes_of(client, client.model(**inputs).logits[0, -1]))
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert client._generated is None  # the cache is used once and released


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_tiny_model_runs_on_cuda_with_the_same_query_scores(tiny_vlm_dir, tiny_reasoner):
    config = load_config(None, vlm_overrides(tiny_vlm_dir, device="cuda")).reasoner
    gpu = create_reasoner(config)
    assert gpu.client.device.type == "cuda"
    image = scene(HEIGHT, WIDTH)
    prompt = PromptText("system", "Instruction: the mug")
    np.testing.assert_allclose(
        gpu.client.yes_probabilities(image, prompt, '{"targets": []}', GROUPS),
        tiny_reasoner.client.yes_probabilities(image, prompt, '{"targets": []}', GROUPS),
        atol=1e-3,
    )


def test_the_configured_pixel_bounds_drive_the_processor_resize(tiny_reasoner):
    from dataclasses import replace

    base = tiny_reasoner.client
    small = LocalVlm(base.model, base.processor, replace(base.config, max_pixels=28 * 28 * 8))
    grid = small.encode(scene(HEIGHT, WIDTH), "s", "u")["image_grid_thw"][0].tolist()
    assert (grid[1] * 14, grid[2] * 14) == small.model_size(HEIGHT, WIDTH)
    assert small.model_size(HEIGHT, WIDTH)[0] < base.model_size(HEIGHT, WIDTH)[0]
