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

"""Lazy imports of the heavy optional libraries, with the extra that provides each."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from reasonseg_ros.errors import MissingDependencyError

EXTRA_OF_MODULE: dict[str, str] = {
    "torch": "torch",
    "torchvision": "torch",
    "segment_anything": "torch",
    "PIL": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "threadpoolctl": "onnx",
    "tensorrt": "tensorrt",
    "sam2": "sam2",
    "hydra": "sam2",
    "cv2": "cv",
    "transformers": "vlm",
    "tokenizers": "vlm",
    "safetensors": "vlm",
    "huggingface_hub": "vlm",
    "bitsandbytes": "quant",
    "rosbags": "eval",
    "pycocotools": "eval",
    "matplotlib": "eval",
    "tqdm": "eval",
    "pooch": "download",
    "requests": "download",
    "yaml": "core",
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise an error naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = EXTRA_OF_MODULE.get(top, top)
        needed = f" (needed for {purpose})" if purpose else ""
        hint = "pip install reasonseg_ros" if extra == "core" else f"pip install 'reasonseg_ros[{extra}]'"
        raise MissingDependencyError(f"{module} is not installed{needed}: {hint}; {exc}") from exc


def available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
