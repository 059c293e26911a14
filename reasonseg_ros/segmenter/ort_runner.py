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

"""ONNX Runtime sessions for the exported encoder and decoder, with the execution provider chosen from config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from reasonseg_ros.config import ExportConfig, OnnxConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import CheckpointError, ConfigError, ModelError

log = logging.getLogger(__name__)

DEFAULT_PROVIDERS = OnnxConfig.providers
PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def choose_providers(wanted: str, available: list[str]) -> list[str]:
    """ONNX Runtime provider names for ``wanted`` (``"tensorrt,cuda,cpu"``).

    The ones this ONNX Runtime build lacks are skipped with a log line; CPU is always the last resort.
    The default list (``cuda,cpu``) means "CUDA if there is one": on a machine without it the skip is
    an info line, not a warning; a list the user wrote warns.
    """
    level = logging.INFO if wanted == DEFAULT_PROVIDERS else logging.WARNING
    chosen = []
    for short in [w.strip().lower() for w in wanted.split(",") if w.strip()]:
        if short not in PROVIDER_NAMES:
            raise ConfigError(
                f"segmenter.onnx.providers: unknown provider '{short}' (known: {', '.join(PROVIDER_NAMES)})"
            )
        name = PROVIDER_NAMES[short]
        if name in available:
            chosen.append(name)
        else:
            package = "onnxruntime-gpu" if short in ("cuda", "tensorrt") else "onnxruntime"
            log.log(
                level,
                "ONNX Runtime has no %s here (available: %s); falling back. Install %s built for this CUDA",
                name,
                ", ".join(available),
                package,
            )
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def tensorrt_ep_options(
    onnx_config: OnnxConfig, export: ExportConfig, cache_dir: Path, part: str, channels: int
) -> dict[str, Any]:
    """TensorRT execution-provider options: fp16, engine + timing cache, and the decoder's profile shapes."""
    options: dict[str, Any] = {
        "trt_fp16_enable": onnx_config.trt_fp16,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache_dir),
    }
    if part == "decoder":
        shapes = decoder_profile(export)
        names = ("point_coords", "point_labels", "token_embeddings")
        tails = {"point_coords": "x2", "point_labels": "", "token_embeddings": f"x{channels}"}
        # Only the dynamic inputs: the image embedding's shape is fixed in the graph.
        for key, (n, k) in zip(("min", "opt", "max"), shapes, strict=True):
            parts = [f"{name}:{n}x{k}{tails[name]}" for name in names]
            options[f"trt_profile_{key}_shapes"] = ",".join(parts)
    return options


def decoder_profile(export: ExportConfig) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(prompts, tokens)`` at min, opt and max of the decoder's optimisation profile."""
    max_tokens = export.max_points + 2 + export.max_embedding_tokens
    return (1, 1), (export.opt_prompts, min(4, max_tokens)), (export.max_prompts, max_tokens)


class OrtRunner:
    """One ONNX Runtime session; ``run`` takes and returns numpy arrays by input/output name."""

    def __init__(
        self, path: Path, providers: list[str], provider_options: list[dict[str, Any]], threads: int = 0
    ) -> None:
        ort = require("onnxruntime", "the onnx segmenter")
        if not path.is_file():
            raise CheckpointError(
                f"ONNX model not found: {path}; write it with `reasonseg export --sam vit_b --checkpoint FILE "
                f"--out {path.parent}` and set segmenter.onnx.model_dir to that folder"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=providers, provider_options=provider_options
            )
        except Exception as exc:
            raise CheckpointError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0][:300]}") from exc
        self.path = path
        self.providers = self.session.get_providers()
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(self.output_names, inputs)
        except Exception as exc:
            raise ModelError(f"ONNX Runtime failed on {self.path.name}: {str(exc).splitlines()[0][:300]}") from exc


def open_ort(
    path: Path,
    part: str,
    onnx_config: OnnxConfig,
    export: ExportConfig,
    cache_dir: Path,
    channels: int,
) -> OrtRunner:
    """An :class:`OrtRunner` on the configured providers, with TensorRT EP options passed through."""
    ort = require("onnxruntime", "the onnx segmenter")
    providers = choose_providers(onnx_config.providers, ort.get_available_providers())
    options: list[dict[str, Any]] = []
    for name in providers:
        if name == "TensorrtExecutionProvider":
            cache_dir.mkdir(parents=True, exist_ok=True)
            options.append(tensorrt_ep_options(onnx_config, export, cache_dir, part, channels))
        else:
            options.append({})
    return OrtRunner(path, providers, options, onnx_config.threads)
