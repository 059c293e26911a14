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

"""LLaVA conversation templates and LLaVA's tokenisation around the image placeholder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IMAGE_PLACEHOLDER = -200
"""LLaVA's ``IMAGE_TOKEN_INDEX``: stands for the whole image in un-expanded input ids."""
IMAGE_TOKEN = "<image>"
IM_START, IM_END = "<im_start>", "<im_end>"
VICUNA_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
LLAMA2_SYSTEM = (
    "You are a helpful language and vision assistant. You are able to understand the visual content "
    "that the user provides, and assist the user with a variety of tasks using natural language."
)


@dataclass(frozen=True)
class Turn:
    user: str
    assistant: str | None
    """None for the turn the model is to answer."""


def render(template: str, turns: Sequence[Turn]) -> str:
    """The prompt text of ``turns`` in LLaVA's ``llava_v1`` (Vicuna) or ``llava_llama_2`` format."""
    if template == "llava_v1":
        text = VICUNA_SYSTEM + " "
        for turn in turns:
            text += f"USER: {turn.user} ASSISTANT:"
            if turn.assistant is not None:
                text += f" {turn.assistant}</s>"
        return text
    if template == "llava_llama_2":
        parts = []
        for i, turn in enumerate(turns):
            user = f"<<SYS>>\n{LLAMA2_SYSTEM}\n<</SYS>>\n\n{turn.user}" if i == 0 else turn.user
            part = f"[INST] {user} [/INST]"
            if turn.assistant is not None:
                part += f" {turn.assistant} </s>"
            parts.append(part)
        return "<s>".join(parts)
    raise ValueError(f"unknown conversation template {template!r} (llava_v1 or llava_llama_2)")


def first_user_message(instruction: str, use_im_start_end: bool) -> str:
    """The image goes first in the first user message, wrapped in start/end tokens when the model uses them."""
    image = f"{IM_START}{IMAGE_TOKEN}{IM_END}" if use_im_start_end else IMAGE_TOKEN
    return f"{image}\n{instruction}"


def tokenize_with_image(tokenizer: Any, text: str) -> list[int]:
    """Tokenise as LLaVA's ``tokenizer_image_token`` does.

    Each chunk around ``<image>`` is tokenised on its own, one BOS at the start, and the placeholder id
    between the chunks.
    """
    chunks = text.split(IMAGE_TOKEN)
    if len(chunks) != 2:
        raise ValueError(f"the prompt must hold exactly one {IMAGE_TOKEN}, found {len(chunks) - 1}")
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    first = tokenizer(chunks[0], add_special_tokens=False).input_ids
    rest = tokenizer(chunks[1], add_special_tokens=False).input_ids
    return bos + first + [IMAGE_PLACEHOLDER] + rest


def template_for(config: dict[str, Any], name_or_path: str) -> str:
    """llava_llama_2 for Llama-2-chat based checkpoints, llava_v1 (Vicuna) otherwise."""
    hint = (str(config.get("_name_or_path", "")) + " " + name_or_path).lower()
    return "llava_llama_2" if "llama-2" in hint or "llama2" in hint else "llava_v1"
