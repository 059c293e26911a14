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

"""The segmenter over exported SAM graphs: ONNX Runtime, TensorRT, or one for each half (mixed mode)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.errors import CheckpointError, ConfigError, InputError
from reasonseg_ros.segmenter.base import DecodeResult, ImageEmbedding
from reasonseg_ros.segmenter.export import DECODER_FILE, ENCODER_FILE, read_manifest
from reasonseg_ros.segmenter.exported_io import (
    DecoderTokens,
    choose_outputs,
    decoder_tokens,
    encoder_input,
    upscale_masks,
)
from reasonseg_ros.segmenter.prompt_batch import batch_prompts
from reasonseg_ros.types import Prompt

log = logging.getLogger(__name__)


class EncoderRunner(Protocol):
    where: str
    """Where it runs, for the segmenter's name (``onnxruntime CPUExecutionProvider``, ``tensorrt fp16``)."""

    def encode(self, pixels: np.ndarray) -> Any:
        """``(1, 3, S, S)`` float32 pixels → image embedding (numpy or a device tensor)."""
        ...


class DecoderRunner(Protocol):
    where: str
    max_prompts: int
    """Most prompts per call (0: no limit)."""
    max_tokens: int
    """Most tokens per prompt (0: no limit)."""

    def decode(self, features: Any, tokens: DecoderTokens) -> tuple[Any, np.ndarray]:
        """Low-res mask logits ``(N, 4, h, w)`` (numpy or a device tensor) and IoU ``(N, 4)`` numpy."""
        ...


def model_dir_of(config: SegmenterConfig) -> Path:
    if config.onnx.model_dir:
        return Path(config.onnx.model_dir).expanduser()
    return Path(config.cache_dir).expanduser() / "onnx" / config.model_type


class ExportedSamSegmenter:
    """Same interface and masks as the torch segmenter, on exported graphs."""

    def __init__(
        self,
        encoder: EncoderRunner,
        decoder: DecoderRunner,
        manifest: dict[str, Any],
        multimask: bool = True,
        batch_size: int = 0,
        name: str = "exported SAM",
    ) -> None:
        self.encoder = encoder
        self.decoder = decoder
        self.random_weights = manifest.get("weights") == "random weights"
        """The exported graphs carry random weights (``reasonseg export --random-weights``)."""
        self.image_size = int(manifest["image_size"])
        self.channels = int(manifest["channels"])
        self.mask_threshold = float(manifest.get("mask_threshold", 0.0))
        self.multimask = multimask
        self.batch_size = batch_size
        self.name = name

    @classmethod
    def from_config(cls, config: SegmenterConfig) -> ExportedSamSegmenter:
        model_dir = model_dir_of(config)
        for part in (ENCODER_FILE, DECODER_FILE):
            if not (model_dir / part).is_file():
                raise CheckpointError(
                    f"ONNX model not found: {model_dir / part}; export it with `reasonseg export --sam "
                    f"{config.model_type} --checkpoint FILE --out {model_dir}` or set segmenter.onnx.model_dir"
                )
        manifest = read_manifest(model_dir)
        if manifest.get("model_type") != config.model_type:
            raise CheckpointError(
                f"{model_dir} holds SAM {manifest.get('model_type')}, but segmenter.model_type is "
                f"{config.model_type}: set segmenter.model_type: {manifest.get('model_type')} or export again"
            )
        backends = {
            "encoder": config.encoder_backend or config.backend,
            "decoder": config.decoder_backend or config.backend,
        }
        runners = {part: open_runner(backend, part, model_dir, manifest, config) for part, backend in backends.items()}
        where = runners["encoder"].where
        if runners["decoder"].where != where:
            where = f"encoder {where}, decoder {runners['decoder'].where}"
        weights = manifest.get("weights") or "exported"
        name = f"SAM {config.model_type} ({where}; {weights})"
        return cls(runners["encoder"], runners["decoder"], manifest, config.multimask, config.decode_batch_size, name)

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        pixels, input_size = encoder_input(image, self.image_size)
        features = self.encoder.encode(pixels)
        return ImageEmbedding(features, (int(image.shape[0]), int(image.shape[1])), input_size)

    def decode(self, embedding: ImageEmbedding, prompts: Sequence[Prompt]) -> DecodeResult:
        """All prompts in as few decoder calls as the batch size and the engine's profile allow."""
        if not prompts:
            raise InputError("no prompts to decode")
        size = self.batch_size or len(prompts)
        if self.decoder.max_prompts:
            size = min(size, self.decoder.max_prompts)
        parts = [self._decode_batch(embedding, prompts[i : i + size]) for i in range(0, len(prompts), size)]
        if len(parts) == 1:
            return parts[0]
        return DecodeResult(np.concatenate([p.masks for p in parts]), np.concatenate([p.scores for p in parts]))

    def _decode_batch(self, embedding: ImageEmbedding, prompts: Sequence[Prompt]) -> DecodeResult:
        batch = batch_prompts(prompts, embedding.original_size, embedding.input_size)
        tokens = decoder_tokens(batch, self.channels)
        if self.decoder.max_tokens and tokens.labels.shape[1] > self.decoder.max_tokens:
            raise InputError(
                f"a prompt has {tokens.labels.shape[1]} tokens but the decoder engine takes at most "
                f"{self.decoder.max_tokens}: raise segmenter.export.max_points (or max_embedding_tokens) and rebuild"
            )
        low_res, iou = self.decoder.decode(embedding.features, tokens)
        choice = choose_outputs(iou, prompts, self.multimask)
        rows = np.arange(len(prompts))
        if isinstance(low_res, np.ndarray):
            best = low_res[rows, choice]
        else:
            best = low_res[rows.tolist(), choice.tolist()]
        masks = upscale_masks(best, self.image_size, embedding.input_size, embedding.original_size, self.mask_threshold)
        if not isinstance(masks, np.ndarray):
            masks = masks.cpu().numpy()
        return DecodeResult(masks, iou[rows, choice].astype(np.float32))


def open_runner(
    backend: str, part: str, model_dir: Path, manifest: dict[str, Any], config: SegmenterConfig
) -> EncoderRunner | DecoderRunner:
    """The encoder or decoder half on ``backend`` (``onnx`` or ``tensorrt``)."""
    if backend == "onnx":
        from reasonseg_ros.segmenter.sam_onnx import OrtDecoder, OrtEncoder

        runner_cls = OrtEncoder if part == "encoder" else OrtDecoder
        return runner_cls.open(model_dir, manifest, config)
    if backend == "tensorrt":
        from reasonseg_ros.segmenter.sam_tensorrt import TrtDecoder, TrtEncoder

        runner_cls = TrtEncoder if part == "encoder" else TrtDecoder
        return runner_cls.open(model_dir, manifest, config)
    raise ConfigError(f"segmenter.{part}_backend '{backend}' is not available for exported SAM: use onnx or tensorrt")
