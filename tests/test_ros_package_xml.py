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

"""package.xml declares every ROS package the code imports, names or runs, with keys rosdep knows (defect 7)."""

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Read from ros/rosdistro (humble/ and jazzy/distribution.yaml, rosdep/python.yaml) on 2026-12-02: every
# name below is a released package of both distributions or a rosdep key with an Ubuntu rule.
ROSDEP_KEYS = {
    "ament_copyright", "ament_flake8", "ament_index_python", "ament_pep257", "builtin_interfaces",
    "diagnostic_msgs", "geometry_msgs", "launch", "launch_ros", "launch_testing", "launch_testing_ros",
    "lifecycle_msgs", "python3-numpy", "python3-opencv", "python3-pytest", "python3-yaml", "rcl_interfaces",
    "rclpy", "ros2bag", "ros2launch", "ros2lifecycle", "ros2service", "rosbag2_storage_mcap",
    "rosidl_runtime_py", "sensor_msgs", "std_msgs", "std_srvs", "vision_msgs",
}  # fmt: skip
NOT_ROS = {
    *sys.stdlib_module_names, "pytest", "reasonseg_ros", "PIL", "ros_doubles", "fake_rclpy", "fake_launch",
    "test_ros_worker", "helpers",
}  # fmt: skip
"""Modules that are not ROS packages (pip or the test folder), beside the Python keys below."""
PYTHON_KEYS = {"numpy": "python3-numpy", "yaml": "python3-yaml", "cv2": "python3-opencv", "pytest": "python3-pytest"}
MESSAGE_NAME = re.compile(r"\b([a-z_]+_msgs|builtin_interfaces|std_srvs)/(msg|srv)/")


def depends(*tags):
    root = ET.parse(ROOT / "package.xml").getroot()
    return {e.text.strip() for tag in tags for e in root.iter(tag)}


def used(paths):
    """Top-level modules imported, message packages named in strings, and ``ros2 <verb>`` commands run."""
    names = set()
    for path in paths:
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        names |= {m.group(1) for m in MESSAGE_NAME.finditer(text)}
        names |= {f"ros2{verb}" for verb in re.findall(r'"ros2",\s*"(\w+)"', text)}
    return {PYTHON_KEYS.get(n, n) for n in names if n in PYTHON_KEYS or n not in NOT_ROS}


def test_every_runtime_import_and_command_is_an_exec_depend():
    runtime = [*(ROOT / "reasonseg_ros" / "ros").glob("*.py"), *(ROOT / "reasonseg_ros" / "messages").glob("*.py")]
    runtime += list((ROOT / "launch").glob("*.py"))
    needed = used(runtime) - {"python3-pytest"}
    assert needed - depends("exec_depend", "depend") == set()


def test_every_test_import_is_declared():
    tests = list((ROOT / "tests").glob("test_ros_*.py"))
    assert used(tests) - depends("exec_depend", "depend", "test_depend") == set()


def test_every_declared_key_is_known_to_rosdep():
    assert depends("exec_depend", "depend", "test_depend", "build_depend") - ROSDEP_KEYS == set()


def test_pycocotools_is_a_pip_extra_not_a_core_requirement():
    setup = (ROOT / "setup.py").read_text()
    (requires,) = re.findall(r"install_requires=\[([^\]]*)\]", setup)
    assert "pycocotools" not in requires and "numpy>=1.21" in requires  # Humble's numpy satisfies it
    assert "pycocotools" not in depends("exec_depend", "depend")
    assert "pycocotools" in (ROOT / "package.xml").read_text()  # the note saying where it comes from


def test_readme_install_avoids_the_traps():
    """Defect 8: colcon from inside the venv (console scripts take colcon's interpreter), numpy < 2, ros2 run."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Use it in ROS 2") : readme.index("## Install options")]
    for needed in (
        "python3 -m venv --system-site-packages .venv && touch .venv/COLCON_IGNORE && source .venv/bin/activate",
        "-c src/reasonseg_ros/constraints/ros.txt",
        "python3 -m colcon build",
        "ros2 run reasonseg_ros reasonseg",
        "rosdep install --from-paths src",
    ):
        assert needed in section, needed
    assert "\ncolcon build" not in section  # colcon's own interpreter would land in the #! lines
    constraints = (ROOT / "constraints" / "ros.txt").read_text().split("\n")
    assert "numpy<2" in constraints
