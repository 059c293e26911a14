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


"""``replay --protocol reference``.

Each sample posed and its ground-truth answer teacher-forced as LISA, GSVA and READ's own evaluation code
does, with GSVA's [SEG]/[REJ] decision at each marker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("transformers", reason="the vlm extra is not installed")
torch = pytest.importorskip("torch", reason="the torch extra is not installed")

from reasonseg_ros.reasoner.seg_token import reasoner as reasoner_module  # noqa: E402
from reasonseg_ros.reasoner.seg_token.conversation import VICUNA_SYSTEM  # noqa: E402
from reasonseg_ros.reasoner.seg_token.layouts import LAYOUTS  # noqa: E402
from reasonseg_ros.reasoner.seg_token.reasoner import SegTokenReasoner  # noqa: E402
from reasonseg_ros.reasoner.seg_token.reference import reference_round  # noqa: E402
from tests.helpers import scene  # noqa: E402
from tests.seg_token_tiny import tiny_model, tiny_tokenizer  # noqa: E402

TINY = {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True}

# What each reference's evaluation builds, written out from its code (LISA utils/dataset.py ValDataset,
# READ dataloaders/test_dataset.py TestReasoningDataset, GSVA data/dataset.py ValDataset):
# (layout, phrase, present, referring, is_sentence) -> (user message after "<image>\n", answer)
CASES = [
    ("lisa", "What holds coffee?", True, False, True, " What holds coffee? Please output segmentation mask.", "[SEG]."),
    (
        "lisa",
        "Left Mug",
        True,
        True,
        False,
        " What is left mug in this image? Please output segmentation mask.",
        "[SEG].",
    ),
    (
        "read",
        "What holds coffee?",
        True,
        False,
        True,
        "What holds coffee? Please output segmentation mask.",
        "Sure, the segmentation result is [SEG].",
    ),
    (
        "read",
        "Mug",
        True,
        False,
        False,
        "What is mug in this image? Please output segmentation mask.",
        "Sure, the segmentation result is [SEG].",
    ),
    ("gsva", "What holds coffee?", True, False, True, " What holds coffee? Please output segmentation mask.", "[SEG]"),
    (
        "gsva",
        "The Dog.",
        False,
        True,
        False,
        " What are the dogin this image? Please output segmentation masks.",
        "Sure,the dog:[REJ].",
    ),
    (
        "gsva",
        "cup and plate",
        True,
        True,
        False,
        " What are cup and platein this image? Please output segmentation masks.",
        "Sure,cup and plate:[SEG].",
    ),
]


@pytest.mark.parametrize(("layout", "phrase", "present", "referring", "sentence", "question", "answer"), CASES)
def test_each_reference_poses_the_sample_as_its_code_does(
    layout: str, phrase: str, present: bool, referring: bool, sentence: bool, question: str, answer: str
) -> None:
    sample = reference_round(layout, phrase, present, referring, sentence)
    assert (sample.question, sample.answer) == (question, answer)


def test_gsva_asks_all_of_an_images_expressions_in_one_question() -> None:
    group = (("Man in red.", True), ("the dog", False), ("cup", True))
    sample = reference_round("gsva", "the dog", False, True, group=group, position=1)
    assert sample.question == " What are man in red, the dog, cupin this image? Please output segmentation masks."
    assert sample.answer == "Sure,man in red:[SEG], the dog:[REJ], cup:[SEG]."
    assert sample.marker == 1


def test_reasonseg_scores_only_an_images_first_text() -> None:
    assert reference_round("lisa", "x", True, False, True, first=True).scored
    assert not reference_round("read", "x", True, False, True, first=False).scored
    assert reference_round("gsva", "x", False, True, False, first=False).scored  # RefCOCO scores every sentence


@pytest.fixture(scope="module")
def gsva() -> SegTokenReasoner:
    return SegTokenReasoner(tiny_model(224), tiny_tokenizer(), LAYOUTS["gsva"])


class ForcedArgmax:
    """lm_head's output replaced so that the argmax is ``token`` everywhere (the rest of the model runs)."""

    def __init__(self, reasoner: SegTokenReasoner, token: int) -> None:
        self.head = reasoner.model.language_model.lm_head
        self.token = token

    def __enter__(self) -> ForcedArgmax:
        def hook(module: Any, args: Any, output: Any) -> Any:
            forced = torch.full_like(output, -1e4)
            forced[..., self.token] = 0
            return forced

        self.handle = self.head.register_forward_hook(hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.handle.remove()


def test_gsva_prompt_is_its_validation_conversation(gsva: SegTokenReasoner, monkeypatch: pytest.MonkeyPatch) -> None:
    texts: list[str] = []
    original = reasoner_module.tokenize_with_image
    monkeypatch.setattr(
        reasoner_module, "tokenize_with_image", lambda tok, text: texts.append(text) or original(tok, text)
    )
    gsva.reference(scene(60, 80), reference_round("gsva", "The Dog.", False, True))
    assert texts[-1] == (
        VICUNA_SYSTEM + " USER: <im_start><image><im_end>\n What are the dogin this image? Please output "
        "segmentation masks. ASSISTANT: Sure,the dog:[REJ].</s>"
    )


def test_gsva_decides_each_marker_by_the_argmax_there(gsva: SegTokenReasoner) -> None:
    image = scene(60, 80, seed=4)
    present = reference_round("gsva", "cup", True, True)
    absent = reference_round("gsva", "the dog", False, True)
    seg, rej = gsva.seg_id, gsva.rej_id
    # argmax [SEG]: a present target is kept; an absent one is predicted present (GSVA: [REJ] only if argmax is [REJ])
    with ForcedArgmax(gsva, seg):
        kept, wrongly = gsva.reference(image, present), gsva.reference(image, absent)
    assert len(kept.targets) == 1 and not kept.rejections
    assert len(wrongly.targets) == 1 and not wrongly.rejections
    # argmax [REJ]: a present target is predicted absent, but its mask is still scored (eval_gres)
    with ForcedArgmax(gsva, rej):
        missed, right = gsva.reference(image, present), gsva.reference(image, absent)
    assert len(missed.targets) == 1 and [r.phrase for r in missed.rejections] == ["cup"]
    assert not right.targets and [r.phrase for r in right.rejections] == ["the dog"]
    # argmax anything else: a ground-truth [SEG] becomes [REJ], a ground-truth [REJ] becomes [SEG]
    with ForcedArgmax(gsva, 5):
        other_present, other_absent = gsva.reference(image, present), gsva.reference(image, absent)
    assert other_present.rejections and other_absent.targets and not other_absent.rejections


def test_gsva_masks_come_from_the_forward_with_every_rej_as_seg(gsva: SegTokenReasoner) -> None:
    from reasonseg_ros.reasoner.seg_token.conversation import Turn, first_user_message, render, tokenize_with_image

    image = scene(60, 80, seed=6)
    # the state before a marker sees the markers written before it: the [REJ] -> [SEG] rewrite shows on the second
    sample = reference_round("gsva", "the cup", True, True, group=(("the dog", False), ("the cup", True)), position=1)
    with ForcedArgmax(gsva, gsva.seg_id):
        output = gsva.reference(image, sample)
    turn = first_user_message(sample.question, True)

    def embedding_before_last_marker(answer: str) -> np.ndarray:
        ids = tokenize_with_image(gsva.tokenizer, render("llava_v1", [Turn(turn, answer)]))
        row = len(ids) - 1 - ids[::-1].index(gsva.seg_id) - 1 + 255  # the state before the last [SEG]
        with torch.inference_mode():
            states = gsva.model.last_hidden_states(ids, gsva.model.preprocess(image))
            return gsva.model.project(states[row]).numpy()

    rewritten = embedding_before_last_marker(sample.answer.replace("[REJ]", "[SEG]"))
    as_given = embedding_before_last_marker(sample.answer)
    assert [t.label for t in output.targets] == ["the cup"]
    assert np.allclose(output.targets[0].prompt.embedding[0], rewritten, atol=1e-5)
    assert not np.allclose(rewritten, as_given, atol=1e-3)


def test_lisa_and_read_take_the_teacher_forced_seg_state() -> None:
    lisa = SegTokenReasoner(tiny_model(224), tiny_tokenizer(), LAYOUTS["lisa"])
    output = lisa.reference(scene(60, 80), reference_round("lisa", "What holds coffee?", True, False, True))
    assert [t.label for t in output.targets] == ["What holds coffee?"] and not output.rejections
    assert output.raw_output is not None and output.raw_output.strip() == "[SEG]."


def grefcoco_bag(tmp_path: Path) -> Path:
    from reasonseg_ros.eval.convert import convert
    from tests.test_eval_convert import coco_instances

    src = tmp_path / "grefcoco"
    src.mkdir()
    coco_instances(src)
    grefs = [
        {"ref_id": 1, "ann_id": [11], "image_id": 1, "split": "val", "sentences": [{"sent": "the cup", "sent_id": 1}]},
        {
            "ref_id": 2,
            "ann_id": [-1],
            "image_id": 1,
            "split": "val",
            "no_target": True,
            "sentences": [{"sent": "the dog", "sent_id": 2}],
        },
    ]
    (src / "grefs(unc).json").write_text(json.dumps(grefs))
    return convert("grefcoco", src, tmp_path / "bag", split="val")[0]


@pytest.mark.parametrize("argmax", ["[SEG]", "[REJ]"])
def test_replay_reference_protocol_scores_as_gsvas_eval_gres(
    argmax: str, gsva: SegTokenReasoner, make_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reasonseg_ros.config import load_config
    from reasonseg_ros.engine import Engine
    from reasonseg_ros.eval.replay import ReplayOptions, replay

    bag = grefcoco_bag(tmp_path)
    engine = make_engine(reasoner=gsva)
    monkeypatch.setattr(Engine, "from_config", classmethod(lambda cls, config: engine))
    config = load_config(None, {"reasoner.backend": "seg_token", **TINY})
    with ForcedArgmax(gsva, gsva.tokenizer.convert_tokens_to_ids(argmax)):
        run = replay(bag, config, tmp_path / "out", ReplayOptions(progress=False, protocol="reference"))
    assert run.metrics["protocol"] == run.run["protocol"] == "reference"
    assert "reference protocol" in run.run["reasoner"]
    cup, dog = run.results[0], run.results[1]
    # one conversation per image with all its expressions, as GSVA's ValDataset; each instruction takes its marker
    assert cup["raw_output"].strip() == dog["raw_output"].strip() == "Sure,the cup:[SEG], the dog:[REJ]."
    assert [o["label"] for o in cup["objects"]] == ["the cup"]
    # the present target's mask is scored either way; N-acc / T-acc follow the predicted marker
    assert len(cup["objects"]) == 1
    if argmax == "[SEG]":
        assert (run.metrics["T-acc"], run.metrics["N-acc"]) == (1.0, 0.0)
        assert [o["label"] for o in dog["objects"]] == ["the dog"]  # its own marker, not the first
    else:
        assert (run.metrics["T-acc"], run.metrics["N-acc"]) == (0.0, 1.0)
        assert not dog["objects"] and run.samples[1].predicted == []


def test_reference_protocol_needs_a_seg_token_reasoner(tmp_path: Path) -> None:
    from reasonseg_ros.config import load_config
    from reasonseg_ros.eval.replay import ReplayOptions, replay

    bag = grefcoco_bag(tmp_path)
    config = load_config(None, {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True})
    with pytest.raises(ValueError, match="needs a seg_token reasoner"):
        replay(bag, config, tmp_path / "out", ReplayOptions(progress=False, protocol="reference"))


def test_replay_reference_protocol_scores_only_the_first_reasonseg_text(
    make_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reasonseg_ros.config import load_config
    from reasonseg_ros.engine import Engine
    from reasonseg_ros.eval.convert import convert
    from reasonseg_ros.eval.replay import ReplayOptions, replay
    from tests.test_eval_convert import save_image

    split = tmp_path / "ReasonSeg" / "val"
    save_image(split / "kitchen.jpg")
    square = [[10, 10], [30, 10], [30, 30], [10, 30]]
    annotation = {
        "text": ["what holds coffee?", "the cup"],
        "is_sentence": True,
        "shapes": [{"label": "target", "points": square}],
    }
    (split / "kitchen.json").write_text(json.dumps(annotation))
    bag = convert("reasonseg", tmp_path / "ReasonSeg", tmp_path / "bag", split="val")[0]
    read = SegTokenReasoner(tiny_model(336, "mlp2x_gelu"), tiny_tokenizer(), LAYOUTS["read"])
    monkeypatch.setattr(Engine, "from_config", classmethod(lambda cls, config: make_engine(reasoner=read)))
    config = load_config(None, {"reasoner.backend": "seg_token", **TINY})
    run = replay(bag, config, tmp_path / "out", ReplayOptions(progress=False, protocol="reference"))
    assert run.metrics["samples"] == 1 and len(run.results) == 2  # both run, the first scored (READ / LISA's val)
    assert run.results[0]["raw_output"].strip() == "Sure, the segmentation result is [SEG]."
    both = replay(bag, config, tmp_path / "both", ReplayOptions(progress=False, protocol="both"))
    assert both.metrics["samples"] == 2 and both.metrics["protocol"] == "free" and both.run["protocol"] == "both"
    assert both.metrics["reference"]["samples"] == 1 and both.metrics["reference"]["protocol"] == "reference"
    assert (tmp_path / "both" / "reference" / "output_bag").is_dir()
    from reasonseg_ros.eval.report import render_markdown

    report = render_markdown(both, [])
    assert "| free |" in report and "| reference (ground-truth answer teacher-forced) |" in report


def test_cli_protocol_flag_reaches_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reasonseg_ros.cli import main

    bag = grefcoco_bag(tmp_path)
    tiny = ["--set", "segmenter.model_type=vit_tiny", "--set", "segmenter.random_weights=true"]
    assert main(["replay", str(bag), "--out", str(tmp_path / "out"), "--protocol", "both", "--quiet", *tiny]) == 2
    assert "--protocol both needs a seg_token reasoner" in capsys.readouterr().err


def test_gsva_decision_follows_the_models_own_logits(gsva: SegTokenReasoner) -> None:
    from reasonseg_ros.reasoner.seg_token.conversation import Turn, first_user_message, render, tokenize_with_image

    image = scene(60, 80, seed=9)
    for present in (True, False):
        sample = reference_round("gsva", "the cup", present, True)
        output = gsva.reference(image, sample)
        ids = tokenize_with_image(
            gsva.tokenizer, render("llava_v1", [Turn(first_user_message(sample.question, True), sample.answer)])
        )
        marker = gsva.seg_id if present else gsva.rej_id
        with torch.inference_mode():
            embeds, _ = gsva.model.embed_inputs(ids, gsva.model.encode_image(gsva.model.preprocess(image)))
            logits = gsva.model.language_model(inputs_embeds=embeds).logits[0]
        argmax = int(logits[ids.index(marker) - 1 + 255].argmax())  # the logits that predict the marker
        predicted_rej = (argmax != gsva.seg_id) if present else (argmax == gsva.rej_id)
        assert bool(output.rejections) == predicted_rej
