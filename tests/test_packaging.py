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

"""The bare package imports with numpy alone, and ROS stays inside reasonseg_ros/ros/."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = """
import importlib.abc, sys
BLOCKED = {"torch", "torchvision", "segment_anything", "yaml", "pycocotools", "PIL", "rosbags",
           "onnxruntime", "tensorrt", "transformers", "matplotlib", "cv2", "rclpy", "sam2", "hydra"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked {name}")
sys.meta_path.insert(0, Block())
"""


def test_core_imports_with_numpy_alone():
    modules = [
        "reasonseg_ros",
        "reasonseg_ros.types",
        "reasonseg_ros.masks",
        "reasonseg_ros.memory",
        "reasonseg_ros.config",
        "reasonseg_ros.engine",
        "reasonseg_ros.reasoner",
        "reasonseg_ros.reasoner.prompt",
        "reasonseg_ros.reasoner.detector",
        "reasonseg_ros.segmenter.download",
        "reasonseg_ros.segmenter",
        "reasonseg_ros.segmenter.sam_torch",
        "reasonseg_ros.segmenter.sam2_image",
        "reasonseg_ros.tracker",
        "reasonseg_ros.tracker.flow",
        "reasonseg_ros.tracker.sam2_tracker",
        "reasonseg_ros.messages",
        "reasonseg_ros.overlay",
        "reasonseg_ros.cli",
    ]
    script = (
        BLOCKER
        + f"""
import importlib
for name in {modules!r}:
    importlib.import_module(name)
from reasonseg_ros.config import Config, SegmenterConfig
from reasonseg_ros.errors import MissingDependencyError
from reasonseg_ros.segmenter import create_segmenter
try:
    create_segmenter(SegmenterConfig(model_type="vit_tiny", random_weights=True))
except MissingDependencyError as exc:
    print(exc)
"""
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr
    assert "pip install 'reasonseg_ros[torch]'" in run.stdout


ROS_IMPORT = re.compile(
    r"^\s*(import rclpy|from rclpy|from (sensor_msgs|std_msgs|vision_msgs|std_srvs|diagnostic_msgs)\.msg|"
    r"import (sensor_msgs|std_msgs|vision_msgs)|.*cv_bridge)",
    re.M,
)


def test_ros_imports_only_in_ros_layer():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "reasonseg_ros").rglob("*.py")
        if "ros" not in path.relative_to(ROOT / "reasonseg_ros").parts[:1] and ROS_IMPORT.search(path.read_text())
    ]
    assert offenders == []


def test_package_xml_and_setup_agree():
    xml = (ROOT / "package.xml").read_text()
    setup = (ROOT / "setup.py").read_text()
    version = re.search(r"<version>(.+)</version>", xml).group(1)
    assert f'version="{version}"' in setup
    assert "<build_type>ament_python</build_type>" in xml and 'format="3"' in xml
    for dep in ("rclpy", "sensor_msgs", "std_msgs", "vision_msgs", "std_srvs", "diagnostic_msgs", "launch_ros"):
        assert f"<exec_depend>{dep}</exec_depend>" in xml
    assert (ROOT / "resource" / "reasonseg_ros").is_file()
