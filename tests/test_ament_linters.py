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

"""The linters every ROS 2 Python package carries (ament_copyright, ament_flake8, ament_pep257).

ament_flake8 and ament_pep257 install from PyPI (the test extra), so they run
everywhere; ament_copyright comes only with a ROS 2 distribution.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATHS = [str(ROOT / name) for name in ("reasonseg_ros", "launch", "tests", "benchmarks", "setup.py")]


def test_flake8():
    main = pytest.importorskip("ament_flake8.main", reason="ament_flake8 not installed").main_with_errors
    rc, errors = main(argv=["--config", str(ROOT / "setup.cfg"), *PATHS])
    assert rc == 0, f"{len(errors)} flake8 errors:\n" + "\n".join(errors)


def test_pep257():
    main = pytest.importorskip("ament_pep257.main", reason="ament_pep257 not installed").main
    # D213 is the twin of D212, which ament ignores: summaries start on the docstring's first line.
    # D401: a function's summary may name what it returns ("The newest frame, ..."), as in segment_anything.
    # D403 would capitalise acronyms and names that start a summary (IoU, SAM, rosbags).
    ignores = ["D213", "D401", "D403"]
    assert main(argv=[*PATHS, "--add-ignore", *ignores]) == 0, "pep257 errors (see the output above)"


def test_copyright():
    main = pytest.importorskip("ament_copyright.main", reason="ament_copyright not installed (ROS 2 only)").main
    assert main(argv=PATHS) == 0, "files without a copyright header (see above)"
