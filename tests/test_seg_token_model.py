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

"""The [SEG]-token reasoner on a tiny model of the published structure (random weights, no download)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers", reason="the vlm extra is not installed")
torch = pytest.importorskip("torch", reason="the torch extra is not installed")

from reasonseg_ros.errors import ModelError  # noqa: E402
from reasonseg_ros.memory import MemoryView  # noqa: E402
from reasonseg_ros.reasoner.seg_token.answer import clean_reply, parse_answer, phrase_before  # noqa: E402
from reasonseg_ros.reasoner.seg_token.layouts import LAYOUTS  # noqa: E402
from reasonseg_ros.reasoner.seg_token.model import IMAGE_PLACEHOLDER  # noqa: E402
from reasonseg_ros.reasoner.seg_token.reasoner import SegTokenReasoner  # noqa: E402
from reasonseg_ros.types import Instruction  # noqa: E402
from tests.helpers import frame, scene  # noqa: E402
from tests.seg_token_tiny import tiny_model, tiny_tokenizer  # noqa: E402

ANSWER = "the mug:[SEG] and the plate:[SEG], no fork:[REJ]"
EMPTY = MemoryView("default", (), ())


@pytest.fixture(scope="module")
def reasoner() -> SegTokenReasoner:
    return SegTokenReasoner(tiny_model(224), tiny_tokenizer(), LAYOUTS["gsva"])


def reference_seg_rows(ids: list[int], token_id: int, num_patches: int) -> list[int]:
    """The references' rule, written as they write it.

    ``ids[:, 1:] == seg``, padded right by 1 and left by ``num_patches - 1`` for the expanded image
    placeholder.
    """
    mask = torch.tensor(ids)[None, 1:] == token_id
    mask = torch.cat([torch.zeros(1, num_patches - 1, dtype=torch.bool), mask, torch.zeros(1, 1, dtype=torch.bool)], 1)
    return torch.nonzero(mask[0]).flatten().tolist()


def test_teacher_forced_states_are_taken_where_the_next_id_is_seg(reasoner: SegTokenReasoner) -> None:
    image = scene(120, 160)
    output, decoded = reasoner.teacher_force(image, "find the mug, the plate and the fork", ANSWER, EMPTY)
    tok = tiny_tokenizer()
    full = [*decoded.ids]
    prompt_ids = reasoner.prompt_text("find the mug, the plate and the fork", EMPTY, ANSWER)
    from reasonseg_ros.reasoner.seg_token.conversation import tokenize_with_image

    ids = tokenize_with_image(tok, prompt_ids)
    assert ids[-len(full) - 1 : -1] == full
    seg, rej = tok.convert_tokens_to_ids(["[SEG]", "[REJ]"])
    expected = sorted(reference_seg_rows(ids, seg, 256) + reference_seg_rows(ids, rej, 256))
    assert decoded.positions == expected
    # independently: the token before each marker, moved by 255 for the expanded image
    image_at = ids.index(IMAGE_PLACEHOLDER)
    by_hand = [i - 1 + 255 for i, t in enumerate(ids) if t in (seg, rej) and i > image_at]
    assert decoded.positions == by_hand
    with torch.inference_mode():
        states = reasoner.model.last_hidden_states(ids, reasoner.model.preprocess(image))
    assert states.shape[0] == len(ids) - 1 + 256
    assert torch.allclose(decoded.states, states[expected])
    assert not torch.allclose(decoded.states, states[[p + 1 for p in expected]])
    assert [t.label for t in output.targets] == ["the mug", "the plate"]
    assert [r.phrase for r in output.rejections] == ["no fork"]
    for target in output.targets:
        assert target.prompt.embedding.shape == (1, 256)
    assert output.reply == "the mug and the plate, no fork"


def test_generation_states_match_teacher_forcing(reasoner: SegTokenReasoner) -> None:
    image = scene(90, 200, seed=3)
    tok = tiny_tokenizer()
    from reasonseg_ros.reasoner.seg_token.conversation import tokenize_with_image

    ids = tokenize_with_image(tok, reasoner.prompt_text("segment it", EMPTY))
    with torch.inference_mode():
        pixels = reasoner.model.preprocess(image)
        generation = reasoner.model.generate(ids, pixels, 6, None)
        forced = reasoner.model.last_hidden_states(ids + generation.new_ids, pixels)
    assert generation.prompt_length == len(ids) - 1 + 256
    assert generation.states.shape == (generation.prompt_length + 6 - 1, reasoner.model.hidden_size)
    assert torch.allclose(generation.states, forced[: generation.states.shape[0]], atol=1e-4)


def test_clip_336_expands_the_image_into_576_tokens() -> None:
    model = tiny_model(336, "mlp2x_gelu")
    assert model.num_patches == 576
    ids = [0, 5, IMAGE_PLACEHOLDER, 7, 400, 9]
    with torch.inference_mode():
        states = model.last_hidden_states(ids, model.preprocess(scene(50, 60)))
    assert states.shape[0] == len(ids) - 1 + 576
    from reasonseg_ros.reasoner.seg_token.model import seg_state_positions

    assert seg_state_positions(ids, 400, 576) == [3 + 575] == reference_seg_rows(ids, 400, 576)


def test_answer_parsing_keeps_order_and_phrases() -> None:
    tok = tiny_tokenizer()
    seg, rej = tok.convert_tokens_to_ids(["[SEG]", "[REJ]"])
    ids = tok(
        "Sure, the mug:[SEG] and the plate:[SEG], no fork:[REJ]. it is [SEG].", add_special_tokens=False
    ).input_ids
    markers = parse_answer(ids, seg, rej, lambda part: tok.decode(part))
    assert [(m.kind, m.phrase) for m in markers] == [
        ("seg", "the mug"),
        ("seg", "the plate"),
        ("rej", "no fork"),
        ("seg", None),
    ]
    assert [ids[m.index] for m in markers] == [seg, seg, rej, seg]
    assert phrase_before("Sure, it is ") is None
    assert clean_reply("Sure, it is [SEG].", ["[SEG]"]) == "Sure, it is."


def test_embeddings_reach_the_sam_decoder_and_masks_have_the_image_size(
    reasoner: SegTokenReasoner, make_engine: Any, tiny_sam: Any
) -> None:
    seen: list[Any] = []
    original = tiny_sam.mask_decoder.predict_masks

    def spy(**kwargs: Any) -> Any:
        seen.append(kwargs["sparse_prompt_embeddings"].clone())
        return original(**kwargs)

    class Forced:
        name = "teacher-forced tiny seg_token"

        def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> Any:
            return reasoner.teacher_force(image, text, ANSWER, memory)[0]

    engine = make_engine(reasoner=Forced())
    engine.submit_frame(frame(height=120, width=160))
    tiny_sam.mask_decoder.predict_masks = spy
    try:
        result = engine.handle(Instruction("the mug, the plate and the fork"))
    finally:
        del tiny_sam.mask_decoder.predict_masks
    assert result.ok, result.error
    expected = reasoner.teacher_force(scene(120, 160), "the mug, the plate and the fork", ANSWER, EMPTY)[0]
    sent = torch.cat([s[:, -1] for s in seen])
    want = torch.tensor(np.stack([t.prompt.embedding[0] for t in expected.targets]))
    assert sent.shape == (2, 256)
    assert torch.allclose(sent, want, atol=1e-5)
    assert result.masks is not None and result.masks.shape[1:] == (120, 160)
    assert [r.phrase for r in result.rejections][-1] == "no fork"


def test_end_to_end_round_through_the_engine(reasoner: SegTokenReasoner, make_engine: Any) -> None:
    forced_seg = ForcedTokens(reasoner, ["the", " mug", ":", "[SEG]", "</s>"])
    engine = make_engine(reasoner=forced_seg)
    engine.submit_frame(frame(height=100, width=140))
    result = engine.handle(Instruction("where is the mug?"))
    assert result.ok, result.error
    assert result.raw_output is not None and "[SEG]" in result.raw_output
    assert len(result.objects) + len(result.rejections) == 1
    second = engine.handle(Instruction("and now the plate"))
    assert second.ok and second.round_index == 1
    assert "where is the mug?" in forced_seg.prompts[-1]


def test_no_seg_and_no_rej_is_a_clean_error_round(reasoner: SegTokenReasoner, make_engine: Any) -> None:
    engine = make_engine(reasoner=ForcedTokens(reasoner, ["the", " mug", "</s>"]))
    engine.submit_frame(frame(height=80, width=80))
    result = engine.handle(Instruction("where is the mug?"))
    assert not result.ok
    assert result.error_kind == ModelError.kind
    assert "[SEG]" in result.error and "[REJ]" in result.error


class ForcedTokens:
    """The real reasoner, with the language model's greedy choice forced to a fixed answer."""

    def __init__(self, reasoner: SegTokenReasoner, tokens: list[str]) -> None:
        self.inner = reasoner
        self.tokens = tokens
        self.name = "forced tiny seg_token"
        self.prompts: list[str] = []

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> Any:
        tok = self.inner.tokenizer
        ids = [
            i
            for t in self.tokens
            for i in (
                tok.convert_tokens_to_ids([t])
                if t in ("[SEG]", "[REJ]", "</s>")
                else tok(t, add_special_tokens=False).input_ids
            )
        ]
        self.prompts.append(self.inner.prompt_text(text, memory))
        lm = self.inner.model.language_model
        step = {"n": 0}

        def force(module: Any, args: Any, output: Any) -> Any:
            logits = torch.full_like(output.logits, -1e4)
            logits[..., ids[min(step["n"], len(ids) - 1)]] = 0
            step["n"] += 1
            output.logits = logits
            return output

        handle = lm.register_forward_hook(force)
        try:
            return self.inner.reason(image, text, memory)
        finally:
            handle.remove()


def test_read_layout_sends_sasp_points_with_the_embedding(make_engine: Any, tiny_sam: Any) -> None:
    read = SegTokenReasoner(tiny_model(336, "mlp2x_gelu"), tiny_tokenizer(), LAYOUTS["read"])
    assert read.sasp is not None and read.sasp.num_points == 30
    output, decoded = read.teacher_force(scene(120, 160), "segment the mug", "the mug:[SEG]", EMPTY)
    (target,) = output.targets
    prompt = target.prompt
    assert prompt.points.shape == (30, 2) and prompt.point_labels.shape == (30,)
    assert (prompt.point_labels == 1).any() and set(prompt.point_labels.tolist()) <= {1, 0, -1}
    assert (prompt.points[:, 0] < 160).all() and (prompt.points[:, 1] < 120).all()
    assert decoded.image_states.shape == (576, read.model.hidden_size)
    seen: list[Any] = []
    original = tiny_sam.mask_decoder.predict_masks

    def spy(**kwargs: Any) -> Any:
        seen.append(kwargs["sparse_prompt_embeddings"].clone())
        return original(**kwargs)

    class Forced:
        name = "teacher-forced tiny READ"

        def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> Any:
            return output

    engine = make_engine(reasoner=Forced())
    engine.submit_frame(frame(height=120, width=160))
    tiny_sam.mask_decoder.predict_masks = spy
    try:
        result = engine.handle(Instruction("segment the mug"))
    finally:
        del tiny_sam.mask_decoder.predict_masks
    assert result.ok, result.error
    # 30 SasP points, SAM's padding point, then the [SEG] embedding
    assert seen[0].shape == (1, 32, 256)
    assert torch.allclose(seen[0][0, -1], torch.tensor(prompt.embedding[0]), atol=1e-5)


def test_segllm_memory_tokens_follow_the_image_and_shift_the_seg_positions() -> None:
    from reasonseg_ros.masks import encode_rle
    from reasonseg_ros.reasoner.seg_token.segllm import MemoryEncoder
    from reasonseg_ros.types import SegmentedObject

    model = tiny_model(224)
    model.memory_encoder = MemoryEncoder(model.hidden_size)
    try:
        with_memory = SegTokenReasoner(model, tiny_tokenizer(), LAYOUTS["gsva"])
        assert with_memory.use_memory and "SegLLM" in with_memory.name
        mask = np.zeros((60, 80), dtype=bool)
        mask[10:30, 20:50] = True
        remembered = SegmentedObject(1, "the mug", (20.0, 10.0, 50.0, 30.0), encode_rle(mask), 0.9, 600, 0, 0)
        memory = MemoryView("default", (remembered,), ())
        image = scene(60, 80)
        _, plain = with_memory.teacher_force(image, "the one left of it", "the plate:[SEG]", EMPTY)
        _, remembering = with_memory.teacher_force(image, "the one left of it", "the plate:[SEG]", memory)
        assert [p + 2 for p in plain.positions] == remembering.positions  # one mask and one box token
        tokens = model.memory_encoder(model, image, [remembered])
        assert tokens.shape == (2, model.hidden_size)
        box = torch.tensor([20 / 80, 10 / 60, 50 / 80, 30 / 60])
        assert torch.allclose(tokens[1], model.memory_encoder.box_proj(box), atol=1e-6)
    finally:
        model.memory_encoder = None


def test_instruction_format_wraps_only_the_current_instruction() -> None:
    from reasonseg_ros.config import SegTokenConfig
    from reasonseg_ros.memory import MemoryRound

    wrapped = SegTokenReasoner(
        tiny_model(224),
        tiny_tokenizer(),
        LAYOUTS["lisa"],
        SegTokenConfig(instruction_format="{text} Please output segmentation mask."),
    )
    earlier = MemoryRound(0, "the mug", "Sure, it is.", (1,), (), 0)
    text = wrapped.prompt_text("the plate", MemoryView("default", (), (earlier,)))
    assert text.endswith("USER: the plate Please output segmentation mask. ASSISTANT:")
    assert "USER: <im_start><image><im_end>\nthe mug ASSISTANT: Sure, it is.</s>" in text
    assert text.count("<image>") == 1


def test_generated_and_teacher_forced_answers_give_the_same_prompts(reasoner: SegTokenReasoner) -> None:
    image = scene(100, 140, seed=5)
    forced = ForcedTokens(reasoner, [" the", " mug", ":", "[SEG]", " and", " no", " fork", ":", "[REJ]", "</s>"])
    generated = forced.reason(image, "the mug and the fork", EMPTY)
    taught, _ = reasoner.teacher_force(image, "the mug and the fork", "the mug:[SEG] and no fork:[REJ]", EMPTY)
    assert [t.label for t in generated.targets] == [t.label for t in taught.targets] == ["the mug"]
    assert [r.phrase for r in generated.rejections] == ["no fork"]
    assert np.allclose(generated.targets[0].prompt.embedding, taught.targets[0].prompt.embedding, atol=1e-4)


def test_llama_2_template_matches_llava() -> None:
    from reasonseg_ros.reasoner.seg_token.conversation import LLAMA2_SYSTEM, Turn, render

    text = render("llava_llama_2", [Turn("<image>\nq1", "a1"), Turn("q2", None)])
    assert text == f"[INST] <<SYS>>\n{LLAMA2_SYSTEM}\n<</SYS>>\n\n<image>\nq1 [/INST] a1 </s><s>[INST] q2 [/INST]"
    assert render("llava_v1", [Turn("q", "a")]).endswith("USER: q ASSISTANT: a</s>")


def test_assembly_matches_transformers_own_llava() -> None:
    """Same weights in ``LlavaForConditionalGeneration`` (layer -2, CLS dropped, 2-layer GELU projector)."""
    import transformers

    from tests.seg_token_tiny import tiny_configs

    model = tiny_model(336, "mlp2x_gelu")
    vision, text = tiny_configs(336)
    image_token = 403  # any id: transformers' Llava splices features where the input holds it
    config = transformers.LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token,
        projector_hidden_act="gelu",
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    llava = transformers.LlavaForConditionalGeneration(config).eval()
    ours = model.state_dict()
    renamed = {}
    for key in llava.state_dict():
        source = (
            key.replace("model.vision_tower.", "vision_tower.")
            .replace("model.multi_modal_projector.linear_1.", "mm_projector.0.")
            .replace("model.multi_modal_projector.linear_2.", "mm_projector.2.")
            .replace("model.language_model.", "language_model.model.")
            .replace("lm_head.", "language_model.lm_head.")
        )
        renamed[key] = ours[source]
    llava.load_state_dict(renamed, strict=True)
    ids = [0, 5, 9, IMAGE_PLACEHOLDER, 7, 400, 12]
    pixels = model.preprocess(scene(70, 90))
    expanded = ids[:3] + [image_token] * model.num_patches + ids[4:]
    with torch.inference_mode():
        theirs = llava(input_ids=torch.tensor([expanded]), pixel_values=pixels, output_hidden_states=True)
        mine = model.last_hidden_states(ids, pixels)
    assert torch.allclose(mine, theirs.hidden_states[-1][0], atol=1e-5)


def test_a_round_past_its_deadline_fails_instead_of_returning_a_truncated_answer(reasoner: SegTokenReasoner) -> None:
    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    reasoner.deadline_s = 1e-9  # reasoner.deadline_s, as create_reasoner hands it over
    try:
        with pytest.raises(ModelError, match="deadline of 1e-09 s"):
            reasoner.reason(image, "the mug", EMPTY)
        for roomy in (None, 60.0):  # the same round is not refused for time (the random model may answer nonsense)
            reasoner.deadline_s = roomy
            try:
                reasoner.reason(image, "the mug", EMPTY)
            except ModelError as exc:
                assert "deadline" not in str(exc)
    finally:
        reasoner.deadline_s = None


def test_create_reasoner_hands_the_round_deadline_to_seg_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonseg_ros.config import ReasonerConfig
    from reasonseg_ros.reasoner import create_reasoner

    seen = {}
    monkeypatch.setattr(SegTokenReasoner, "from_config", classmethod(lambda cls, s, d=None: seen.setdefault("d", d)))
    create_reasoner(ReasonerConfig(backend="seg_token", deadline_s=7.5))
    assert seen["d"] == 7.5
