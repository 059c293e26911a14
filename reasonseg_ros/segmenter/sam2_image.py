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

"""SAM 2.1 as a segmenter (``segmenter.backend: sam2``), on the ``sam2`` package's own modules.

:class:`Sam2Model` holds one SAM 2.1 model and its image preprocessing; the
segmenter and the ``sam2`` tracker share one when their settings agree, and
with it the image encode of a frame both use (a one-frame memo).
"""

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
from reasonseg_ros.segmenter.sam_torch import load_state_dict, set_threads
from reasonseg_ros.types import Prompt

SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
SAM2_FILES = {
    "sam2.1_hiera_t": "sam2.1_hiera_tiny.pt",
    "sam2.1_hiera_s": "sam2.1_hiera_small.pt",
    "sam2.1_hiera_b+": "sam2.1_hiera_base_plus.pt",
    "sam2.1_hiera_l": "sam2.1_hiera_large.pt",
}
PAD_LABEL = -1
BOX_LABELS = (2, 3)
"""SAM 2 takes a box as its two corners, labelled 2 and 3, before any point."""


def require_sam2(purpose: str) -> Any:
    """The ``sam2.build_sam`` module, or an error naming the extra that installs it."""
    require("torch", purpose)
    return require("sam2.build_sam", purpose)


def resolve_sam2_checkpoint(model: str, checkpoint: str | None, cache_dir: str, setting: str) -> Path:
    """The weights file of ``model``: ``checkpoint`` if given, else the official file in ``cache_dir``."""
    if model not in SAM2_FILES:
        raise CheckpointError(f"unknown SAM 2.1 model '{model}' (known: {', '.join(SAM2_FILES)})")
    name = SAM2_FILES[model]
    path = Path(checkpoint).expanduser() if checkpoint else Path(cache_dir).expanduser() / name
    if not path.is_file():
        where = f"{setting}.checkpoint" if checkpoint else f"{setting}.cache_dir ({path.parent})"
        raise CheckpointError(
            f"SAM 2.1 checkpoint {path} not found: download {SAM2_URL}{name} into {where} "
            f"(`reasonseg download {model}` does, verified) or set {setting}.checkpoint to the file"
        )
    return path


class Sam2Model:
    """One SAM 2.1 model (``sam2``'s ``SAM2Base``) with its preprocessing and a one-frame encode memo."""

    def __init__(self, model: Any, device: str = "cpu", name: str = "SAM 2.1", key: tuple = ()) -> None:
        torch = require("torch", "SAM 2.1")
        transforms = require("sam2.utils.transforms", "SAM 2.1")
        self.torch = torch
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.name = name
        self.key = key
        """What identifies the weights (model, checkpoint or random, device): equal keys may share this model."""
        self.image_size = int(model.image_size)
        self.transforms = transforms.SAM2Transforms(resolution=self.image_size, mask_threshold=0.0)
        self._lock = threading.Lock()
        self._memo: tuple[np.ndarray, dict[str, Any]] | None = None

    @classmethod
    def build(
        cls,
        model: str,
        checkpoint: str | None,
        cache_dir: str,
        device: str,
        random_weights: bool,
        setting: str,
        hydra_overrides: Sequence[str] = (),
    ) -> Sam2Model:
        """Build ``model`` (e.g. ``sam2.1_hiera_t``) and load its weights; a missing file fails before building."""
        build = require_sam2(f"{setting} (SAM 2.1)")
        torch = require("torch")
        path = None if random_weights else resolve_sam2_checkpoint(model, checkpoint, cache_dir, setting)
        state = None if path is None else load_state_dict(path, "SAM 2.1")
        config = f"configs/sam2.1/{model}.yaml"
        if random_weights:
            with torch.random.fork_rng():  # the same random weights every time: replays stay repeatable
                torch.manual_seed(0)
                sam = build.build_sam2(config, None, device="cpu", hydra_overrides_extra=list(hydra_overrides))
        else:
            sam = build.build_sam2(config, None, device="cpu", hydra_overrides_extra=list(hydra_overrides))
            try:
                sam.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                detail = " ".join(str(exc).split())[:300]
                raise CheckpointError(f"{path} does not match SAM 2.1 {model}: {detail}") from exc
        weights = "random weights" if path is None else str(path)
        return cls(sam, device, f"SAM 2.1 {model} ({weights})", (model, str(path) if path else "random", device))

    def preprocess(self, image: np.ndarray) -> Any:
        """``1×3×S×S`` normalised input tensor of an ``H×W×3`` uint8 RGB image (``SAM2ImagePredictor``'s transform)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"SAM 2.1 needs an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
        return self.transforms(np.ascontiguousarray(image))[None].to(self.device)

    def encode(self, image: np.ndarray) -> dict[str, Any]:
        """The image encoder's output (``backbone_fpn`` and ``vision_pos_enc``) for ``image``.

        The last frame's encode is kept: the tracker and a round on the same frame (the same array object)
        encode it once. Frames are never changed in place, so identity is a safe key.
        """
        with self._lock:
            if self._memo is not None and self._memo[0] is image:
                return self._memo[1]
        with self.torch.inference_mode():
            out = self.model.forward_image(self.preprocess(image))
        features = {"backbone_fpn": list(out["backbone_fpn"]), "vision_pos_enc": list(out["vision_pos_enc"])}
        with self._lock:
            self._memo = (image, features)
        return features


class Sam2ImageSegmenter:
    """Embeds frames and decodes batches of box/point prompts with SAM 2.1."""

    def __init__(self, sam2: Sam2Model, multimask: bool = True, batch_size: int = 0) -> None:
        self.sam2 = sam2
        self.multimask = multimask
        self.batch_size = batch_size
        self.name = f"sam2 {sam2.name}"

    @classmethod
    def from_config(cls, config: SegmenterConfig) -> Sam2ImageSegmenter:
        set_threads(config.threads)
        sam2 = Sam2Model.build(
            config.sam2.model, config.checkpoint, config.cache_dir, config.device, config.random_weights, "segmenter"
        )
        return cls(sam2, config.multimask, config.decode_batch_size)

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        size = self.sam2.image_size
        return ImageEmbedding(self.sam2.encode(image), (int(image.shape[0]), int(image.shape[1])), (size, size))

    def decode(self, embedding: ImageEmbedding, prompts: Sequence[Prompt]) -> DecodeResult:
        """Decode all prompts, ``batch_size`` per decoder call (0: one per call on a CPU, all at once on a GPU)."""
        if not prompts:
            raise InputError("no prompts to decode")
        size = self.batch_size or (1 if self.sam2.device.type == "cpu" else len(prompts))
        parts = [self._decode_batch(embedding, prompts[i : i + size]) for i in range(0, len(prompts), size)]
        return DecodeResult(np.concatenate([p.masks for p in parts]), np.concatenate([p.scores for p in parts]))

    def _decode_batch(self, embedding: ImageEmbedding, prompts: Sequence[Prompt]) -> DecodeResult:
        torch, model = self.sam2.torch, self.sam2.model
        coords, labels = self._points(prompts, embedding.original_size)
        fpn = embedding.features["backbone_fpn"]
        image_embed = fpn[-1]
        if model.directly_add_no_mem_embed:
            # A single image is a first frame with no memory: SAM 2 adds its "no memory" embedding.
            image_embed = image_embed + model.no_mem_embed.reshape(1, -1, 1, 1)
        with torch.inference_mode():
            sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
            low_res, iou, _, _ = model.sam_mask_decoder(
                image_embeddings=image_embed,
                image_pe=model.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=self.multimask,
                repeat_image=len(prompts) > 1,
                high_res_features=list(fpn[:-1]),
            )
            rows = torch.arange(len(prompts), device=iou.device)
            choice = iou.argmax(dim=1)
            best = low_res[rows, choice][:, None]
            masks = self.sam2.transforms.postprocess_masks(best, embedding.original_size)[:, 0] > 0.0
            scores = iou[rows, choice]
        return DecodeResult(masks.cpu().numpy(), scores.float().cpu().numpy())

    def _points(self, prompts: Sequence[Prompt], original_size: tuple[int, int]) -> tuple[Any, Any]:
        """All prompts as SAM 2 point tokens in its input frame.

        Box corners first (labels 2, 3), then the points; slots a prompt does not use get the neutral
        padding label -1.
        """
        torch = self.sam2.torch
        for p in prompts:
            if p.embedding is not None:
                raise InputError(
                    "the sam2 segmenter takes boxes and points; [SEG] embeddings need the SAM they were "
                    "trained with (segmenter.backend: torch, onnx or tensorrt)"
                )
            if p.points is None and p.box is None:
                raise InputError("a mask prompt is used as the object's mask, not decoded")
        any_box = any(p.box is not None for p in prompts)
        n_points = max((len(p.points) for p in prompts if p.points is not None), default=0)
        slots = (2 if any_box else 0) + n_points
        coords = np.zeros((len(prompts), slots, 2), dtype=np.float32)
        labels = np.full((len(prompts), slots), PAD_LABEL, dtype=np.int32)
        for i, p in enumerate(prompts):
            at = 0
            if any_box:
                if p.box is not None:
                    coords[i, :2] = p.box.reshape(2, 2)
                    labels[i, :2] = BOX_LABELS
                at = 2
            if p.points is not None:
                coords[i, at : at + len(p.points)] = p.points
                labels[i, at : at + len(p.points)] = p.point_labels
        h, w = original_size
        points = torch.as_tensor(coords, device=self.sam2.device)
        # Normalise, then scale to the input size, in this order (as SAM2Transforms does; same float rounding).
        points[..., 0] = points[..., 0] / w
        points[..., 1] = points[..., 1] / h
        return points * self.sam2.image_size, torch.as_tensor(labels, device=self.sam2.device)
