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

"""SAM in PyTorch, on the official ``segment_anything`` modules."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import CheckpointError, InputError
from reasonseg_ros.segmenter.base import DecodeResult, ImageEmbedding
from reasonseg_ros.segmenter.checkpoints import SamArch, arch_name_for_width, arch_of, resolve_checkpoint
from reasonseg_ros.segmenter.prompt_batch import PromptBatch, batch_prompts
from reasonseg_ros.types import Prompt


def build_sam(model_type: str) -> Any:
    """A ``segment_anything.Sam`` of the named architecture with random weights, in eval mode."""
    require("torch", "the torch segmenter")
    arch = arch_of(model_type)
    if arch.image_size != 1024:
        return _build_small_sam(arch)
    build = require("segment_anything.build_sam", "the torch segmenter")
    return build._build_sam(
        encoder_embed_dim=arch.embed_dim,
        encoder_depth=arch.depth,
        encoder_num_heads=arch.num_heads,
        encoder_global_attn_indexes=list(arch.global_attn_indexes),
        checkpoint=None,
    )


def _build_small_sam(arch: SamArch) -> Any:
    """SAM's own classes at a smaller input size, which ``build_sam`` fixes at 1024."""
    from functools import partial

    torch = require("torch")
    modeling = require("segment_anything.modeling", "the torch segmenter")
    patch, channels = 16, 256
    grid = arch.image_size // patch
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=arch.depth,
            embed_dim=arch.embed_dim,
            img_size=arch.image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch.num_heads,
            patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=arch.global_attn_indexes,
            window_size=min(14, grid),
            out_chans=channels,
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=channels,
            image_embedding_size=(grid, grid),
            input_image_size=(arch.image_size, arch.image_size),
            mask_in_chans=16,
        ),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=channels, mlp_dim=2048, num_heads=8),
            transformer_dim=channels,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    )
    return sam.eval()


def _random_sam(model_type: str) -> Any:
    """The same random weights every time, so that replays stay repeatable."""
    torch = require("torch")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_sam(model_type)


_threads_lock = threading.Lock()


def set_threads(threads: int) -> None:
    """Torch's intra-op thread count for this process (``segmenter.threads``; 0 leaves torch's default).

    It is process-wide: the last segmenter built decides it.
    """
    if threads <= 0:
        return
    torch = require("torch", "the torch segmenter")
    with _threads_lock:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def load_state_dict(path: Path, kind: str = "SAM") -> dict[str, Any]:
    """Read a ``kind`` checkpoint with ``weights_only=True`` (no code in the file is run)."""
    torch = require("torch", "loading SAM checkpoints")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read {kind} checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}; "
            "is the file complete? download it again or point segmenter.checkpoint elsewhere"
        ) from exc
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and set(state) == {wrapper}:
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"{kind} checkpoint {path} holds a {type(state).__name__}, not a state dict")
    return state


def check_arch(state: dict[str, Any], model_type: str, path: Path, setting: str = "segmenter.model_type") -> None:
    """Fail fast, before building the model, when ``state`` is a checkpoint of another architecture."""
    width_key = "image_encoder.patch_embed.proj.weight"
    if width_key in state:
        found = arch_name_for_width(int(state[width_key].shape[0]))
        if found is not None and found != model_type:
            fix = f"set {setting}: {found}" if setting.startswith("segmenter.") else f"use {setting} {found}"
            raise CheckpointError(f"{path} is a SAM {found} checkpoint but {setting} is {model_type}: {fix}")


def load_weights(sam: Any, state: dict[str, Any], model_type: str, path: Path) -> None:
    """Load ``state`` into ``sam``; a checkpoint of another architecture is named as such."""
    check_arch(state, model_type, path)
    try:
        sam.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path} does not match SAM {model_type}: {detail}") from exc


class TorchSamSegmenter:
    """Embeds frames and decodes batches of prompts with ``segment_anything``."""

    def __init__(
        self, sam: Any, device: str = "cpu", multimask: bool = True, batch_size: int = 0, name: str = "torch SAM"
    ) -> None:
        torch = require("torch", "the torch segmenter")
        transforms = require("segment_anything.utils.transforms", "the torch segmenter")
        self._torch = torch
        self.sam = sam.to(device).eval()
        self.device = torch.device(device)
        self.multimask = multimask
        self.batch_size = batch_size
        self.name = name
        self.random_weights = False
        """True when the weights are random (configured, or the fallback of ``segmenter.random_fallback``)."""
        self.checkpoint: str | None = None
        """The weights file loaded, when there is one."""
        self.fallback_reason: str | None = None
        """Why ``segmenter.random_fallback`` was taken (the checkpoint error), when it was."""
        self._resize = transforms.ResizeLongestSide(sam.image_encoder.img_size)

    @classmethod
    def from_config(cls, config: SegmenterConfig) -> TorchSamSegmenter:
        set_threads(config.threads)
        model_type, random, fallback_reason = config.model_type, config.random_weights, None
        if random:
            sam, weights = _random_sam(model_type), "random weights"
        else:
            try:
                # Find and read the file before building the model: a missing file fails in milliseconds.
                path = resolve_checkpoint(config)
            except CheckpointError as exc:
                if config.random_fallback is None:
                    raise
                model_type, random, fallback_reason = config.random_fallback, True, str(exc)
                sam = _random_sam(model_type)
                weights = f"random weights: fallback, no {config.model_type} checkpoint"
            else:
                state = load_state_dict(path)
                sam, weights = build_sam(model_type), str(path)
                load_weights(sam, state, model_type, path)
        name = f"torch SAM {model_type} ({weights})"
        segmenter = cls(sam, config.device, config.multimask, config.decode_batch_size, name)
        segmenter.random_weights = random
        segmenter.checkpoint = None if random else weights
        segmenter.fallback_reason = fallback_reason
        return segmenter

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], config: SegmenterConfig) -> TorchSamSegmenter:
        """A SAM from tensors already in memory (the one inside a seg_token checkpoint); its size is read off them."""
        width_key = "image_encoder.patch_embed.proj.weight"
        model_type = arch_name_for_width(int(state[width_key].shape[0])) if width_key in state else None
        if model_type is None:
            raise CheckpointError("the SAM inside the reasoner's checkpoint is not vit_b, vit_l, vit_h or vit_tiny")
        sam = build_sam(model_type)
        load_weights(sam, state, model_type, Path("<reasoner checkpoint>"))
        name = f"torch SAM {model_type} (from the reasoner's checkpoint)"
        return cls(sam, config.device, config.multimask, config.decode_batch_size, name)

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        torch = self._torch
        # Frames may be strided views of a message buffer (BGR flipped to RGB); torch needs positive strides.
        resized = self._resize.apply_image(np.ascontiguousarray(image))
        pixels = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        with torch.inference_mode():
            features = self.sam.image_encoder(self.sam.preprocess(pixels))
        return ImageEmbedding(features, (image.shape[0], image.shape[1]), (resized.shape[0], resized.shape[1]))

    def decode(self, embedding: ImageEmbedding, prompts: Sequence[Prompt]) -> DecodeResult:
        """Decode all prompts, ``batch_size`` per decoder call.

        The decoder's cost grows linearly with the prompts in a call (each
        prompt attends over all 4096 image tokens), so batching only saves
        call overhead: on a GPU one call for all prompts is fastest, on a CPU
        one prompt per call measured faster (docs/performance.md); batch size
        0 picks that per device.
        """
        size = self.batch_size or (1 if self.device.type == "cpu" else len(prompts))
        if size >= len(prompts):
            return self._decode_batch(embedding, prompts)
        parts = [self._decode_batch(embedding, prompts[i : i + size]) for i in range(0, len(prompts), size)]
        return DecodeResult(np.concatenate([p.masks for p in parts]), np.concatenate([p.scores for p in parts]))

    def _decode_batch(self, embedding: ImageEmbedding, prompts: Sequence[Prompt]) -> DecodeResult:
        torch = self._torch
        batch = batch_prompts(prompts, embedding.original_size, embedding.input_size)
        with torch.inference_mode():
            sparse = self.sparse_embeddings(batch)
            encoder = self.sam.prompt_encoder
            dense = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                len(prompts), -1, *encoder.image_embedding_size
            )
            low_res, iou = self.sam.mask_decoder.predict_masks(
                image_embeddings=embedding.features,
                image_pe=encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
            )
            choice = self._choose(iou, prompts)
            rows = torch.arange(len(prompts), device=iou.device)
            best = low_res[rows, choice][:, None]
            masks = self.sam.postprocess_masks(best, embedding.input_size, embedding.original_size)
            masks = masks[:, 0] > self.sam.mask_threshold
            scores = iou[rows, choice]
        return DecodeResult(masks.cpu().numpy(), scores.float().cpu().numpy())

    def _choose(self, iou: Any, prompts: Sequence[Prompt]) -> Any:
        """Index of the output to keep per prompt.

        Output 0 is SAM's single-mask answer; 1..3 its multimask candidates.
        Sparse-embedding prompts keep output 0, as the ``[SEG]``-token models
        were trained with ``multimask_output=False``.
        """
        torch = self._torch
        single = torch.zeros(len(prompts), dtype=torch.long, device=iou.device)
        if not self.multimask:
            return single
        best = iou[:, 1:].argmax(dim=1) + 1
        uses_embedding = torch.tensor([p.embedding is not None for p in prompts], device=iou.device)
        return torch.where(uses_embedding, single, best)

    def sparse_embeddings(self, batch: PromptBatch) -> Any:
        """SAM sparse prompt tokens ``(N, tokens, 256)``: points, box corners, then embeddings."""
        torch = self._torch
        encoder = self.sam.prompt_encoder
        pad = encoder.not_a_point_embed.weight[0]
        tokens = []
        if batch.point_coords is not None:
            coords = torch.as_tensor(batch.point_coords, device=self.device)
            labels = torch.as_tensor(batch.point_labels, device=self.device)
            tokens.append(encoder._embed_points(coords, labels, pad=False))
        if batch.boxes is not None:
            corners = encoder._embed_boxes(torch.as_tensor(batch.boxes, device=self.device))
            corners[torch.as_tensor(~batch.has_box, device=self.device)] = pad
            tokens.append(corners)
        if batch.embeddings is not None:
            if batch.embeddings.shape[-1] != pad.shape[0]:
                raise InputError(f"prompt embeddings are {batch.embeddings.shape[-1]}-d, SAM expects {pad.shape[0]}-d")
            extra = torch.as_tensor(batch.embeddings, device=self.device, dtype=pad.dtype).clone()
            extra[torch.as_tensor(~batch.embedding_mask, device=self.device)] = pad
            tokens.append(extra)
        return torch.cat(tokens, dim=1)
