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

"""Builds TensorRT engines from the exported ONNX files (TensorRT Python API), into the engine cache.

fp16 engines keep SAM's layer norms and all softmaxes in fp32: their sums of
squares and exponentials overflow fp16's 65 504 on real activations, which is
the "NaN masks in fp16" that users of other SAM engines report. The
decoder gets one optimisation profile over ``1..max_prompts`` prompts and
``1..max_tokens`` tokens; a timing cache next to the engines makes rebuilds
(new TensorRT, new export) take a fraction of the first build.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reasonseg_ros.config import ExportConfig, SegmenterConfig
from reasonseg_ros.deps import require
from reasonseg_ros.errors import CheckpointError, ModelError
from reasonseg_ros.segmenter.checkpoints import file_digest
from reasonseg_ros.segmenter.export import DECODER_FILE, ENCODER_FILE
from reasonseg_ros.segmenter.ort_runner import decoder_profile
from reasonseg_ros.segmenter.trt_cache import (
    Device,
    EngineSpec,
    check_tensorrt_version,
    engine_path,
    find_engine,
    missing_engine_error,
    timing_cache_path,
    write_metadata,
)

DECODER_TOKEN_INPUTS = {"point_coords": (2,), "point_labels": (), "token_embeddings": None}


def in_fp32_scope(layer_name: str, modules: list[str]) -> bool:
    """Whether a layer parsed from an ONNX node lies inside one of the manifest's ``fp32_modules``.

    The exporter names a module's second and later calls ``norm1_1``, ``norm1_2``: same module, same scope.
    """
    return any(re.sub(r"_\d+$", "", part) in modules for part in layer_name.split("/")[:-1])


def current_device(index: int = 0) -> Device:
    """Name and compute capability of CUDA device ``index``."""
    torch = require("torch", "the tensorrt segmenter (device buffers and streams)")
    if not torch.cuda.is_available():
        raise ModelError("TensorRT needs a CUDA device and torch reports none: use segmenter.backend: onnx or torch")
    major, minor = torch.cuda.get_device_capability(index)
    return Device(torch.cuda.get_device_name(index), f"{major}.{minor}")


def device_index(device: str) -> int:
    """``cuda`` / ``cuda:1`` → 0 / 1."""
    _, _, index = device.partition(":")
    return int(index) if index.isdigit() else 0


def engine_spec(
    part: str, onnx_path: Path, export: ExportConfig, fp16: bool, channels: int, device: Device, trt_version: str
) -> EngineSpec:
    profile: dict[str, list[list[int]]] = {}
    if part == "decoder":
        for name, tail in DECODER_TOKEN_INPUTS.items():
            suffix = [channels] if tail is None else list(tail)
            profile[name] = [[n, k, *suffix] for n, k in decoder_profile(export)]
    return EngineSpec(part, file_digest(onnx_path), trt_version, device, fp16, profile)


class _Progress:
    """Prints the builder's top phases with elapsed time (builds take minutes; silence looks like a hang)."""

    def __init__(self, trt: Any, log: Callable[[str], None]) -> None:
        outer = self

        class Monitor(trt.IProgressMonitor):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                trt.IProgressMonitor.__init__(self)

            def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
                # Top phases and their children only: the deeper ones come by the thousand (one per tactic).
                if parent_phase is None or outer.depth.get(parent_phase, 9) < 1:
                    depth = 0 if parent_phase is None else outer.depth.get(parent_phase, 0) + 1
                    outer.depth[phase_name] = depth
                    outer.log(f"  {'  ' * depth}{phase_name} ({num_steps} steps) at {outer.elapsed():.0f} s")

            def step_complete(self, phase_name: str, step: int) -> bool:
                return True

            def phase_finish(self, phase_name: str) -> None:
                outer.depth.pop(phase_name, None)

        self.log = log
        self.depth: dict[str, int] = {}
        self.start = time.perf_counter()
        self.monitor = Monitor()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def build_engine(
    onnx_path: Path,
    spec: EngineSpec,
    out: Path,
    fp32_modules: list[str],
    workspace_mb: int,
    log: Callable[[str], None] = print,
) -> Path:
    """Parse ``onnx_path``, build with ``spec``'s precision and profile, write ``out`` and its metadata."""
    trt = require("tensorrt", "building TensorRT engines")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10 knows only explicit batch (flag 0); 8.6 (JetPack 6.0) still has to be asked for it.
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if explicit is None else 1 << int(explicit))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse {onnx_path}: {errors[:500]}; export it again with this opset")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if spec.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
        kept = _keep_fp32(trt, network, fp32_modules)
        # Preferred, not obeyed: a fused kernel without an fp32 variant then stays usable instead of failing the build.
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        log(f"  fp16 with {kept} layers kept fp32 (layer norms, softmax)")
    if spec.profile:
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in spec.profile.items():
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)

    timing_path = timing_cache_path(out.parent, spec)
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    if not config.set_timing_cache(timing, ignore_mismatch=False):
        log(f"  timing cache {timing_path.name} does not fit this GPU; starting a new one")
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    progress = _Progress(trt, log)
    config.progress_monitor = progress.monitor

    log(f"building the TensorRT {spec.part} engine from {onnx_path.name} (this takes minutes)")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(
            f"TensorRT could not build the {spec.part} engine (see the log above); "
            "try more segmenter.tensorrt.workspace_mb or fp16: false"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".part")
    partial.write_bytes(bytes(serialized))
    partial.replace(out)
    write_metadata(out, spec)
    cache = config.get_timing_cache()
    if cache is not None:
        timing_path.write_bytes(bytes(cache.serialize()))
    log(f"  wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {progress.elapsed():.0f} s")
    return out


def _keep_fp32(trt: Any, network: Any, fp32_modules: list[str]) -> int:
    """Pin layer norms and softmax layers (and the float layers inside the manifest's norm scopes) to fp32."""
    float_types = (trt.float32, trt.float16)
    always = {trt.LayerType.NORMALIZATION, trt.LayerType.SOFTMAX}
    kept = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type not in always and not in_fp32_scope(layer.name, fp32_modules):
            continue
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        # Shape and index layers inside a norm scope compute integers; a float precision would be rejected.
        if not outputs or any(o.dtype not in float_types for o in outputs):
            continue
        if layer.type in (trt.LayerType.CONSTANT, trt.LayerType.SHAPE):
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        kept += 1
    return kept


def engine_dir_of(config: SegmenterConfig, model_dir: Path) -> Path:
    return Path(config.tensorrt.engine_dir).expanduser() if config.tensorrt.engine_dir else model_dir / "engines"


def ensure_engine(
    part: str,
    model_dir: Path,
    manifest: dict[str, Any],
    config: SegmenterConfig,
    build: bool | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Path, EngineSpec]:
    """The cached engine for this ONNX file, TensorRT version and GPU; built when missing and allowed."""
    trt = require("tensorrt", "the tensorrt segmenter")
    check_tensorrt_version(trt.__version__, config.tensorrt.fp16)
    onnx_path = model_dir / (ENCODER_FILE if part == "encoder" else DECODER_FILE)
    if not onnx_path.is_file():
        raise CheckpointError(
            f"ONNX model not found: {onnx_path}; export it with `reasonseg export --sam {config.model_type} "
            f"--checkpoint FILE --out {model_dir}` or set segmenter.onnx.model_dir"
        )
    device = current_device(device_index(config.device))
    spec = engine_spec(
        part, onnx_path, config.export, config.tensorrt.fp16, int(manifest["channels"]), device, trt.__version__
    )
    engine_dir = engine_dir_of(config, model_dir)
    cached = find_engine(engine_dir, spec)
    if cached is not None:
        return cached, spec
    if not (config.tensorrt.build if build is None else build):
        raise missing_engine_error(engine_dir, spec)
    out = engine_path(engine_dir, spec)
    modules = list(manifest.get("fp32_modules", []))
    return build_engine(onnx_path, spec, out, modules, config.tensorrt.workspace_mb, log), spec


def build_engines(
    model_dir: Path, model_type: str, config: SegmenterConfig, fp16: bool, log: Callable[[str], None] = print
) -> list[Path]:
    """``reasonseg export --tensorrt``: build (or find cached) encoder and decoder engines for ``model_dir``."""
    from dataclasses import replace

    from reasonseg_ros.segmenter.export import read_manifest

    manifest = read_manifest(model_dir)
    config = replace(config, model_type=model_type, tensorrt=replace(config.tensorrt, fp16=fp16))
    paths = []
    for part in ("encoder", "decoder"):
        path, _ = ensure_engine(part, model_dir, manifest, config, build=True, log=log)
        log(f"{part} engine: {path}")
        paths.append(path)
    return paths
