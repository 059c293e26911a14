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

"""Loads a LISA / GSVA / READ checkpoint folder (or hub id) into :class:`SegTokenModel`.

safetensors is preferred; ``.bin`` shards are read with ``torch.load(weights_only=True)``.
Every checkpoint key must land in the model or the SAM; a key left over, a
model weight not in the file, or a tensor of the wrong shape fails with a
:class:`CheckpointError` naming the key as the checkpoint spells it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonseg_ros.deps import available, require
from reasonseg_ros.errors import CheckpointError, ConfigError
from reasonseg_ros.reasoner.seg_token.layouts import (
    LAYOUTS,
    TOWER,
    Layout,
    checkpoint_key,
    guess_layout,
    merge_lora,
    split_state,
)
from reasonseg_ros.reasoner.seg_token.model import SegTokenModel, clip_processor, torch, transformers

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
LLAMA_KEYS = (
    "vocab_size hidden_size intermediate_size num_hidden_layers num_attention_heads num_key_value_heads "
    "max_position_embeddings rms_norm_eps rope_theta rope_scaling tie_word_embeddings bos_token_id eos_token_id "
    "pad_token_id hidden_act attention_bias"
).split()


@dataclass
class Loaded:
    model: SegTokenModel
    tokenizer: Any
    layout: Layout
    config: dict[str, Any]
    sam_state: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def resolve_folder(checkpoint: str) -> Path:
    """A local folder, or the hub snapshot of ``checkpoint`` (downloaded on first use)."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return path
    if path.exists() or checkpoint.startswith((".", "/", "~")):
        raise CheckpointError(f"{checkpoint} is not a checkpoint folder: set reasoner.seg_token.checkpoint")
    hub = require("huggingface_hub", "downloading seg_token checkpoints")
    try:
        return Path(
            hub.snapshot_download(checkpoint, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.model", "*.txt"])
        )
    except Exception as exc:
        raise CheckpointError(
            f"cannot fetch {checkpoint} from the Hugging Face hub ({type(exc).__name__}); "
            "download it elsewhere and point reasoner.seg_token.checkpoint at the folder"
        ) from exc


def weight_files(folder: Path) -> list[Path]:
    """Shards named by an index file, else the single weights file; safetensors first."""
    for index_name, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        index = folder / index_name
        if index.is_file():
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            missing = [n for n in names if not (folder / n).is_file()]
            if missing:
                raise CheckpointError(f"{folder}: shards {missing[:3]} named in {index_name} are missing")
            return [folder / n for n in names]
        if (folder / single).is_file():
            return [folder / single]
    raise CheckpointError(f"{folder} holds no model.safetensors(.index.json) or pytorch_model.bin(.index.json)")


def read_state(files: list[Path]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for path in files:
        try:
            if path.suffix == ".safetensors":
                state.update(require("safetensors.torch", "reading safetensors").load_file(str(path)))
            else:
                state.update(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:
            detail = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise CheckpointError(f"cannot read {path}: {type(exc).__name__}: {detail}; is the file complete?") from exc
    return state


def vision_config_from_state(state: dict[str, Any]) -> Any:
    """CLIPVisionConfig read off the tower's own tensors (no download needed when the checkpoint has them)."""
    prefix = TOWER
    patch = state[prefix + "embeddings.patch_embedding.weight"]
    positions = state[prefix + "embeddings.position_embedding.weight"].shape[0]
    layers = {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"encoder\.layers\.(\d+)\.", k))}
    hidden = int(patch.shape[0])
    side = round((positions - 1) ** 0.5)
    return transformers.CLIPVisionConfig(
        hidden_size=hidden,
        intermediate_size=int(state[prefix + "encoder.layers.0.mlp.fc1.weight"].shape[0]),
        num_hidden_layers=len(layers),
        num_attention_heads=max(1, hidden // 64),
        patch_size=int(patch.shape[-1]),
        image_size=side * int(patch.shape[-1]),
    )


def load(settings: Any) -> Loaded:
    """Load ``settings`` (a :class:`~reasonseg_ros.config.SegTokenConfig`)."""
    if not settings.checkpoint:
        raise ConfigError("reasoner.seg_token.checkpoint is not set: give a checkpoint folder or hub id")
    folder = resolve_folder(settings.checkpoint)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{folder} has no config.json")
    config = json.loads(config_path.read_text())
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    state = read_state(weight_files(folder))
    name = settings.layout if settings.layout != "auto" else guess_layout(config, state, tokenizer.get_vocab())
    layout = LAYOUTS[name]
    for token in filter(None, (layout.seg_token, layout.rej_token)):
        if token not in tokenizer.get_vocab():
            raise CheckpointError(f"the tokenizer in {folder} has no {token} token: is this a {name} checkpoint?")
    merged = merge_lora(state, settings.lora_alpha)
    split = split_state(state)
    del state
    notes = [f"layout {name}"] + ([f"ignored {len(split.ignored)} recomputed buffers"] if split.ignored else [])
    if merged:
        notes.append(f"merged LoRA into {merged} layers (alpha {settings.lora_alpha:g})")
    model = assemble(split.model, config, settings, layout, notes)
    try:
        model.image_processor = clip_processor(model.image_size, folder)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}/preprocessor_config.json: {exc}") from exc
    return Loaded(model, tokenizer, layout, config, split.sam, notes)


def assemble(state: dict[str, Any], config: dict[str, Any], settings: Any, layout: Layout, notes: list[str]) -> Any:
    """Build the model at the checkpoint's sizes and move the tensors in, checking every key."""
    projector = _projector_kind(state, config, settings.projector)
    text_config = transformers.LlamaConfig(**{k: config[k] for k in LLAMA_KEYS if k in config})
    if "language_model.model.embed_tokens.weight" in state:
        text_config.vocab_size = int(state["language_model.model.embed_tokens.weight"].shape[0])
    has_tower = any(k.startswith("vision_tower.") for k in state)
    if has_tower:
        vision = transformers.CLIPVisionModel(vision_config_from_state(state))
    else:
        tower = (
            settings.vision_tower or config.get("mm_vision_tower") or config.get("vision_tower") or layout.vision_tower
        )
        vision = transformers.CLIPVisionModel.from_pretrained(tower)
        notes.append(f"vision tower from {tower}")
    if settings.image_size is not None and settings.image_size != vision.config.image_size:
        raise ConfigError(
            f"reasoner.seg_token.image_size is {settings.image_size} but the vision tower takes "
            f"{vision.config.image_size}: remove the override or pick the matching tower"
        )
    with torch.device("meta"):
        language = transformers.LlamaForCausalLM(text_config)
    model = SegTokenModel(vision, language, projector, select_layer=int(config.get("mm_vision_select_layer", -2)))
    if any(k.startswith("memory_encoder.") for k in state):
        from reasonseg_ros.reasoner.seg_token.segllm import MemoryEncoder

        model.memory_encoder = MemoryEncoder(model.hidden_size)
    expected = model.state_dict()
    if not any(k.startswith(TOWER) for k in expected):
        state = {("vision_tower." + k[len(TOWER) :] if k.startswith(TOWER) else k): v for k, v in state.items()}
    unexpected = sorted(k for k in state if k not in expected)
    if unexpected:
        shown = ", ".join(checkpoint_key(k) for k in unexpected[:5])
        raise CheckpointError(f"{len(unexpected)} checkpoint keys match nothing in the {layout.name} model: {shown}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"checkpoint key {checkpoint_key(key)} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[key].shape)}: the checkpoint and its config.json disagree"
            )
    tied = text_config.tie_word_embeddings and "language_model.lm_head.weight" not in state
    missing = sorted(k for k in expected if k not in state and not k.startswith("vision_tower."))
    if tied:
        missing = [k for k in missing if k != "language_model.lm_head.weight"]
    if missing:
        shown = ", ".join(checkpoint_key(k) for k in missing[:5])
        raise CheckpointError(f"{len(missing)} model weights are not in the checkpoint: {shown}")
    model.load_state_dict(state, strict=False, assign=True)
    if tied:
        language.tie_weights()
    _rebuild_buffers(language, text_config)
    dtype = DTYPES[settings.dtype]
    model = model.to(dtype)
    if settings.load_in_8bit or settings.load_in_4bit:
        quantize_language_model(model, settings)
    return model.to(settings.device).eval()


def _projector_kind(state: dict[str, Any], config: dict[str, Any], override: str) -> str:
    found = "mlp2x_gelu" if "mm_projector.2.weight" in state else "linear" if "mm_projector.weight" in state else None
    if found is None:
        raise CheckpointError("the checkpoint has no model.mm_projector weights")
    wanted = override if override != "auto" else config.get("mm_projector_type", found)
    if wanted != found:
        raise CheckpointError(
            f"the checkpoint's model.mm_projector is {found} but {wanted} was asked for "
            "(reasoner.seg_token.projector or mm_projector_type in config.json)"
        )
    return found


def _rebuild_buffers(language: Any, text_config: Any) -> None:
    """Non-persistent buffers stay on the meta device after ``assign``; recompute them."""
    rotary = language.model.rotary_emb
    language.model.rotary_emb = type(rotary)(config=text_config)
    left = [n for n, b in language.named_buffers() if b.is_meta] + [
        n for n, p in language.named_parameters() if p.is_meta
    ]
    if left:
        raise CheckpointError(f"weights not loaded: {left[:5]}")


def quantize_language_model(model: SegTokenModel, settings: Any) -> None:
    """Swap the decoder's linear layers for bitsandbytes 8-bit or 4-bit (NF4) ones; CUDA only."""
    if not available("bitsandbytes"):
        raise ConfigError(
            "load_in_8bit / load_in_4bit need bitsandbytes: pip install bitsandbytes (CUDA only), or set both to false"
        )
    if not str(settings.device).startswith("cuda"):
        raise ConfigError("load_in_8bit / load_in_4bit run on CUDA only: set reasoner.seg_token.device: cuda")
    bnb = require("bitsandbytes")
    compute = DTYPES[settings.dtype] if settings.dtype != "float32" else torch.float16
    for parent in list(model.language_model.model.layers.modules()):
        for child_name, child in list(parent.named_children()):
            if not isinstance(child, torch.nn.Linear):
                continue
            bias = child.bias is not None
            if settings.load_in_4bit:
                new = bnb.nn.Linear4bit(child.in_features, child.out_features, bias, compute, quant_type="nf4")
                new.weight = bnb.nn.Params4bit(child.weight.data.to(compute), requires_grad=False, quant_type="nf4")
            else:
                new = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias, has_fp16_weights=False)
                new.weight = bnb.nn.Int8Params(child.weight.data.to(torch.float16), requires_grad=False)
            if bias:
                new.bias = torch.nn.Parameter(child.bias.data.to(compute), requires_grad=False)
            setattr(parent, child_name, new)
