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

"""The assembled [SEG]-token model: CLIP vision tower + LLaVA projector + causal LM + ``text_hidden_fcs``.

Built from stock ``transformers`` classes, so published LISA / GSVA / READ
checkpoints load without their research forks (see ``layouts.py``).
The hidden state that becomes a SAM prompt is the last layer's state at the
position whose *next* input id is ``[SEG]``, counted in the sequence where
the single image placeholder has been expanded into the vision tower's patch
tokens, exactly as the reference implementations select it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasonseg_ros.deps import require
from reasonseg_ros.reasoner.seg_token.conversation import IMAGE_PLACEHOLDER

torch = require("torch", "the seg_token reasoner")
transformers = require("transformers", "the seg_token reasoner")
nn = torch.nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_processor(image_size: int, folder: str | Path | None = None) -> Any:
    """transformers' CLIP image processor, as LISA / GSVA / READ preprocess.

    Shortest side to ``image_size`` (bicubic), centre crop, CLIP mean / std. Settings come from
    ``preprocessor_config.json`` in ``folder`` when there is one, else from the published
    ``openai/clip-vit-large-patch14(-336)`` configs (the same values at 224 and 336). The PIL backend is
    preferred: the references ran transformers 4's ``CLIPImageProcessor``, which resizes with PIL.
    """
    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    config = Path(folder) / "preprocessor_config.json" if folder is not None else None
    if config is not None and config.is_file():
        processor = cls.from_pretrained(str(folder))
    else:
        processor = cls(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
            do_center_crop=True,
            resample=3,  # PIL bicubic
            image_mean=list(CLIP_MEAN),
            image_std=list(CLIP_STD),
        )
    crop = processor.crop_size or {}
    if (crop.get("height"), crop.get("width")) != (image_size, image_size):
        raise ValueError(f"{config}: crop_size {crop} does not match the vision tower's {image_size}")
    return processor


def build_projector(kind: str, vision_width: int, hidden: int) -> Any:
    """LLaVA's ``mm_projector``: ``linear`` (LLaVA-1 / LISA) or ``mlp2x_gelu`` (LLaVA-1.5 / READ)."""
    if kind == "linear":
        return nn.Linear(vision_width, hidden)
    if kind == "mlp2x_gelu":
        return nn.Sequential(nn.Linear(vision_width, hidden), nn.GELU(), nn.Linear(hidden, hidden))
    raise ValueError(f"unknown projector type {kind!r} (linear or mlp2x_gelu)")


@dataclass
class Generation:
    """One generated answer with the last-layer states it was produced from."""

    new_ids: list[int]
    """Generated token ids (prompt excluded)."""
    states: Any
    """``(L + T - 1, H)``: last-layer state of every expanded position that predicted a token."""
    prompt_length: int
    """``L``: expanded prompt length; generated token ``j`` sits at position ``L + j``."""
    image_start: int
    """Expanded position of the first image token."""


class SegTokenModel(nn.Module):
    """Vision tower, projector, language model and the [SEG] projection under one module."""

    def __init__(
        self,
        vision_tower: Any,
        language_model: Any,
        projector: str = "linear",
        out_dim: int = 256,
        select_layer: int = -2,
    ) -> None:
        super().__init__()
        hidden = language_model.config.hidden_size
        self.vision_tower = vision_tower
        self.mm_projector = build_projector(projector, vision_tower.config.hidden_size, hidden)
        self.language_model = language_model
        self.text_hidden_fcs = nn.ModuleList(
            [
                nn.Sequential(
                    nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim), nn.Dropout(0.0)
                )
            ]
        )
        self.select_layer = select_layer
        self.memory_encoder: Any = None
        """Optional SegLLM-style encoder of remembered objects (``segllm.py``)."""
        self.image_processor: Any = None
        """CLIP preprocessing (:func:`clip_processor`); the loader sets the checkpoint's, else built on first use."""

    @property
    def image_size(self) -> int:
        return int(self.vision_tower.config.image_size)

    @property
    def num_patches(self) -> int:
        """Image tokens after expansion: 256 for CLIP-224, 576 for CLIP-336 (patch 14)."""
        return (self.image_size // int(self.vision_tower.config.patch_size)) ** 2

    @property
    def hidden_size(self) -> int:
        return int(self.language_model.config.hidden_size)

    def preprocess(self, image: Any) -> Any:
        """H×W×3 uint8 RGB -> CLIP pixels ``(1, 3, S, S)`` through transformers' CLIP image processor."""
        if self.image_processor is None:
            self.image_processor = clip_processor(self.image_size)
        param = next(self.vision_tower.parameters())
        pixels = self.image_processor(images=image, return_tensors="pt")["pixel_values"]
        return pixels.to(device=param.device, dtype=param.dtype)

    def encode_image(self, pixels: Any) -> Any:
        """CLIP patch features of layer ``select_layer`` (CLS dropped), projected: ``(1, Np, H)``."""
        out = self.vision_tower(pixel_values=pixels, output_hidden_states=True)
        return self.mm_projector(out.hidden_states[self.select_layer][:, 1:])

    def embed_inputs(self, input_ids: Sequence[int], image_features: Any, extra: Any = None) -> tuple[Any, int]:
        """Input embeddings with the placeholder replaced by the image features (then ``extra`` tokens).

        Returns ``(1, L', H)`` embeddings and the expanded position of the first image token.
        """
        ids = list(input_ids)
        if ids.count(IMAGE_PLACEHOLDER) != 1:
            raise ValueError(f"expected exactly one image placeholder, found {ids.count(IMAGE_PLACEHOLDER)}")
        at = ids.index(IMAGE_PLACEHOLDER)
        embed = self.language_model.get_input_embeddings()
        device = embed.weight.device
        text = embed(torch.tensor([i if i >= 0 else 0 for i in ids], device=device))
        parts = [text[:at], image_features[0].to(text.dtype)]
        if extra is not None and len(extra):
            parts.append(extra.to(text.dtype))
        parts.append(text[at + 1 :])
        return torch.cat(parts)[None], at

    def image_span(self, extra_tokens: int = 0) -> int:
        """Expanded positions the placeholder turns into."""
        return self.num_patches + extra_tokens

    def last_hidden_states(self, input_ids: Sequence[int], pixels: Any, extra: Any = None) -> Any:
        """Teacher-forced forward: last-layer states ``(L', H)`` of the expanded sequence."""
        embeds, _ = self.embed_inputs(input_ids, self.encode_image(pixels), extra)
        out = self.language_model(inputs_embeds=embeds, output_hidden_states=True, use_cache=False)
        return out.hidden_states[-1][0]

    def project(self, states: Any) -> Any:
        """``text_hidden_fcs``: ``(N, H)`` -> ``(N, 256)`` SAM prompt embeddings."""
        return self.text_hidden_fcs[0](states)

    def generate(
        self,
        input_ids: Sequence[int],
        pixels: Any,
        max_new_tokens: int,
        eos_token_id: int | None,
        extra: Any = None,
        max_time: float | None = None,
    ) -> Generation:
        """Greedy answer, keeping the last-layer state of every position (one pass, KV cache on).

        ``max_time``: seconds after which generation stops (transformers' ``max_time``), for the round's deadline.
        """
        embeds, image_start = self.embed_inputs(input_ids, self.encode_image(pixels), extra)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        out = self.language_model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            output_hidden_states=True,
            return_dict_in_generate=True,
            eos_token_id=eos_token_id,
            pad_token_id=eos_token_id if eos_token_id is not None else 0,
            **({"max_time": max_time} if max_time is not None else {}),
        )
        steps = out.hidden_states
        new_ids = out.sequences[0, -len(steps) :].tolist()
        # Step 0 holds the whole prompt; each later step one new position.
        states = torch.cat([step[-1][0] for step in steps])
        return Generation(new_ids, states, embeds.shape[1], image_start)


def seg_state_positions(input_ids: Sequence[int], token_id: int, image_span: int) -> list[int]:
    """Expanded positions whose next input id is ``token_id`` (the [SEG] rule of LISA / GSVA / READ).

    ``input_ids`` holds one image placeholder, which the model expands into
    ``image_span`` positions, so every later position moves by ``image_span - 1``.
    """
    ids = list(input_ids)
    at = ids.index(IMAGE_PLACEHOLDER)
    shift = image_span - 1
    return [i + (shift if i > at else 0) for i in range(len(ids) - 1) if ids[i + 1] == token_id]


def build_llava(
    vision_config: Any, text_config: Any, projector: str, dtype: Any = None, meta: bool = False
) -> SegTokenModel:
    """A :class:`SegTokenModel` with random weights (or on the meta device, to be filled by the loader)."""
    context = torch.device("meta") if meta else torch.device("cpu")
    previous = torch.get_default_dtype()
    # built directly in the target dtype: a 7B model built in float32 first would need twice the memory
    torch.set_default_dtype(dtype or previous)
    try:
        with context:
            vision = transformers.CLIPVisionModel(vision_config)
            language = transformers.LlamaForCausalLM(text_config)
            model = SegTokenModel(vision, language, projector)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()
