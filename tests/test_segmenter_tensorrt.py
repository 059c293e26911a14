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

"""TensorRT engine cache (runs everywhere) and engine build + parity (only where TensorRT and a GPU exist)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import scene

from reasonseg_ros.config import load_config
from reasonseg_ros.errors import CheckpointError, ModelError
from reasonseg_ros.segmenter.trt_cache import (
    BUILD_RECIPE,
    Device,
    EngineSpec,
    check_tensorrt_version,
    engine_path,
    find_engine,
    mismatches,
    missing_engine_error,
    timing_cache_path,
    write_metadata,
)

DESKTOP = Device("NVIDIA GeForce RTX 4090", "8.9")
ORIN = Device("Orin", "8.7")
PROFILE = {"point_labels": [[1, 1], [1, 4], [8, 22]]}


def spec(**changes):
    base = {
        "part": "decoder",
        "onnx_sha256": "a" * 64,
        "tensorrt_version": "10.3.0",
        "device": DESKTOP,
        "fp16": True,
        "profile": PROFILE,
    }
    return EngineSpec(**{**base, **changes})


def cache_engine(directory: Path, engine_spec: EngineSpec) -> Path:
    path = engine_path(directory, engine_spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"engine")
    write_metadata(path, engine_spec)
    return path


@pytest.mark.parametrize(
    "change",
    [
        {"device": ORIN},
        {"tensorrt_version": "10.7.0"},
        {"onnx_sha256": "b" * 64},
        {"fp16": False},
        {"profile": {"point_labels": [[1, 1], [1, 4], [16, 22]]}},
        {"part": "encoder"},
        {"recipe": BUILD_RECIPE + 1},
    ],
    ids=["gpu", "tensorrt", "onnx", "precision", "profile", "part", "recipe"],
)
def test_anything_an_engine_depends_on_changes_its_key_and_is_reported(change):
    assert spec(**change).key() != spec().key()
    assert mismatches(spec().metadata(), spec(**change))
    assert mismatches(spec().metadata(), spec()) == []


def test_cached_engine_is_found_without_rebuilding(tmp_path):
    path = cache_engine(tmp_path, spec())
    assert find_engine(tmp_path, spec()) == path
    assert path.name.startswith("decoder-") and path.with_suffix(".json").is_file()


def test_engine_of_another_gpu_or_tensorrt_is_not_used(tmp_path):
    cache_engine(tmp_path, spec(device=ORIN, tensorrt_version="10.7.0"))
    assert find_engine(tmp_path, spec()) is None
    error = missing_engine_error(tmp_path, spec())
    assert isinstance(error, CheckpointError)
    text = str(error)
    assert "Orin" in text and "10.7.0" in text and "RTX 4090" in text
    assert "reasonseg export" in text and "segmenter.tensorrt.build: true" in text
    assert "\n" not in text


def test_engine_with_tampered_or_missing_metadata_is_rebuilt(tmp_path):
    path = cache_engine(tmp_path, spec())
    meta = path.with_suffix(".json")
    data = json.loads(meta.read_text())
    data["device"]["compute_capability"] = "7.2"
    meta.write_text(json.dumps(data))
    assert find_engine(tmp_path, spec()) is None
    meta.write_text("{not json")
    assert find_engine(tmp_path, spec()) is None
    meta.unlink()
    assert find_engine(tmp_path, spec()) is None


def test_timing_cache_is_per_tensorrt_version_and_gpu(tmp_path):
    same_sm = Device("NVIDIA RTX 6000 Ada Generation", DESKTOP.compute_capability)
    variants = (spec(), spec(device=ORIN), spec(tensorrt_version="10.7.0"), spec(device=same_sm))
    paths = {timing_cache_path(tmp_path, s) for s in variants}
    assert len(paths) == 4 and all(p.parent == tmp_path and " " not in p.name for p in paths)
    assert timing_cache_path(tmp_path, spec()) == timing_cache_path(tmp_path, spec(fp16=False))


@pytest.mark.parametrize(
    ("version", "fp16", "fix"),
    [("8.6.2", True, "JetPack 6.1"), ("8.6.2", False, "JetPack 6.1"), ("11.4.0.106", True, "fp16: false")],
)
def test_unsupported_tensorrt_versions_are_refused_with_the_fix(version, fp16, fix):
    with pytest.raises(ModelError, match=fix) as caught:
        check_tensorrt_version(version, fp16)
    assert version in str(caught.value) and "tensorrt>=10,<11" in str(caught.value)


@pytest.mark.parametrize(("version", "fp16"), [("10.3.0", True), ("10.13.3.9", True), ("11.4.0.106", False)])
def test_supported_tensorrt_versions_pass(version, fp16):
    check_tensorrt_version(version, fp16)


def test_decoder_profile_follows_the_export_config():
    from reasonseg_ros.segmenter.ort_runner import decoder_profile

    config = load_config(
        None,
        {
            "segmenter.export.max_prompts": 5,
            "segmenter.export.max_points": 8,
            "segmenter.export.max_embedding_tokens": 2,
            "segmenter.export.opt_prompts": 3,
        },
    )
    assert decoder_profile(config.segmenter.export) == ((1, 1), (3, 4), (5, 12))


def test_device_index_parsing():
    from reasonseg_ros.segmenter.trt_build import device_index

    assert device_index("cuda") == 0 and device_index("cuda:1") == 1 and device_index("cpu") == 0


def test_tensorrt_backend_without_tensorrt_or_gpu_is_a_clear_error(tmp_path):
    from reasonseg_ros.deps import available
    from reasonseg_ros.errors import ReasonsegError
    from reasonseg_ros.segmenter import create_segmenter

    if available("tensorrt"):
        pytest.skip("tensorrt is installed here; the GPU tests below cover the backend")
    pytest.importorskip("torch", reason="the torch extra is not installed")
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from reasonseg_ros.segmenter.export import export_checkpoint

    export_checkpoint("vit_tiny", None, tmp_path, check=False, log=lambda _: None)
    config = load_config(
        None,
        {
            "segmenter.backend": "tensorrt",
            "segmenter.model_type": "vit_tiny",
            "segmenter.onnx.model_dir": str(tmp_path),
        },
    )
    with pytest.raises(ReasonsegError, match=r"reasonseg_ros\[tensorrt\]"):
        create_segmenter(config.segmenter)


# ---- on a GPU machine with TensorRT 10 --------------------------------------------------------------------------


def gpu_reason() -> str | None:
    from reasonseg_ros.deps import available

    if not available("tensorrt"):
        return "tensorrt is not installed (pip install 'reasonseg_ros[tensorrt]' on a GPU machine)"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


needs_gpu = pytest.mark.skipif(gpu_reason() is not None, reason=str(gpu_reason()))


@pytest.fixture(scope="module")
def trt_setup(tiny_sam, tmp_path_factory):
    from reasonseg_ros.segmenter.export import export_sam

    model_dir = tmp_path_factory.mktemp("trt_vit_tiny")
    export_sam(tiny_sam, "vit_tiny", model_dir, log=lambda _: None)
    return model_dir


def trt_config(model_dir, **extra):
    overrides = {
        "segmenter.backend": "tensorrt",
        "segmenter.model_type": "vit_tiny",
        "segmenter.device": "cuda",
        "segmenter.onnx.model_dir": str(model_dir),
        "segmenter.onnx.providers": "cpu",
        **extra,
    }
    return load_config(None, overrides).segmenter


@needs_gpu
@pytest.mark.parametrize("fp16", [False, True])
def test_tensorrt_engines_build_once_and_match_torch(tiny_sam, trt_setup, fp16):
    from reasonseg_ros.masks import mask_iou
    from reasonseg_ros.segmenter import create_segmenter
    from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter
    from reasonseg_ros.types import Prompt

    config = trt_config(trt_setup, **{"segmenter.tensorrt.fp16": fp16})
    segmenter = create_segmenter(config)
    engines = sorted((trt_setup / "engines").glob("*.engine"))
    assert len(engines) >= 2
    stamps = [p.stat().st_mtime_ns for p in engines]
    create_segmenter(config)  # second start: from the cache, no rebuild
    assert [p.stat().st_mtime_ns for p in engines] == stamps

    image = scene(240, 320, seed=5)
    prompts = [
        Prompt(points=[[100, 80]]),
        Prompt(box=[50, 40, 200, 180]),
        Prompt(points=[[120, 90], [10, 10]], point_labels=[1, 0], box=[50, 40, 200, 180]),
        Prompt(embedding=np.random.default_rng(0).normal(size=(2, 256))),
        Prompt(points=[[300, 200]], embedding=np.random.default_rng(1).normal(size=(1, 256))),
    ]
    reference = TorchSamSegmenter(tiny_sam, batch_size=len(prompts))
    expected = reference.decode(reference.embed(image), prompts)
    got = segmenter.decode(segmenter.embed(image), prompts)
    iou_floor, score_tol = (0.95, 2e-2) if fp16 else (0.99, 1e-3)
    for i in range(len(prompts)):
        assert mask_iou(got.masks[i], expected.masks[i]) >= iou_floor
    np.testing.assert_allclose(got.scores, expected.scores, atol=score_tol)
    single = segmenter.decode(segmenter.embed(image), prompts[:1])
    assert single.masks.shape == (1, 240, 320)


@needs_gpu
def test_tensorrt_cuda_graph_replay_gives_the_same_masks(trt_setup):
    from reasonseg_ros.segmenter import create_segmenter
    from reasonseg_ros.types import Prompt

    plain = create_segmenter(trt_config(trt_setup))
    graphed = create_segmenter(trt_config(trt_setup, **{"segmenter.tensorrt.cuda_graph": True}))
    image = scene(240, 320, seed=6)
    prompts = [Prompt(box=[20 + 10 * i, 30, 200, 200]) for i in range(3)]
    expected = plain.decode(plain.embed(image), prompts)
    embedding = graphed.embed(image)
    for _ in range(3):  # the second call captures, the third replays
        got = graphed.decode(embedding, prompts)
        np.testing.assert_array_equal(got.masks, expected.masks)
    # Shapes that change between calls run uncaptured; one that repeats is captured anew.
    one = prompts[:1]
    expected_one = plain.decode(embedding, one)
    for batch, reference in ((one, expected_one), (prompts, expected), (one, expected_one), (one, expected_one)):
        np.testing.assert_array_equal(graphed.decode(embedding, batch).masks, reference.masks)


@needs_gpu
def test_mixed_mode_tensorrt_encoder_onnx_decoder(trt_setup):
    from reasonseg_ros.segmenter import create_segmenter
    from reasonseg_ros.types import Prompt

    mixed = create_segmenter(trt_config(trt_setup, **{"segmenter.decoder_backend": "onnx"}))
    assert "encoder tensorrt" in mixed.name and "decoder onnxruntime" in mixed.name
    result = mixed.decode(mixed.embed(scene(240, 320)), [Prompt(box=[10, 10, 100, 100])])
    assert result.masks.shape == (1, 240, 320)


@needs_gpu
def test_no_build_allowed_and_no_engine_is_a_clear_error(trt_setup, tmp_path):
    from reasonseg_ros.segmenter import create_segmenter

    config = trt_config(
        trt_setup, **{"segmenter.tensorrt.build": False, "segmenter.tensorrt.engine_dir": str(tmp_path)}
    )
    with pytest.raises(CheckpointError, match=r"segmenter\.tensorrt\.build: true"):
        create_segmenter(config)


def test_gpu_check_script_runs_these_tests():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    text = script.read_text()
    assert "tests/test_segmenter_tensorrt.py" in text and "segmenter_backends.py" in text
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
