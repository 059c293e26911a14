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

"""Loading LISA / GSVA / READ checkpoints written at tiny sizes with the published key names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers", reason="the vlm extra is not installed")
torch = pytest.importorskip("torch", reason="the torch extra is not installed")
safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors is not installed")

from reasonseg_ros.config import SegTokenConfig, load_config  # noqa: E402
from reasonseg_ros.engine import Engine  # noqa: E402
from reasonseg_ros.errors import CheckpointError  # noqa: E402
from reasonseg_ros.reasoner.seg_token import loader  # noqa: E402
from reasonseg_ros.types import Instruction  # noqa: E402
from tests.helpers import frame  # noqa: E402
from tests.seg_token_tiny import tiny_model, tiny_tokenizer  # noqa: E402

# Our module prefix -> the prefix the published checkpoints use (written out here, not taken from layouts.py).
PUBLISHED = [
    ("text_hidden_fcs.", "model.text_hidden_fcs."),
    ("mm_projector.", "model.mm_projector."),
    ("vision_tower.", "model.vision_tower.vision_tower."),
    ("language_model.model.", "model."),
    ("language_model.lm_head.", "lm_head."),
]
EXACT = {
    "all": [
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.norm.weight",
        "lm_head.weight",
        "model.text_hidden_fcs.0.0.weight",
        "model.text_hidden_fcs.0.0.bias",
        "model.text_hidden_fcs.0.2.weight",
        "model.text_hidden_fcs.0.2.bias",
        "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight",
        "model.vision_tower.vision_tower.vision_model.encoder.layers.1.self_attn.k_proj.weight",
        "model.visual_model.image_encoder.patch_embed.proj.weight",
        "model.visual_model.prompt_encoder.not_a_point_embed.weight",
        "model.visual_model.mask_decoder.iou_token.weight",
    ],
    "linear": ["model.mm_projector.weight", "model.mm_projector.bias"],
    "mlp2x_gelu": ["model.mm_projector.0.weight", "model.mm_projector.2.weight", "model.mm_projector.2.bias"],
}
CASES = {
    "lisa": (224, "linear", "LISAForCausalLM", "safetensors"),
    "gsva": (224, "linear", "LisaGSVAForCausalLM", "bin-sharded"),
    "read": (336, "mlp2x_gelu", "READForCausalLM", "safetensors-sharded"),
}


def published_state(model: Any, sam: Any) -> dict[str, Any]:
    state = {}
    for key, tensor in model.state_dict().items():
        if key.startswith("vision_tower.") and not key.startswith("vision_tower.vision_model."):
            key = "vision_tower.vision_model." + key[len("vision_tower.") :]  # transformers 5 flattened CLIP
        for ours, theirs in PUBLISHED:
            if key.startswith(ours):
                state[theirs + key[len(ours) :]] = tensor.clone()
                break
        else:
            raise AssertionError(f"no published name for {key}")
    state.update({"model.visual_model." + k: v.clone() for k, v in sam.state_dict().items()})
    return state


def write_checkpoint(folder: Path, state: dict[str, Any], image_size: int, projector: str, arch: str, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = tiny_model(image_size, projector).language_model.config.to_dict()
    config.update(
        architectures=[arch],
        mm_vision_tower=f"openai/clip-vit-large-patch14{'-336' if image_size == 336 else ''}",
        mm_use_im_start_end=True,
        mm_vision_select_layer=-2,
        out_dim=256,
    )
    if projector != "linear":
        config["mm_projector_type"] = projector
    (folder / "config.json").write_text(json.dumps(config))
    tiny_tokenizer().save_pretrained(str(folder))
    keys = sorted(state)
    if fmt == "safetensors":
        safetensors_torch.save_file(state, str(folder / "model.safetensors"))
        return
    halves = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    ext = "safetensors" if fmt.startswith("safetensors") else "bin"
    stem = "model" if ext == "safetensors" else "pytorch_model"
    weight_map = {}
    for i, part in enumerate(halves):
        name = f"{stem}-0000{i + 1}-of-00002.{ext}"
        shard = {k: state[k].contiguous() for k in part}
        if ext == "safetensors":
            safetensors_torch.save_file(shard, str(folder / name))
        else:
            torch.save(shard, folder / name)
        weight_map.update(dict.fromkeys(part, name))
    index = f"{stem}.{ext}.index.json"
    (folder / index).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory, tiny_sam: Any) -> dict[str, tuple[Path, dict[str, Any]]]:
    made = {}
    for name, (size, projector, arch, fmt) in CASES.items():
        state = published_state(tiny_model(size, projector), tiny_sam)
        folder = tmp_path_factory.mktemp(name)
        write_checkpoint(folder, state, size, projector, arch, fmt)
        made[name] = (folder, state)
    return made


@pytest.mark.parametrize("name", list(CASES))
def test_every_published_key_maps_and_nothing_is_left_over(name: str, checkpoints: Any, tiny_sam: Any) -> None:
    folder, state = checkpoints[name]
    size, projector, _, _ = CASES[name]
    for key in EXACT["all"] + EXACT[projector]:
        assert key in state, key
    loaded = loader.load(SegTokenConfig(checkpoint=str(folder)))  # layout auto-detected
    assert loaded.layout.name == name
    model = loaded.model
    assert model.num_patches == (size // 14) ** 2
    ours = model.state_dict()
    source = tiny_model(size, projector).state_dict()
    assert set(ours) == set(source)
    for key, tensor in source.items():
        assert torch.equal(ours[key], tensor), key
    assert set(loaded.sam_state) == set(tiny_sam.state_dict())
    for key, tensor in tiny_sam.state_dict().items():
        assert torch.equal(loaded.sam_state[key], tensor), key


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("shape", "model.mm_projector.weight"),
        ("extra", "model.extra_head.weight"),
        ("missing", "model.text_hidden_fcs.0.2.bias"),
    ],
)
def test_a_mismatch_fails_naming_the_key(change: str, named: str, checkpoints: Any, tmp_path: Path) -> None:
    _, state = checkpoints["lisa"]
    state = dict(state)
    if change == "shape":
        state[named] = torch.zeros(3, 5)
    elif change == "extra":
        state[named] = torch.zeros(2)
    else:
        del state[named]
    write_checkpoint(tmp_path / "ckpt", state, 224, "linear", "LISAForCausalLM", "safetensors")
    with pytest.raises(CheckpointError, match=named.replace(".", r"\.")):
        loader.load(SegTokenConfig(checkpoint=str(tmp_path / "ckpt"), layout="lisa"))


def test_a_projector_override_that_disagrees_is_refused(checkpoints: Any) -> None:
    folder, _ = checkpoints["lisa"]
    with pytest.raises(CheckpointError, match="mm_projector"):
        loader.load(SegTokenConfig(checkpoint=str(folder), projector="mlp2x_gelu"))


def test_engine_from_config_uses_the_sam_inside_the_checkpoint(checkpoints: Any, tiny_sam: Any) -> None:
    folder, _ = checkpoints["read"]
    config = load_config(
        None,
        {
            "reasoner.backend": "seg_token",
            "reasoner.seg_token.checkpoint": str(folder),
            "reasoner.seg_token.max_new_tokens": 4,
            "segmenter.checkpoint": "from_reasoner",
        },
    )
    engine = Engine.from_config(config)
    assert "READ" in engine.reasoner.name.upper() and "SasP" in engine.reasoner.name
    assert "vit_tiny" in engine.segmenter.name
    for key, tensor in tiny_sam.state_dict().items():
        assert torch.equal(engine.segmenter.sam.state_dict()[key], tensor), key
    engine.submit_frame(frame(height=60, width=90))
    result = engine.handle(Instruction("segment the mug"))
    # random weights rarely write [SEG]: either a clean error round or a round with masks
    assert result.ok or result.error_kind == "model_failure", result.error


def test_segllm_weights_switch_the_memory_module_on(checkpoints: Any, tmp_path: Path) -> None:
    from reasonseg_ros.errors import ConfigError
    from reasonseg_ros.reasoner.seg_token.reasoner import SegTokenReasoner

    _, state = checkpoints["gsva"]
    hidden = state["model.embed_tokens.weight"].shape[1]
    with_memory = {
        **state,
        "model.segllm.box_proj.weight": torch.ones(hidden, 4),
        "model.segllm.box_proj.bias": torch.zeros(hidden),
    }
    write_checkpoint(tmp_path / "segllm", with_memory, 224, "linear", "LisaGSVAForCausalLM", "safetensors")
    loaded = loader.load(SegTokenConfig(checkpoint=str(tmp_path / "segllm")))
    assert loaded.model.memory_encoder is not None
    assert torch.equal(loaded.model.memory_encoder.box_proj.weight, torch.ones(hidden, 4))
    plain = loader.load(SegTokenConfig(checkpoint=str(checkpoints["gsva"][0])))
    with pytest.raises(ConfigError, match="segllm"):
        SegTokenReasoner(plain.model, plain.tokenizer, plain.layout, SegTokenConfig(segllm_memory=True))


@pytest.mark.parametrize("name", ["seg_token_read7b", "seg_token_lisa7b", "seg_token_gsva7b"])
def test_shipped_configs_validate(name: str) -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "config" / f"{name}.yaml")
    assert config.reasoner.backend == "seg_token" and config.segmenter.checkpoint == "from_reasoner"


def test_quantisation_without_bitsandbytes_or_cuda_is_a_clear_error(checkpoints: Any) -> None:
    from reasonseg_ros.deps import available
    from reasonseg_ros.errors import ConfigError

    folder, _ = checkpoints["lisa"]
    hint = "cuda" if available("bitsandbytes") else "bitsandbytes"
    with pytest.raises(ConfigError, match=hint):
        loader.load(SegTokenConfig(checkpoint=str(folder), load_in_4bit=True))


def test_tower_from_mm_vision_tower_when_the_checkpoint_lacks_it(checkpoints: Any, tmp_path: Path) -> None:
    _, state = checkpoints["lisa"]
    tower = tiny_model(224, "linear").vision_tower
    tower.save_pretrained(str(tmp_path / "clip"))
    without = {k: v for k, v in state.items() if not k.startswith("model.vision_tower.")}
    write_checkpoint(tmp_path / "ckpt", without, 224, "linear", "LISAForCausalLM", "safetensors")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    config["mm_vision_tower"] = str(tmp_path / "clip")
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    loaded = loader.load(SegTokenConfig(checkpoint=str(tmp_path / "ckpt")))
    assert any("vision tower from" in note for note in loaded.notes)
    for key, tensor in tower.state_dict().items():
        assert torch.equal(loaded.model.vision_tower.state_dict()[key], tensor), key


def test_layout_is_guessed_without_architectures_and_peft_prefixes_are_stripped(
    checkpoints: Any, tmp_path: Path
) -> None:
    from reasonseg_ros.reasoner.seg_token.layouts import guess_layout

    _, state = checkpoints["gsva"]
    wrapped = {"base_model.model." + k: v for k, v in state.items()}
    folder = tmp_path / "gsva"
    write_checkpoint(folder, wrapped, 224, "linear", "LlavaLlamaForCausalLM", "safetensors")
    loaded = loader.load(SegTokenConfig(checkpoint=str(folder)))
    assert loaded.layout.name == "gsva"  # the tokenizer has [REJ]
    assert loaded.model.mm_projector.weight.shape == state["model.mm_projector.weight"].shape
    plain_tokens = ["[SEG]", "<im_start>"]
    assert guess_layout({}, ["model.mm_projector.2.weight"], plain_tokens) == "read"
    assert guess_layout({"mm_projector_type": "mlp2x_gelu"}, [], plain_tokens) == "read"
    assert guess_layout({}, ["model.mm_projector.weight"], plain_tokens) == "lisa"
    assert guess_layout({"architectures": ["READForCausalLM"]}, [], ["[REJ]"]) == "read"


def test_from_reasoner_needs_a_seg_token_reasoner() -> None:
    from reasonseg_ros.config import SegmenterConfig
    from reasonseg_ros.errors import ConfigError
    from reasonseg_ros.reasoner.prompt import PromptReasoner
    from reasonseg_ros.segmenter import create_segmenter

    config = SegmenterConfig(checkpoint="from_reasoner")
    with pytest.raises(ConfigError, match="built first"):
        create_segmenter(config)
    with pytest.raises(ConfigError, match="seg_token"):
        create_segmenter(config, PromptReasoner())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"segmenter.checkpoint": "from_reasoner"}, "from_reasoner"),
        ({"reasoner.seg_token.instruction_format": "no placeholder"}, "instruction_format"),
        ({"reasoner.seg_token.sasp.positive_threshold": 0.1}, "thresholds"),
        ({"reasoner.seg_token.sasp.num_points": 0}, "num_points"),
        ({"reasoner.seg_token.layout": "segllm"}, "layout"),
    ],
)
def test_bad_seg_token_settings_fail_at_load(overrides: dict[str, Any], message: str) -> None:
    from reasonseg_ros.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


@pytest.mark.parametrize("newer_peft", [False, True])
def test_unmerged_lora_factors_are_folded_in(newer_peft: bool, checkpoints: Any, tmp_path: Path) -> None:
    _, state = checkpoints["gsva"]
    base = "model.layers.0.self_attn.q_proj"
    weight = state[f"{base}.weight"]
    down = torch.randn(2, weight.shape[1], generator=torch.Generator().manual_seed(0))
    up = torch.randn(weight.shape[0], 2, generator=torch.Generator().manual_seed(1))
    saved = {"base_model.model." + k: v for k, v in state.items()}  # as zero_to_fp32 writes a PEFT model
    if newer_peft:
        saved[f"base_model.model.{base}.base_layer.weight"] = saved.pop(f"base_model.model.{base}.weight")
    saved[f"base_model.model.{base}.lora_A.default.weight"] = down
    saved[f"base_model.model.{base}.lora_B.default.weight"] = up
    write_checkpoint(tmp_path / "lora", saved, 224, "linear", "LisaGSVAForCausalLM", "bin-sharded")
    loaded = loader.load(SegTokenConfig(checkpoint=str(tmp_path / "lora"), lora_alpha=16))
    got = loaded.model.state_dict()[f"language_model.{base}.weight"]
    assert torch.allclose(got, weight + up @ down * (16 / 2), atol=1e-5)
    assert any("merged LoRA into 1 layers" in note for note in loaded.notes)
