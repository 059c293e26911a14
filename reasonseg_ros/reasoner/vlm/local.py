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

"""The ``vlm`` backend's model: a grounding VLM run locally with transformers.

``AutoProcessor`` + ``AutoModelForImageTextToText`` from a hub id or a local
folder; the processor's chat template builds the prompt. In query mode the
KV cache of the answer's generation is kept; the questions continue it (the
image is encoded once per round), and all the candidate points of a target
are scored in one forward, packed into one row (no generation).
"""

from __future__ import annotations

import copy
import inspect
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reasonseg_ros.config import VlmConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import CheckpointError, ModelError
from reasonseg_ros.reasoner.vlm.client import QueryGroup
from reasonseg_ros.reasoner.vlm.coords import smart_resize
from reasonseg_ros.reasoner.vlm.prompt import PromptText
from reasonseg_ros.reasoner.vlm.schema import ANSWER_JSON_SCHEMA

QUERY_SLOT = "<<reasonseg-query>>"
"""Marks where a question goes in the templated conversation; the text after it closes every question."""
ANSWER_SLOT = "<<reasonseg-answer>>"
"""Marks where the model's answer goes in the templated conversation."""
YES_WORDS = ("Yes", "yes")
NO_WORDS = ("No", "no")


@dataclass
class Generated:
    """The last generation, kept in query mode so that the questions continue its KV cache."""

    prompt: PromptText
    inputs: Any
    new_ids: list[int]
    cache: Any


class LocalVlm:
    """A loaded processor and model; see :meth:`load`. One round at a time (the engine's worker)."""

    def __init__(self, model: Any, processor: Any, config: VlmConfig, name: str | None = None) -> None:
        self.torch = require("torch", "the vlm reasoner")
        self.model = model
        self.processor = processor
        self.config = config
        self.device = next(model.parameters()).device
        self.name = name or f"vlm {config.model} ({self.device}, transformers)"
        tokenizer = processor.tokenizer
        self._yes_ids = _first_token_ids(tokenizer, YES_WORDS)
        self._no_ids = _first_token_ids(tokenizer, NO_WORDS)
        self._generated: Generated | None = None
        self._deadline: tuple[float, float] | None = None
        """(time.monotonic() the round must end by, its length in s), set by :meth:`begin_round`."""
        self._grammar = self._compile_grammar() if config.grammar == "xgrammar" else None

    def _compile_grammar(self) -> Any:
        """The answer's JSON schema compiled for this tokenizer (xgrammar), once per model."""
        xgr = require("xgrammar", "reasoner.vlm.grammar: xgrammar (the grammar extra)")
        vocab_size = int(self.model.get_output_embeddings().weight.shape[0])  # may exceed len(tokenizer): padding
        info = xgr.TokenizerInfo.from_huggingface(self.processor.tokenizer, vocab_size=vocab_size)
        # compact JSON: a free-whitespace grammar would let an unsure model spend its tokens on spaces
        return xgr.GrammarCompiler(info).compile_json_schema(json.dumps(ANSWER_JSON_SCHEMA), any_whitespace=False)

    def begin_round(self, deadline_s: float | None) -> None:
        """Generation of this round stops at ``deadline_s`` (transformers' ``max_time``) and then fails."""
        self._deadline = None if deadline_s is None else (time.monotonic() + deadline_s, deadline_s)

    @classmethod
    def load(cls, config: VlmConfig) -> LocalVlm:
        """Load ``config.model``; raises :class:`CheckpointError` naming the model when that fails."""
        transformers = require("transformers", "the vlm reasoner")
        torch = require("torch", "the vlm reasoner")
        kwargs: dict[str, Any] = {"local_files_only": config.local_files_only}
        kwargs["dtype"] = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
        if config.attn_implementation:
            kwargs["attn_implementation"] = config.attn_implementation
        try:
            processor = transformers.AutoProcessor.from_pretrained(
                config.model, local_files_only=config.local_files_only
            )
            model = transformers.AutoModelForImageTextToText.from_pretrained(config.model, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckpointError(
                f"cannot load the VLM '{config.model}': {detail}; set reasoner.vlm.model to a hub id "
                "(with network or a filled cache) or to a local folder holding the model and its processor"
            ) from exc
        try:
            model = model.to(config.device).eval()
        except (RuntimeError, AssertionError) as exc:
            raise ModelError(f"cannot move the VLM to '{config.device}': {exc}; set reasoner.vlm.device") from exc
        return cls(model, processor, config)

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        image_processor = self.processor.image_processor
        factor = int(getattr(image_processor, "patch_size", 14)) * int(getattr(image_processor, "merge_size", 2))
        return smart_resize(height, width, factor, self.config.min_pixels, self.config.max_pixels)

    def encode(self, image: np.ndarray, system: str, user: str) -> Any:
        """Processor inputs (on the model's device) for one image and the templated texts."""
        return self._encode(image, self._template(system, user))

    def _template(self, system: str, user: str, add_generation_prompt: bool = True) -> str:
        messages = [
            {"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user}]},
        ]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def _encode(self, image: np.ndarray, text: str) -> Any:
        options: dict[str, Any] = {}
        if getattr(self.processor.image_processor, "merge_size", None) is not None:
            # Qwen-style processors: the pixel bounds of their resize come from config
            options["size"] = {"shortest_edge": self.config.min_pixels, "longest_edge": self.config.max_pixels}
        inputs = self.processor(text=[text], images=[image], return_tensors="pt", **options)
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    def generate(self, image: np.ndarray, prompt: PromptText) -> str:
        self._generated = None
        inputs = self.encode(image, prompt.system, prompt.user)
        try:
            with self.torch.inference_mode():
                output = self.model.generate(**inputs, **self._generate_options(), return_dict_in_generate=True)
        except RuntimeError as exc:
            raise ModelError(f"the VLM failed while generating: {str(exc).splitlines()[0]}") from exc
        if self._deadline is not None and time.monotonic() >= self._deadline[0]:
            raise ModelError(
                f"the VLM's answer did not finish within the round's deadline of {self._deadline[1]:g} s; "
                "raise reasoner.deadline_s, or use a faster device or a smaller model"
            )
        new_ids = output.sequences[0, inputs["input_ids"].shape[1] :]
        if self.config.point_mode == "query" and len(new_ids) and output.past_key_values is not None:
            # query mode asks its questions on this cache: the image is not encoded again
            self._generated = Generated(prompt, inputs, new_ids.tolist(), output.past_key_values)
        return self.processor.batch_decode(new_ids[None], skip_special_tokens=True)[0]

    def _generate_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"max_new_tokens": self.config.max_new_tokens, "do_sample": self.config.do_sample}
        if self.config.do_sample:
            options["temperature"] = self.config.temperature
        if self._deadline is not None:
            options["max_time"] = max(self._deadline[0] - time.monotonic(), 1e-3)
        if self._grammar is not None:
            # a fresh processor per answer: it tracks where in the grammar the answer is
            xgr = require("xgrammar", "reasoner.vlm.grammar: xgrammar (the grammar extra)")
            options["logits_processor"] = [xgr.contrib.hf.LogitsProcessor(self._grammar)]
        return options

    def conversation(self, prompt: PromptText) -> tuple[str, str, str]:
        """Split the chat template into ``(head, between, tail)``.

        The templated text before the answer, between the answer and a question, and after the question
        (ending with the assistant's header).
        """
        messages = [
            {"role": "system", "content": [{"type": "text", "text": prompt.system}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt.user}]},
            {"role": "assistant", "content": [{"type": "text", "text": ANSWER_SLOT}]},
            {"role": "user", "content": [{"type": "text", "text": QUERY_SLOT}]},
        ]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        head, rest = text.split(ANSWER_SLOT, 1)
        between, tail = rest.split(QUERY_SLOT, 1)
        return head, between, tail

    def yes_probabilities(
        self, image: np.ndarray, prompt: PromptText, answer: str, groups: Sequence[QueryGroup]
    ) -> np.ndarray:
        torch = self.torch
        head, between, tail = self.conversation(prompt)
        generated, self._generated = self._generated, None
        scores = []
        try:
            with torch.inference_mode():
                if generated is not None and generated.prompt is prompt:
                    cache, length, position = self._continue(generated, between)
                else:
                    # no cache of this answer's generation (e.g. the answer came from elsewhere): one prefill
                    inputs = self._encode(image, head + answer + between)
                    cache = self.model(**inputs, use_cache=True).past_key_values
                    length, position = int(inputs["input_ids"].shape[1]), self._next_position(inputs)
                for group in groups:
                    logits = self._score_group(copy.deepcopy(cache), length, position, group, tail)
                    log_probs = torch.log_softmax(logits.float(), dim=-1)
                    yes = torch.logsumexp(log_probs[:, self._yes_ids], dim=-1)
                    no = torch.logsumexp(log_probs[:, self._no_ids], dim=-1)
                    scores.append(torch.sigmoid(yes - no).cpu().numpy())
        except RuntimeError as exc:
            raise ModelError(f"the VLM failed while scoring query points: {str(exc).splitlines()[0]}") from exc
        return np.concatenate(scores) if scores else np.zeros(0)

    def _continue(self, generated: Generated, between: str) -> tuple[Any, int, int]:
        """Extend the generation's cache by the end of the answer and the next user turn's header."""
        cache = generated.cache
        prompt_length = int(generated.inputs["input_ids"].shape[1])
        length = cache.get_seq_length()
        position = self._next_position(generated.inputs) + (length - prompt_length)
        header = self._tokens(between)
        last = generated.new_ids[-1]  # generated, but never fed back: not in the cache yet
        # when generation stopped at the end-of-turn token, ``between`` starts with that same token
        continuation = header if header and header[0] == last else [last, *header]
        self._forward(self.torch.tensor([continuation], device=self.device), cache, length, position)
        return cache, length + len(continuation), position + len(continuation)

    def _score_group(self, cache: Any, length: int, position: int, group: QueryGroup, tail: str) -> Any:
        """Next-token logits after each question of ``group``.

        The target's sentence extends the cache once, then every question runs in one forward on it.
        """
        context = self._tokens(group.context)
        self._forward(self.torch.tensor([context], device=self.device), cache, length, position)
        questions = [self._tokens(f" {q}{tail}") for q in group.questions]
        score = self._forward_packed if self._packs_questions() else self._forward_batch
        return score(questions, cache, length + len(context), position + len(context))

    def _packs_questions(self) -> bool:
        """Whether one custom 4D mask can serve every layer.

        Not with FlashAttention (it takes no such mask) nor with sliding-window layers (their cache keeps only
        the window, so one mask cannot fit all layers); there the questions are batch rows instead.
        """
        config = self.model.config
        if "flash" in str(getattr(config, "_attn_implementation", "") or ""):
            return False
        text = getattr(config, "text_config", None) or config
        if any("sliding" in str(kind) for kind in getattr(text, "layer_types", None) or ()):
            return False
        return not (getattr(text, "use_sliding_window", False) and getattr(text, "sliding_window", None))

    def _tokens(self, text: str) -> list[int]:
        return list(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _forward(self, ids: Any, cache: Any, length: int, position: int) -> Any:
        torch = self.torch
        count, width = ids.shape
        positions = (position + torch.arange(width, device=self.device)).unsqueeze(0).expand(count, -1)
        mask = torch.ones((count, length + width), dtype=torch.long, device=self.device)
        return self._run(ids, positions, mask, cache)

    def _run(self, ids: Any, positions: Any, mask: Any, cache: Any) -> Any:
        if hasattr(self.model.model, "get_rope_index"):
            positions = positions.unsqueeze(0).expand(3, -1, -1)  # M-RoPE: text advances all three axes
        return self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True
        )

    def _forward_packed(self, encoded: list[list[int]], cache: Any, length: int, position: int) -> Any:
        """Last-token logits of each question, all packed into one row over the shared cache.

        Each question sees the cache and its own earlier tokens (a block-diagonal causal mask) and starts at
        the same position, so it is computed as if it were alone, and the cache is not copied per question.
        """
        torch = self.torch
        sizes = torch.tensor([len(ids) for ids in encoded], device=self.device)
        ends = torch.cumsum(sizes, 0)
        order = torch.arange(int(ends[-1]), device=self.device)
        question = torch.repeat_interleave(torch.arange(len(encoded), device=self.device), sizes)
        offsets = order - (ends - sizes)[question]
        sees = (question[:, None] == question[None, :]) & (order[:, None] >= order[None, :])
        sees = torch.cat([torch.ones((len(order), length), dtype=torch.bool, device=self.device), sees], dim=1)
        dtype = self.model.dtype
        mask = torch.zeros(sees.shape, dtype=dtype, device=self.device).masked_fill(~sees, torch.finfo(dtype).min)
        ids = torch.tensor([[token for ids in encoded for token in ids]], device=self.device)
        out = self._run(ids, (position + offsets).unsqueeze(0), mask[None, None], cache)
        return out.logits[0, ends - 1]

    def _forward_batch(self, encoded: list[list[int]], cache: Any, length: int, position: int) -> Any:
        """Last-token logits of each row, all rows in one forward over the cache (repeated per row)."""
        torch = self.torch
        count, longest = len(encoded), max(len(ids) for ids in encoded)
        pad = self.processor.tokenizer.pad_token_id or 0
        # right padding: with a causal mask no real token sees the padding after it
        ids = torch.full((count, longest), pad, dtype=torch.long, device=self.device)
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = torch.tensor(tokens, device=self.device)
        cache.batch_repeat_interleave(count)
        out = self._forward(ids, cache, length, position)
        last = torch.tensor([len(tokens) - 1 for tokens in encoded], device=self.device)
        return out.logits[torch.arange(count, device=self.device), last]

    def _next_position(self, inputs: Any) -> int:
        """Position of the first token after the prefix (M-RoPE models compress the image's positions)."""
        get_rope_index = getattr(self.model.model, "get_rope_index", None)
        if get_rope_index is None:
            return int(inputs["input_ids"].shape[1])
        accepted = inspect.signature(get_rope_index).parameters
        kwargs = {k: v for k, v in inputs.items() if k in accepted and k not in ("input_ids", "pixel_values")}
        positions, _ = get_rope_index(inputs["input_ids"], **kwargs)
        return int(positions.max()) + 1


def _first_token_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    ids = {tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words}
    return sorted(ids)
