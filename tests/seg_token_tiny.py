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

"""A tiny [SEG]-token model of the published structure (real CLIP, Llama and tokenizer classes, random weights)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

SENTENCES = [
    "A chat between a curious human and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    "USER: ASSISTANT: segment the mug and the plate, no fork. Sure, it is the cup.",
    "the mug: and the plate:, no fork: the one left of it; please output segmentation mask.",
    "What is the red object on the table in this image? Where is the robot's gripper?",
]
SPECIAL = ["<s>", "</s>", "<unk>"]
ADDED = ["[SEG]", "[REJ]", "<im_start>", "<im_end>"]


@lru_cache(maxsize=1)
def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(SENTENCES * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tokenizer.add_tokens(ADDED)
    return tokenizer


def tiny_configs(image_size: int = 224, vocab: int = 0) -> tuple[Any, Any]:
    from transformers import CLIPVisionConfig, LlamaConfig

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=14,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=vocab or len(tiny_tokenizer()),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return vision, text


@lru_cache(maxsize=2)
def tiny_model(image_size: int = 224, projector: str = "linear") -> Any:
    import torch

    from reasonseg_ros.reasoner.seg_token.model import build_llava

    vision, text = tiny_configs(image_size)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_llava(vision, text, projector)
