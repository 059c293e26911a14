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

"""``reasoner.vlm.grammar: xgrammar`` on the tiny random Qwen2.5-VL: the answer follows the JSON schema.

Random weights say nothing of quality: the check is only that every generated
character is allowed by the schema, judged by a fresh xgrammar matcher (the
library's own acceptance), while the same model unconstrained writes text
the schema refuses.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="the torch extra is not installed")
pytest.importorskip("transformers", reason="the vlm extra is not installed")
xgr = pytest.importorskip("xgrammar", reason="the grammar extra is not installed")

from reasonseg_ros.config import load_config  # noqa: E402
from reasonseg_ros.reasoner import create_reasoner  # noqa: E402
from reasonseg_ros.reasoner.vlm.prompt import PromptText  # noqa: E402
from reasonseg_ros.reasoner.vlm.schema import ANSWER_JSON_SCHEMA  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from reasonseg_ros.reasoner.vlm.tiny import build_tiny_qwen2_5_vl

    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny_qwen_grammar"))


def client(folder: Any, grammar: str) -> Any:
    overrides = {
        "reasoner.backend": "vlm",
        "reasoner.vlm.model": str(folder),
        "reasoner.vlm.dtype": "float32",
        "reasoner.vlm.max_new_tokens": 40,
        "reasoner.vlm.max_pixels": 28 * 28 * 64,
        "reasoner.vlm.local_files_only": True,
        "reasoner.vlm.grammar": grammar,
    }
    return create_reasoner(load_config(None, overrides).reasoner).client


def accepted(text: str, model_client: Any) -> bool:
    tokenizer = model_client.processor.tokenizer
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    grammar = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(ANSWER_JSON_SCHEMA), any_whitespace=False)
    return xgr.GrammarMatcher(grammar, terminate_without_stop_token=True).accept_string(text)


def test_constrained_answers_follow_the_schema_and_free_ones_do_not(tiny_dir):
    image = np.full((56, 56, 3), 90, np.uint8)
    prompt = PromptText("system", "the mug")
    constrained = client(tiny_dir, "xgrammar")
    answer = constrained.generate(image, prompt)
    assert re.match(r'\{"targets":\s?\[', answer) and accepted(answer, constrained)
    free = client(tiny_dir, "none").generate(image, prompt)
    assert not accepted(free, constrained)


def test_the_schema_takes_a_full_answer_in_the_prompts_shape_and_refuses_other_shapes(tiny_dir):
    model_client = client(tiny_dir, "xgrammar")
    answer = {
        "targets": [
            {
                "label": "mug",
                "box": [10, 20, 110, 140],
                "points": [[40, 60]],
                "negative_points": [[5, 5]],
                "confidence": 0.9,
                "object_id": None,
            },
            {"label": "it", "object_id": 3},
        ],
        "rejections": [{"phrase": "the red cup", "reason": "none visible"}],
        "reply": "Found the mug.",
    }
    assert accepted(json.dumps(answer), model_client)
    assert not accepted(json.dumps({"answer": "a mug"}), model_client)
    assert not accepted(json.dumps({**answer, "targets": [{"label": "mug", "box": [1, 2, 3]}]}), model_client)
