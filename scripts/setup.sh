#!/usr/bin/env bash
# Creates .venv and installs reasonseg_ros with the torch, onnx, vlm, eval, test, sam2, cv, remote, download and grammar extras.
# TORCH_SPEC overrides the PyTorch pins (e.g. TORCH_SPEC="torch torchvision" for the newest).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ -z "${TORCH_SPEC:-}" ]; then
  # segment_anything imports torchvision: pin a torch/torchvision pair that import together.
  case "$(uname -m)" in
    aarch64) TORCH_SPEC="torch==2.9.1 torchvision==0.24.1" ;;
    *) TORCH_SPEC="torch==2.14.1 torchvision==0.29.1" ;;
  esac
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q $TORCH_SPEC
# sam2's sdist compiles against the torch just installed: no build isolation (which would fetch another torch),
# no CUDA extension (it is optional; SAM 2 falls back to plain torch ops).
SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install -q --no-build-isolation "sam2>=1.1"
.venv/bin/python -m pip install -q -e ".[torch,onnx,vlm,eval,test,sam2,cv,remote,download,grammar]"
echo "reasonseg_ros installed in .venv"
