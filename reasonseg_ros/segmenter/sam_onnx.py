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

"""``segmenter.backend: onnx``: the exported SAM graphs in ONNX Runtime (CPU, CUDA or TensorRT provider)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.segmenter.export import DECODER_FILE, ENCODER_FILE
from reasonseg_ros.segmenter.exported_io import DecoderTokens
from reasonseg_ros.segmenter.ort_runner import OrtRunner, open_ort


def _open(part: str, model_dir: Path, manifest: dict[str, Any], config: SegmenterConfig) -> OrtRunner:
    cache = config.onnx.trt_engine_cache_dir
    cache_dir = Path(cache).expanduser() if cache else model_dir / "ort_trt_cache"
    file = ENCODER_FILE if part == "encoder" else DECODER_FILE
    return open_ort(model_dir / file, part, config.onnx, config.export, cache_dir, int(manifest["channels"]))


def _where(runner: OrtRunner) -> str:
    return f"onnxruntime {runner.providers[0]}"


class OrtEncoder:
    def __init__(self, runner: OrtRunner) -> None:
        self.runner = runner
        self.where = _where(runner)

    @classmethod
    def open(cls, model_dir: Path, manifest: dict[str, Any], config: SegmenterConfig) -> OrtEncoder:
        return cls(_open("encoder", model_dir, manifest, config))

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        return self.runner.run({"image": pixels})[0]


class OrtDecoder:
    max_prompts = 0
    max_tokens = 0

    def __init__(self, runner: OrtRunner) -> None:
        self.runner = runner
        self.where = _where(runner)

    @classmethod
    def open(cls, model_dir: Path, manifest: dict[str, Any], config: SegmenterConfig) -> OrtDecoder:
        return cls(_open("decoder", model_dir, manifest, config))

    def decode(self, features: Any, tokens: DecoderTokens) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(features, np.ndarray):  # mixed mode: an embedding from the TensorRT encoder
            features = features.detach().float().cpu().numpy()
        masks, iou = self.runner.run(
            {
                "image_embeddings": features,
                "point_coords": tokens.coords,
                "point_labels": tokens.labels,
                "token_embeddings": tokens.embeddings,
            }
        )
        return masks, iou
