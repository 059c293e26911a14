#!/usr/bin/env bash
# One command on a GPU machine: the TensorRT build/parity tests, then the segmenter backend benchmark.
# Needs the torch, onnx and tensorrt extras (pip install -e '.[torch,onnx,tensorrt,test]') and a CUDA device.
# Runs .venv/bin/python when scripts/setup.sh made one; PYTHON=... picks another interpreter.
# Usage: bash benchmarks/gpu_check.sh [--model vit_b] [--repeats 20]
# Writes benchmarks/out/gpu_check/{tests.log,backends.json} and prints the figures for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's virtual environment (scripts/setup.sh) when there is one, else python3 (a ROS or conda install).
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUT="${OUT_DIR:-benchmarks/out/gpu_check}"
mkdir -p "$OUT"

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi not found"
"$PYTHON" - <<'PY'
import platform
import torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("cuda device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
try:
    import tensorrt
    print("tensorrt", tensorrt.__version__)
except ImportError:
    print("tensorrt: not installed")
try:
    import onnxruntime
    print("onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())
except ImportError:
    print("onnxruntime: not installed")
PY

echo "== TensorRT and ONNX tests (GPU tests must run here, not skip)"
"$PYTHON" -m pytest -rs -q tests/test_segmenter_tensorrt.py tests/test_segmenter_onnx.py 2>&1 | tee "$OUT/tests.log"
if grep -q "SKIPPED" "$OUT/tests.log"; then
  echo "warning: some tests skipped on this machine (see the reasons above)" >&2
fi

echo "== benchmark"
"$PYTHON" benchmarks/segmenter_backends.py --device cuda --json "$OUT/backends.json" "$@"

echo "== SAM 2.1 tracking (hiera_t architecture, random weights; 1, 5, 10 objects at 720p; goal <= 15 ms for 5)"
"$PYTHON" benchmarks/bench_tracking.py --parts sam2-full --device cuda --steps 20 2>&1 | tee "$OUT/tracking.log"
