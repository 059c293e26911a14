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

"""The ``seg_token`` reasoner: a LISA / GSVA / READ model answers; each ``[SEG]`` becomes a SAM prompt.

Every ``[SEG]`` gives one target whose prompt is the 256-d projection of the
last-layer state that predicted it (plus Similarity-as-Points when on);
every ``[REJ]`` gives a rejection. Earlier rounds of the session go into the
conversation as LLaVA multi-turn history (their cleaned replies, without
marker tokens), and, when the checkpoint carries SegLLM-style weights, the
remembered objects' masks and boxes go in as extra input embeddings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reasonseg_ros.config import SegTokenConfig
from reasonseg_ros.errors import ConfigError, ModelError
from reasonseg_ros.memory import MemoryView
from reasonseg_ros.reasoner.seg_token.answer import Marker, clean_reply, parse_answer
from reasonseg_ros.reasoner.seg_token.conversation import (
    IMAGE_PLACEHOLDER,
    Turn,
    first_user_message,
    render,
    template_for,
    tokenize_with_image,
)
from reasonseg_ros.reasoner.seg_token.layouts import Layout
from reasonseg_ros.reasoner.seg_token.model import SegTokenModel, seg_state_positions, torch
from reasonseg_ros.reasoner.seg_token.reference import ReferenceRound
from reasonseg_ros.reasoner.seg_token.sasp import SasPSettings, points_from_similarity, similarity
from reasonseg_ros.types import Prompt, ReasonerOutput, Rejection, Target

MAX_MEMORY_OBJECTS = 8
"""Remembered objects fed back per round (SegLLM memory): each costs one CLIP pass."""


@dataclass
class Decoded:
    """What one forward (generated or teacher-forced) gives the target builder."""

    ids: list[int]
    """The answer's token ids."""
    markers: list[Marker]
    states: Any
    """``(N, H)`` last-layer states that predicted each marker, in marker order."""
    image_states: Any
    """``(Np, H)`` last-layer states of the image tokens."""
    positions: list[int]
    """Expanded positions of ``states``."""


class SegTokenReasoner:
    def __init__(
        self,
        model: SegTokenModel,
        tokenizer: Any,
        layout: Layout,
        settings: SegTokenConfig | None = None,
        template: str = "llava_v1",
        use_im_start_end: bool = True,
        sam_state: dict[str, Any] | None = None,
        name: str = "",
        deadline_s: float | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.layout = layout
        self.settings = settings or SegTokenConfig()
        self.template = template
        self.use_im_start_end = use_im_start_end
        self.deadline_s = deadline_s
        """``reasoner.deadline_s``: generation stops there and the round fails (None: no limit)."""
        self.seg_id = tokenizer.convert_tokens_to_ids(layout.seg_token)
        self.rej_id = tokenizer.convert_tokens_to_ids(layout.rej_token) if layout.rej_token else None
        sasp = self.settings.sasp
        on = layout.sasp if sasp.enabled is None else sasp.enabled
        self.sasp = (
            SasPSettings(
                sasp.positive_threshold, sasp.negative_threshold, sasp.num_points, sasp.down_sample, sasp.refine
            )
            if on
            else None
        )
        if self.settings.segllm_memory and model.memory_encoder is None:
            raise ConfigError(
                "reasoner.seg_token.segllm_memory is on but the checkpoint has no model.segllm.* weights: "
                "set it to null"
            )
        self.use_memory = model.memory_encoder is not None and self.settings.segllm_memory is not False
        self._sam_state = sam_state
        features = [layout.name] + (["SasP"] if self.sasp else []) + (["SegLLM memory"] if self.use_memory else [])
        self.name = f"{name or 'seg_token'} ({', '.join(features)})"
        self.last_timings_ms: dict[str, float] = {}

    @classmethod
    def from_config(cls, settings: SegTokenConfig, deadline_s: float | None = None) -> SegTokenReasoner:
        from reasonseg_ros.reasoner.seg_token import loader

        loaded = loader.load(settings)
        template = (
            settings.template if settings.template != "auto" else template_for(loaded.config, settings.checkpoint)
        )
        return cls(
            loaded.model,
            loaded.tokenizer,
            loaded.layout,
            settings,
            template,
            bool(loaded.config.get("mm_use_im_start_end", True)),
            loaded.sam_state,
            f"seg_token {settings.checkpoint}",
            deadline_s,
        )

    def sam_state_dict(self) -> dict[str, Any]:
        """The SAM shipped in the checkpoint (``model.visual_model.*``), handed over once to the segmenter."""
        if not self._sam_state:
            raise ConfigError(
                "segmenter.checkpoint is from_reasoner but the reasoner's checkpoint has no model.visual_model.* "
                "weights: give segmenter.checkpoint a SAM file"
            )
        state, self._sam_state = self._sam_state, None
        return state

    def prompt_text(self, text: str, memory: MemoryView, answer: str | None = None) -> str:
        """The conversation: remembered rounds as earlier turns, the image in the first user message."""
        keep = self.settings.history_rounds
        history = list(memory.rounds[-keep:]) if keep > 0 else []
        asked = self.settings.instruction_format.replace("{text}", text)
        turns = [Turn(r.instruction, r.reply) for r in history] + [Turn(asked, answer)]
        turns[0] = Turn(first_user_message(turns[0].user, self.use_im_start_end), turns[0].assistant)
        return render(self.template, turns)

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> ReasonerOutput:
        ids = tokenize_with_image(self.tokenizer, self.prompt_text(text, memory))
        with torch.inference_mode():
            pixels = self.model.preprocess(image)
            extra = self._memory_tokens(image, memory)
            started = time.monotonic()
            generation = self.model.generate(
                ids, pixels, self.settings.max_new_tokens, self.tokenizer.eos_token_id, extra, self.deadline_s
            )
            if self.deadline_s is not None and time.monotonic() - started >= self.deadline_s:
                # max_time stopped the answer part-way: its markers would be a truncated, wrong answer
                raise ModelError(
                    f"the seg_token answer did not finish within the round's deadline of {self.deadline_s:g} s; "
                    "raise reasoner.deadline_s, or use a faster device"
                )
            new_ids = list(generation.new_ids)
            while new_ids and new_ids[-1] == self.tokenizer.eos_token_id:
                new_ids.pop()  # only trailing: marker indices must stay those of the generated sequence
            markers = parse_answer(new_ids, self.seg_id, self.rej_id, self._decode)
            # generated token j was predicted by the state at expanded position L + j - 1
            positions = [generation.prompt_length + m.index - 1 for m in markers]
            start = generation.image_start
            decoded = Decoded(
                new_ids,
                markers,
                generation.states[positions],
                generation.states[start : start + self.model.num_patches],
                positions,
            )
            return self.build_output(image, text, decoded)

    def teacher_force(
        self, image: np.ndarray, text: str, answer: str, memory: MemoryView
    ) -> tuple[ReasonerOutput, Decoded]:
        """Run a given answer through the model as the reference training/eval code does."""
        prompt = tokenize_with_image(self.tokenizer, self.prompt_text(text, memory))
        full = tokenize_with_image(self.tokenizer, self.prompt_text(text, memory, answer))
        with torch.inference_mode():
            pixels = self.model.preprocess(image)
            extra = self._memory_tokens(image, memory)
            decoded = self._forced(prompt, full, pixels, extra)
            return self.build_output(image, text, decoded), decoded

    def reference(self, image: np.ndarray, sample: ReferenceRound) -> ReasonerOutput:
        """Answer one sample as the model's own evaluation scores it (``reference.py``).

        Its question, no history, the ground-truth answer teacher-forced; GSVA's [SEG]/[REJ] decided by the
        argmax at each marker.
        """
        turn = first_user_message(sample.question, self.use_im_start_end)
        prompt = tokenize_with_image(self.tokenizer, render(self.template, [Turn(turn, None)]))
        full = tokenize_with_image(self.tokenizer, render(self.template, [Turn(turn, sample.answer)]))
        with torch.inference_mode():
            pixels = self.model.preprocess(image)
            decoded = self._forced(prompt, full, pixels, None)
            if self.rej_id is None:
                return self.build_output(image, sample.phrase, decoded)
            # GSVA: the prediction at a marker is the ground-truth marker if the argmax there is it, else the other
            logits = self.model.language_model.lm_head(decoded.states)
            argmax = logits.argmax(dim=-1).tolist()
            truth = [self.seg_id if m.kind == "seg" else self.rej_id for m in decoded.markers]
            predicted = [
                t if a == t else (self.rej_id if t == self.seg_id else self.seg_id)
                for a, t in zip(argmax, truth, strict=True)
            ]
            states = decoded.states
            if self.rej_id in full:  # masks from a second forward with every [REJ] as [SEG]
                as_seg = [self.seg_id if t == self.rej_id else t for t in full]
                embeds, _ = self.model.embed_inputs(as_seg, self.model.encode_image(pixels))
                out = self.model.language_model(inputs_embeds=embeds, output_hidden_states=True, use_cache=False)
                states = out.hidden_states[-1][0][decoded.positions]
            embeddings = self.model.project(states).float().cpu().numpy()
        chosen = range(len(truth)) if sample.marker is None else [sample.marker]
        if sample.marker is not None and sample.marker >= len(truth):
            raise ModelError(f"the reference answer has {len(truth)} markers, sample {sample.marker} was asked")
        targets, rejections = [], []
        for truth_id, predicted_id, embedding in ((truth[i], predicted[i], embeddings[i]) for i in chosen):
            rejected = predicted_id == self.rej_id
            if rejected:
                rejections.append(Rejection(sample.phrase, "the model predicts [REJ] (reference protocol)"))
            # GSVA's eval_gres scores a present target's mask even when [REJ] was predicted
            if not rejected or truth_id == self.seg_id:
                targets.append(Target(sample.phrase, Prompt(embedding=embedding[None])))
        raw = self._decode(decoded.ids)
        return ReasonerOutput(sample.answer, tuple(targets), tuple(rejections), raw_output=raw)

    def _forced(self, prompt: list[int], full: list[int], pixels: Any, extra: Any) -> Decoded:
        """Teacher-forced states of the answer ``full[len(prompt):]`` (one forward, image and extra spliced in)."""
        if full[: len(prompt)] != prompt:
            raise ModelError("the answer changes the prompt's tokenisation; cannot teacher-force it")
        answer_ids = full[len(prompt) :]
        while answer_ids and answer_ids[-1] == self.tokenizer.eos_token_id:
            answer_ids = answer_ids[:-1]
        states = self.model.last_hidden_states(full, pixels, extra)
        span = self.model.image_span(0 if extra is None else len(extra))
        markers = parse_answer(answer_ids, self.seg_id, self.rej_id, self._decode)
        marker_ids = {self.seg_id, self.rej_id} - {None}
        positions = sorted(p for token in marker_ids for p in seg_state_positions(full, token, span))
        start = full.index(IMAGE_PLACEHOLDER)
        return Decoded(
            answer_ids, markers, states[positions], states[start : start + self.model.num_patches], positions
        )

    def build_output(self, image: np.ndarray, text: str, decoded: Decoded) -> ReasonerOutput:
        raw = self._decode(decoded.ids)
        if not decoded.markers:
            shown = raw if len(raw) <= 120 else raw[:117] + "..."
            raise ModelError(f"the model answered without [SEG] or [REJ]: {shown!r}")
        fallback = text if len(text) <= 80 else text[:77] + "..."
        embeddings = self.model.project(decoded.states).float().cpu().numpy()
        targets, rejections = [], []
        for marker, state, embedding in zip(decoded.markers, decoded.states, embeddings, strict=True):
            label = marker.phrase or fallback
            if marker.kind == "rej":
                rejections.append(Rejection(label, "the model answered [REJ]"))
                continue
            points = labels = None
            if self.sasp is not None:
                scores = similarity(state, decoded.image_states)
                points, labels = points_from_similarity(scores.cpu(), image.shape[:2], self.model.image_size, self.sasp)
            targets.append(Target(label, Prompt(points=points, point_labels=labels, embedding=embedding[None])))
        markers = [t for t in (self.layout.seg_token, self.layout.rej_token) if t]
        return ReasonerOutput(clean_reply(raw, markers), tuple(targets), tuple(rejections), raw_output=raw)

    def _memory_tokens(self, image: np.ndarray, memory: MemoryView) -> Any:
        if not self.use_memory or not memory.objects:
            return None
        return self.model.memory_encoder(self.model, image, memory.objects[-MAX_MEMORY_OBJECTS:])

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)
