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

"""State-dict key layouts of the published LISA, GSVA and READ checkpoints -> our module names.

All three save a ``LlavaLlamaForCausalLM`` subclass with ``save_pretrained``:
the Llama decoder under ``model.*`` and ``lm_head.*``, the LLaVA projector
under ``model.mm_projector.*`` (``.weight`` for a linear one, ``.0``/``.2``
for ``mlp2x_gelu``), the CLIP tower (when saved) under
``model.vision_tower.vision_tower.vision_model.*``, the [SEG] projection
under ``model.text_hidden_fcs.0.{0,2}.*`` and SAM under
``model.visual_model.*``. They differ in tokens, projector, CLIP input size
and whether Similarity-as-Points is on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SAM_PREFIX = "model.visual_model."
TOWER = "vision_tower.vision_model."
"""Where the CLIP tower's tensors land (transformers 4 naming; the loader adapts to 5's flatter one)."""
RULES: tuple[tuple[str, str], ...] = (
    ("model.text_hidden_fcs.", "text_hidden_fcs."),
    ("model.mm_projector.", "mm_projector."),
    ("model.vision_tower.vision_tower.", "vision_tower."),
    ("model.segllm.", "memory_encoder."),
    ("model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
)
"""Checkpoint prefix -> our prefix, first match wins (``model.`` last: it is the decoder's catch-all)."""
WRAPPERS = ("base_model.model.",)
"""Prefixes that PEFT adds when a LoRA-wrapped model is saved without merging."""
IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "embeddings.position_ids")
"""Buffers older transformers saved; they are recomputed, never loaded."""


@dataclass(frozen=True)
class Layout:
    name: str
    seg_token: str = "[SEG]"
    rej_token: str | None = None
    projector: str = "linear"
    vision_tower: str = "openai/clip-vit-large-patch14"
    sasp: bool = False
    hub_ids: tuple[str, ...] = ()


LAYOUTS: dict[str, Layout] = {
    "lisa": Layout(
        "lisa", hub_ids=("xinlai/LISA-7B-v1", "xinlai/LISA-13B-llama2-v1", "xinlai/LISA-13B-llama2-v1-explanatory")
    ),
    "gsva": Layout("gsva", rej_token="[REJ]"),
    "read": Layout(
        "read",
        projector="mlp2x_gelu",
        vision_tower="openai/clip-vit-large-patch14-336",
        sasp=True,
        hub_ids=(
            "rui-qian/READ-LLaVA-v1.5-7B-for-ReasonSeg-valset",
            "rui-qian/READ-LLaVA-v1.5-7B-for-ReasonSeg-testset",
        ),
    ),
}


@dataclass
class SplitState:
    """A checkpoint's tensors sorted by destination."""

    model: dict[str, Any]
    """Keys of :class:`SegTokenModel`."""
    sam: dict[str, Any]
    """Keys of ``segment_anything.Sam`` (prefix removed)."""
    ignored: list[str]
    """Checkpoint keys dropped on purpose (recomputed buffers)."""


def map_key(key: str) -> tuple[str, str] | None:
    """``(destination, our key)`` with destination ``model`` or ``sam``; None for an ignored buffer."""
    for wrapper in WRAPPERS:
        if key.startswith(wrapper):
            key = key[len(wrapper) :]
    if key.endswith(IGNORED_SUFFIXES):
        return None
    if key.startswith(SAM_PREFIX):
        return "sam", key[len(SAM_PREFIX) :]
    for source, target in RULES:
        if key.startswith(source):
            return "model", target + key[len(source) :]
    return "model", key  # unknown: reported as unexpected by the loader


_LORA = re.compile(r"^(?P<base>.+)\.lora_A(?:\.(?P<adapter>[^.]+))?\.weight$")


def merge_lora(state: dict[str, Any], alpha: float) -> int:
    """Fold unmerged LoRA factors into their base weights in place: ``W += B @ A * alpha / r``.

    LISA-style training wraps the decoder with PEFT, and checkpoints saved
    straight from it (GSVA's ``.bin`` files) keep ``lora_A`` / ``lora_B``
    next to the frozen weight (``q_proj.weight``, or ``q_proj.base_layer.weight``
    in newer PEFT). ``r`` is read off ``A``; ``alpha`` is not saved. Returns
    how many layers were merged.
    """
    merged = 0
    for key in [k for k in state if ".lora_A." in k]:
        match = _LORA.match(key)
        if match is None:
            continue
        base, adapter = match["base"], match["adapter"]
        b_key = f"{base}.lora_B.{adapter}.weight" if adapter else f"{base}.lora_B.weight"
        weight_key = f"{base}.base_layer.weight" if f"{base}.base_layer.weight" in state else f"{base}.weight"
        if b_key not in state or weight_key not in state:
            continue
        down, up = state.pop(key), state.pop(b_key)
        weight = state.pop(weight_key)
        delta = (up.float() @ down.float()) * (alpha / down.shape[0])
        state[f"{base}.weight"] = (weight.float() + delta).to(weight.dtype)
        if f"{base}.base_layer.bias" in state:
            state[f"{base}.bias"] = state.pop(f"{base}.base_layer.bias")
        merged += 1
    return merged


def split_state(state: dict[str, Any]) -> SplitState:
    split = SplitState({}, {}, [])
    for key, tensor in state.items():
        mapped = map_key(key)
        if mapped is None:
            split.ignored.append(key)
            continue
        destination, ours = mapped
        (split.sam if destination == "sam" else split.model)[ours] = tensor
    return split


def checkpoint_key(ours: str) -> str:
    """Our key -> the name it has in a published checkpoint (for error messages)."""
    if ours.startswith("vision_tower.") and not ours.startswith(TOWER):
        ours = TOWER + ours[len("vision_tower.") :]  # transformers 5 dropped CLIPVisionModel's vision_model level
    for source, target in RULES:
        if ours.startswith(target):
            return source + ours[len(target) :]
    return ours


def guess_layout(config: dict[str, Any], keys: Iterable[str], tokens: Iterable[str]) -> str:
    """Layout from ``architectures`` in config.json, else the tokens and the projector keys."""
    architectures = " ".join(config.get("architectures") or []).lower()
    for name in ("gsva", "read", "lisa"):
        if name in architectures:
            return name
    if "[REJ]" in set(tokens):
        return "gsva"
    if config.get("mm_projector_type") == "mlp2x_gelu" or any(k.endswith("mm_projector.2.weight") for k in keys):
        return "read"
    return "lisa"
