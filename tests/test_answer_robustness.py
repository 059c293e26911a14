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

"""Model answers that broke the VLM answer parser (issue 15): prose, citations before the JSON, deep nesting."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from vlm_helpers import memory_of

from reasonseg_ros.errors import ModelOutputError
from reasonseg_ros.limits import RESULT_TEXT_BYTES, cap_text, quote
from reasonseg_ros.reasoner.vlm.answer import read_answer
from reasonseg_ros.reasoner.vlm.coords import CoordinateFrame

FRAME = CoordinateFrame("absolute", (100, 200))


@pytest.mark.parametrize(
    "raw",
    [
        "I could not find a red mug in the image.",
        "I couldn't find any red mug here.",
        "There is no red mug on the table.",
        "Sorry, the red mug is not visible in this picture.",
    ],
)
def test_prose_that_says_the_object_is_absent_is_a_rejection_with_the_models_words(raw):
    out = read_answer(raw, FRAME, memory_of(), "the red mug")
    assert out.targets == ()
    (rejection,) = out.rejections
    assert rejection.phrase == "the red mug" and rejection.reason == raw
    assert out.raw_output == raw and any("prose" in w for w in out.warnings)


def test_other_prose_stays_unreadable_with_the_raw_text():
    with pytest.raises(ModelOutputError) as caught:
        read_answer("The mug is on the left, next to the plate.", FRAME, memory_of(), "the mug")
    assert caught.value.raw_output == "The mug is on the left, next to the plate."


def test_a_citation_in_prose_before_the_json_does_not_hide_the_answer():
    raw = 'As shown in [1], the mug is here: {"targets": [{"label": "mug", "box": [10, 20, 50, 60]}], "reply": "ok"}'
    out = read_answer(raw, FRAME, memory_of(), "the mug")
    (target,) = out.targets
    assert target.label == "mug" and out.reply == "ok" and not out.rejections
    np.testing.assert_allclose(target.prompt.box, [10, 20, 50, 60])


def test_a_list_of_numbers_before_a_qwen_list_of_boxes_is_skipped():
    raw = 'Steps [1, 2]: [{"bbox_2d": [10, 20, 50, 60], "label": "mug"}]'
    (target,) = read_answer(raw, FRAME, memory_of(), "the mug").targets
    np.testing.assert_allclose(target.prompt.box, [10, 20, 50, 60])


@pytest.mark.parametrize("depth", [50, 5000, 200_000])
def test_deeply_nested_brackets_are_unreadable_output_not_a_recursion_error(depth):
    raw = "[" * depth + "]" * depth
    assert depth < 1000 or depth > sys.getrecursionlimit()  # the deep cases would overflow a recursive reader
    with pytest.raises(ModelOutputError) as caught:
        read_answer(raw, FRAME, memory_of(), "the mug")
    assert caught.value.raw_output == raw  # kept here; the engine caps it in the result
    assert len(str(caught.value)) < 600


def test_deep_nesting_before_a_real_answer_does_not_hide_it():
    raw = "[" * 3000 + "]" * 3000 + ' {"targets": [{"label": "mug", "box": [1, 1, 9, 9]}]}'
    assert read_answer(raw, FRAME, memory_of(), "the mug").targets[0].label == "mug"


def test_cap_text_keeps_short_texts_and_marks_long_ones():
    assert cap_text("short") == "short" and cap_text(None) is None
    long = "é" * 5000  # 10000 bytes
    capped = cap_text(long)
    assert capped.endswith("… truncated, 10000 bytes")
    assert len(capped.split("…")[0].encode()) <= RESULT_TEXT_BYTES
    assert len(quote("x" * 10**6)) < 300 and "1000000 characters" in quote("x" * 10**6)
