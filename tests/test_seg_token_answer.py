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

"""Labels read from every answer form GSVA is trained and validated on, and none from LISA / READ fillers."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers", reason="the vlm extra is not installed")

from reasonseg_ros.reasoner.seg_token.answer import parse_answer, phrase_before
from tests.seg_token_tiny import tiny_tokenizer

# GSVA's training answers (ANSWER_LIST_MODE4_START / _TEMPLATE / _END in LeapLabTHU/GSVA
# model/llava/constants.py), written out here as GSVA assembles them: opening + " " + parts joined by ", " + "."
OPENINGS = ["The segmentation results are", "Sure, they are", "Sure,", "Sure,", "Sure,"]
FORMS = [
    "{c} [SEG]",
    "{c}:[SEG]",
    "the mask of {c} is [SEG]",
    "the segmentation of {c} is [SEG]",
    "the referred {c} is [SEG]",
]
PHRASES = ["the red mug", "man in blue, left", "fork"]
PRESENT = [True, True, False]


def gsva_answer(form: int) -> str:
    parts = [
        FORMS[form].format(c=c).replace("SEG", "SEG" if present else "REJ")
        for c, present in zip(PHRASES, PRESENT, strict=True)
    ]
    return OPENINGS[form] + " " + ", ".join(parts) + "."


def markers_of(text: str) -> list[tuple[str, str | None]]:
    tok = tiny_tokenizer()
    seg, rej = tok.convert_tokens_to_ids(["[SEG]", "[REJ]"])
    ids = tok(text, add_special_tokens=False).input_ids
    return [(m.kind, m.phrase) for m in parse_answer(ids, seg, rej, lambda part: tok.decode(part))]


@pytest.mark.parametrize("form", range(len(FORMS)))
def test_every_gsva_training_form_keeps_its_labels(form: int) -> None:
    assert markers_of(gsva_answer(form)) == [
        ("seg", "the red mug"),
        ("seg", "man in blue, left"),
        ("rej", "fork"),
    ]


def test_gsva_validation_form_keeps_its_labels() -> None:
    # ValDataset: "Sure," + ", ".join(f"{t}:[SEG]" or f"{t}:[REJ]") + "." (no space after "Sure,")
    answer = "Sure," + ", ".join(["the red mug:[SEG]", "man in blue, left:[SEG]", "fork:[REJ]"]) + "."
    assert markers_of(answer) == [("seg", "the red mug"), ("seg", "man in blue, left"), ("rej", "fork")]


@pytest.mark.parametrize(
    "answer",
    [
        "Sure, it is [SEG].",  # LISA
        "It is [SEG].",
        "Sure, [SEG].",
        "[SEG].",
        "Sure, the segmentation result is [SEG].",  # READ's ReasonSeg answer
        "Sure, here it is [SEG].",
    ],
)
def test_lisa_and_read_fillers_name_no_phrase(answer: str) -> None:
    assert markers_of(answer) == [("seg", None)]


def test_text_before_the_last_sentence_is_not_part_of_the_phrase() -> None:
    assert phrase_before("There is a kitchen. The mug:") == "The mug"
    assert phrase_before(", and the plate:") == "the plate"


# The question each reference evaluation puts after "<image>\n" for a ReasonSeg sentence (LISA
# utils/dataset.py ValDataset; READ dataloaders/test_dataset.py TestReasoningDataset) and, for GSVA, its
# multi-target training question (SHORT_QUESTION_LIST_MODE4), written out from the reference code.
REFERENCE_QUESTIONS = {
    "config/seg_token_lisa7b.yaml": " {sent} Please output segmentation mask.",
    "config/seg_token_read7b.yaml": "{sent} Please output segmentation mask.",
    "config/seg_token_gsva7b.yaml": "What are {sent} in this image? Please output segmentation masks.",
}


@pytest.mark.parametrize("path", sorted(REFERENCE_QUESTIONS))
def test_each_seg_token_config_asks_with_its_models_own_question(path: str) -> None:
    from reasonseg_ros.config import load_config
    from reasonseg_ros.memory import MemoryView
    from reasonseg_ros.reasoner.seg_token.layouts import LAYOUTS
    from reasonseg_ros.reasoner.seg_token.reasoner import SegTokenReasoner
    from tests.seg_token_tiny import tiny_model

    settings = load_config(path).reasoner.seg_token
    assert settings.template == "llava_v1"  # conv_type of LISA / GSVA / READ scripts
    reasoner = SegTokenReasoner(
        tiny_model(224), tiny_tokenizer(), LAYOUTS[settings.layout], settings, settings.template
    )
    sent = "the thing used to drink coffee"
    text = reasoner.prompt_text(sent, MemoryView("default", (), ()))
    question = REFERENCE_QUESTIONS[path].format(sent=sent)
    assert text.endswith(f"USER: <im_start><image><im_end>\n{question} ASSISTANT:")
