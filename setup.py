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

"""Installs with colcon (ament_python) inside a ROS 2 workspace, or with plain pip."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "reasonseg_ros"

# Mask run-length encoding, used by every round. rosdep has no key for it, so it is not an install
# requirement (a colcon build resolves those through package.xml): it comes with each segmenter extra.
RLE = ["pycocotools>=2.0.7"]

EXTRAS = {
    "torch": ["torch>=2.1", "torchvision", "segment-anything>=1.0", "pillow", *RLE],
    "onnx": ["onnx>=1.15", "onnxruntime>=1.17", "pillow", "threadpoolctl>=3", *RLE],
    "tensorrt": ["tensorrt>=10,<11", "torch>=2.1", *RLE],
    "vlm": ["transformers>=4.57", "accelerate", "pillow", "safetensors"],
    "remote": ["pillow", "httpx>=0.27"],
    # Grammar-constrained decoding of the local VLM's answer (reasoner.vlm.grammar: xgrammar).
    "grammar": ["xgrammar>=0.1.20"],
    # SAM 2.1 (segmenter and tracker). Its sdist builds against the installed torch: install it with
    # SAM2_BUILD_CUDA=0 pip install --no-build-isolation "sam2>=1.1" (scripts/setup.sh does).
    "sam2": ["sam2>=1.1", "torch>=2.1", "pillow"],
    # Optical-flow tracker and compressed images; on a ROS machine python3-opencv from apt serves instead.
    "cv": ["opencv-python-headless>=4.8"],
    "download": ["pooch>=1.8", "tqdm"],
    "quant": ["bitsandbytes"],
    "eval": ["rosbags>=0.10", "pycocotools>=2.0.7", "matplotlib", "tqdm"],
    "test": [
        "pytest>=8",
        "ruff>=0.5",
        "rosbags>=0.10",
        "pillow",
        # The ament linters of tests/test_ament_linters.py, with the flake8 plugins a ROS 2 install brings.
        "ament-lint-flake8",
        "ament-lint-pep257",
        "flake8-blind-except",
        "flake8-builtins",
        "flake8-class-newline",
        "flake8-comprehensions",
        "flake8-deprecated",
        "flake8-docstrings",
        "flake8-import-order",
        "flake8-quotes",
    ],
}
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() if name not in ("tensorrt", "quant") for req in reqs})

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Multi-round reasoning segmentation for ROS 2 (LLM reasoners + SAM)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*"]),
    package_data={PACKAGE: ["messages/msg/*/*.msg"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    # The lowest versions are Ubuntu 22.04's (ROS 2 Humble): a higher floor makes pip replace the apt numpy
    # with 2.x inside a --system-site-packages venv, which breaks apt-built extensions such as cv_bridge.
    install_requires=["numpy>=1.21", "pyyaml>=5.4", "setuptools"],
    extras_require=EXTRAS,
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "reasonseg = reasonseg_ros.cli:main",
            "reasonseg_node = reasonseg_ros.ros.node:main",
        ],
    },
)
