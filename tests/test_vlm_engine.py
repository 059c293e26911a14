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

"""Three turns of dialogue through the Engine with a VLM reasoner whose model answers from a script.

The test double sits at the generate boundary only: prompt building, answer
parsing, coordinate mapping, memory and SAM (tiny, random weights) are real.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from helpers import frame

from reasonseg_ros.config import VlmConfig
from reasonseg_ros.reasoner.vlm import VlmReasoner
from reasonseg_ros.reasoner.vlm.coords import smart_resize
from reasonseg_ros.reasoner.vlm.prompt import PromptText
from reasonseg_ros.types import Instruction

pytest.importorskip("torch", reason="the torch extra is not installed")

Script = Callable[[PromptText], str]


class ScriptedModel:
    """Answers each generate call from the next entry of a script (a function of the prompt)."""

    name = "scripted VLM (test double)"

    def __init__(self, script: Sequence[Script], config: VlmConfig) -> None:
        self.script = list(script)
        self.config = config
        self.prompts: list[PromptText] = []

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        return smart_resize(height, width, 28, self.config.min_pixels, self.config.max_pixels)

    def generate(self, image: np.ndarray, prompt: PromptText) -> str:
        self.prompts.append(prompt)
        return self.script.pop(0)(prompt)

    def yes_probabilities(self, image: np.ndarray, prefix: PromptText, groups: Sequence[Any]) -> np.ndarray:
        raise AssertionError("direct mode asks no questions")


def test_three_turns_multi_target_rejection_and_memory_reference(make_engine):
    config = VlmConfig(keep_prompt=True)
    height, width = 240, 320
    model_h, model_w = smart_resize(height, width, 28, config.min_pixels, config.max_pixels)
    sx, sy = model_w / width, model_h / height  # Qwen2.5-VL answers in pixels of the resized image

    def box(x1: float, y1: float, x2: float, y2: float) -> list[int]:
        return [round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy)]

    def all_mugs(prompt: PromptText) -> str:
        assert "Remembered objects: none." in prompt.user
        answer = {
            "targets": [
                {"label": "mug", "box": box(40, 40, 120, 160), "points": [[round(80 * sx), round(100 * sy)]]},
                {"label": "mug", "box": box(180, 40, 280, 170), "confidence": 0.7},
            ],
            "rejections": [],
            "reply": "I see two mugs.",
        }
        return f"```json\n{json.dumps(answer)}\n```"

    def red_cup(prompt: PromptText) -> str:
        assert prompt.listed_ids == (2, 1)
        return "{'targets': [], 'rejections': [{'phrase': 'the red cup', 'reason': 'no red cup'}], 'reply': 'No.'}"

    def first_again_and_left_of_second(prompt: PromptText) -> str:
        # the model reads the memory block: ids with boxes in its own coordinates
        first, second = sorted(prompt.listed_ids)
        stored = engine.memory.view("default").get(second).box  # SAM's mask box, in original pixels
        assert f'id {second}: "mug", box [{", ".join(map(str, box(*stored)))}], round 0' in prompt.user
        answer = {
            "targets": [
                {"label": "mug", "object_id": first},
                {"label": "spoon", "box": box(140, 60, 175, 150), "object_id": None},
                {"label": "ghost", "object_id": 99},
            ],
            "reply": "The first mug again, and the spoon left of the second one.",
        }
        return json.dumps(answer) + "\nDone."

    model = ScriptedModel([all_mugs, red_cup, first_again_and_left_of_second], config)
    # the tiny random SAM's masks overlap at random: re-identification (tested in test_engine_tracking.py) off
    engine = make_engine({"memory.reidentify_iou": None}, reasoner=VlmReasoner(model, config))
    engine.submit_frame(frame(stamp_ns=1, height=height, width=width))

    first = engine.handle(Instruction("segment all the mugs"))
    assert first.ok, first.error
    assert [(o.object_id, o.label) for o in first.objects] == [(1, "mug"), (2, "mug")]
    assert first.reply == "I see two mugs." and not first.rejections
    assert first.prompt is not None and "[user]" in first.prompt and first.raw_output.startswith("```json")

    second = engine.handle(Instruction("and the red cup?"))
    assert second.ok, second.error
    assert second.objects == [] and [(r.phrase, r.reason) for r in second.rejections] == [("the red cup", "no red cup")]

    third = engine.handle(Instruction("the first mug again, and what is left of the second one"))
    assert third.ok, third.error
    assert [(o.object_id, o.label) for o in third.objects] == [(1, "mug"), (3, "spoon")]
    assert [r.phrase for r in third.rejections] == ["ghost"]
    assert any("object 99 is not remembered" in w for w in third.warnings)
    spoon = third.objects[1]
    assert spoon.round_index == 2 and third.objects[0].round_index == 2  # the re-segmented mug moved to this round
    remembered = {o.object_id: o.round_index for o in engine.memory.view("default").objects}
    assert remembered == {1: 2, 2: 0, 3: 2}
    assert len(model.prompts) == 3 and not model.script


def test_an_unreadable_answer_is_an_error_round_carrying_the_raw_text(make_engine):
    config = VlmConfig()
    model = ScriptedModel([lambda _: "The mug is on the left, I think."], config)
    engine = make_engine(reasoner=VlmReasoner(model, config))
    engine.submit_frame(frame())
    result = engine.handle(Instruction("the mug"))
    assert not result.ok and result.error_kind == "unreadable_output"
    assert result.raw_output == "The mug is on the left, I think."
    assert engine.memory.view("default").rounds == ()  # a failed round leaves memory alone
