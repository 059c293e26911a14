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

"""Where TensorRT engines are cached and whether a cached one fits this machine (pure Python, no TensorRT).

An engine only runs on the GPU model (compute capability) and TensorRT
version it was built with, for the ONNX file and build options it was built
from. All of these go into the cache key, so a node finds its engine without
rebuilding, and into a JSON sidecar, so an engine copied from elsewhere is
refused with the reason instead of failing inside TensorRT.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reasonseg_ros.errors import CheckpointError, ModelError

METADATA_VERSION = 1
BUILD_RECIPE = 2
"""Version of how ``trt_build`` turns an ONNX file into an engine (precision policy, flags); engines built by
another recipe are rebuilt. 2: fp32 pins as preferences, not obligations."""


@dataclass(frozen=True)
class Device:
    name: str
    """GPU name as the driver reports it (``NVIDIA GeForce RTX 4090``, ``Orin``)."""
    compute_capability: str
    """``8.9``, ``8.7`` (Orin), ..."""


@dataclass(frozen=True)
class EngineSpec:
    """Everything an engine depends on."""

    part: str
    """``encoder`` or ``decoder``."""
    onnx_sha256: str
    tensorrt_version: str
    device: Device
    fp16: bool
    profile: dict[str, list[list[int]]]
    """Input name → ``[min, opt, max]`` shapes (empty for static inputs)."""
    recipe: int = BUILD_RECIPE

    def key(self) -> str:
        payload = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def metadata(self) -> dict[str, Any]:
        return {"version": METADATA_VERSION, "key": self.key(), **asdict(self)}


def engine_path(engine_dir: Path, spec: EngineSpec) -> Path:
    """``<engine_dir>/<part>-<key>.engine``; its metadata sits beside it as ``.json``."""
    return engine_dir / f"{spec.part}-{spec.key()}.engine"


def timing_cache_path(engine_dir: Path, spec: EngineSpec) -> Path:
    """The builder's timing cache: per TensorRT version and GPU model, like the engines it speeds up."""
    gpu = re.sub(r"[^A-Za-z0-9.]+", "-", spec.device.name).strip("-")
    return engine_dir / f"timing-{spec.tensorrt_version}-{gpu}-sm{spec.device.compute_capability}.cache"


def check_tensorrt_version(version: str, fp16: bool) -> None:
    """Refuse TensorRT versions the builder cannot drive, naming the fix.

    TensorRT 10 is the target (JetPack 6.1+ ships 10.3). 8.x lacks the builder's progress monitor and int64
    I/O; 11 builds strongly typed networks only, so the fp16 flag and per-layer fp32 pins are gone.
    """
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return
    if major < 10:
        raise ModelError(
            f"TensorRT {version} is too old for the tensorrt backend: it needs TensorRT 10 (JetPack 6.1 or later, "
            "or pip install 'tensorrt>=10,<11'); or use segmenter.backend: onnx"
        )
    if major > 10 and fp16:
        raise ModelError(
            f"TensorRT {version} builds strongly typed networks only, so it cannot make fp16 engines with fp32 "
            "layer norms from the fp32 export: install TensorRT 10 (pip install 'tensorrt>=10,<11') "
            "or set segmenter.tensorrt.fp16: false"
        )


def metadata_path(engine: Path) -> Path:
    return engine.with_suffix(".json")


def write_metadata(engine: Path, spec: EngineSpec) -> None:
    metadata_path(engine).write_text(json.dumps(spec.metadata(), indent=2) + "\n")


def mismatches(metadata: dict[str, Any], spec: EngineSpec) -> list[str]:
    """Why an engine with ``metadata`` cannot serve ``spec`` (empty: it can)."""
    wanted = spec.metadata()
    problems = []
    device = metadata.get("device") or {}
    if device.get("compute_capability") != spec.device.compute_capability or device.get("name") != spec.device.name:
        problems.append(
            f"built for GPU {device.get('name')} (sm {device.get('compute_capability')}), "
            f"this is {spec.device.name} (sm {spec.device.compute_capability})"
        )
    if metadata.get("tensorrt_version") != spec.tensorrt_version:
        problems.append(f"built with TensorRT {metadata.get('tensorrt_version')}, this is {spec.tensorrt_version}")
    if metadata.get("onnx_sha256") != spec.onnx_sha256:
        problems.append("built from another ONNX file (the model was exported again)")
    for key in ("part", "fp16", "profile", "recipe"):
        if metadata.get(key) != wanted[key]:
            problems.append(f"{key} {metadata.get(key)!r} differs from the configured {wanted[key]!r}")
    return problems


def find_engine(engine_dir: Path, spec: EngineSpec) -> Path | None:
    """The cached engine for ``spec``, or None when it must be built.

    A file whose sidecar is missing or does not match is treated as absent
    (rebuilt over), as is a half-written one.
    """
    path = engine_path(engine_dir, spec)
    meta = metadata_path(path)
    if not path.is_file() or not meta.is_file():
        return None
    try:
        metadata = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return path if not mismatches(metadata, spec) else None


def missing_engine_error(engine_dir: Path, spec: EngineSpec) -> CheckpointError:
    """The error for an engine that is not cached and may not be built here.

    It says why the cached ones do not fit (another GPU, TensorRT version, ONNX file or options) and how
    to build the right one.
    """
    reasons = []
    for meta in sorted(engine_dir.glob(f"{spec.part}-*.json")):
        try:
            problems = mismatches(json.loads(meta.read_text()), spec)
        except (OSError, ValueError):
            problems = ["unreadable metadata"]
        if problems:
            reasons.append(f"{meta.with_suffix('.engine').name}: {'; '.join(problems)}")
    found = f" ({' | '.join(reasons)})" if reasons else ""
    return CheckpointError(
        f"no TensorRT {spec.part} engine for this GPU and TensorRT version in {engine_dir}{found}: build it with "
        "`reasonseg export --sam MODEL --checkpoint FILE --out DIR --tensorrt` or set segmenter.tensorrt.build: true"
    )
