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

"""A small CLIP-style tokenizer trained here, for OWL detectors built from their configs (no hub)."""

from __future__ import annotations

from typing import Any


def clip_tokenizer(texts: list[str]) -> tuple[Any, int, int]:
    """A byte-level BPE ``CLIPTokenizerFast`` over ``texts``; returns it with its bos and eos ids."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    # OWL masks a query whose first token id is 0: the real vocabulary's id 0 is "!", not a special token.
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["!", "<|startoftext|>", "<|endoftext|>"])
    tok.train_from_iterator(texts, trainer)
    tok.decoder = decoders.ByteLevel()
    bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)]
    )
    tokenizer = transformers.CLIPTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=16,
    )
    return tokenizer, bos, eos
