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

"""The commands of README.md and docs/*.md that can run here are run, so that they stay true.

Every command in a ```bash fence is either run (in a temporary folder holding
links to ``config/`` and ``examples/``, offline, with an empty home so no
cached weights are found) or listed in :data:`SKIP` with the reason it cannot
run on a CPU build machine. A new command that is neither fails this test:
add it to one or the other.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(?:bash|sh|shell)\n(.*?)```", re.S)

SKIP: list[tuple[str, str]] = [
    # (regular expression matched against the command, why it cannot run here)
    (r"^bash scripts/setup\.sh$", "rebuilds the virtual environment: CI (.ci/run) runs it before the tests"),
    (r"-m pytest", "the test suite this check is part of"),
    (r"^(cd|git|source|sudo apt|rosdep|python3 -m venv) ", "ROS 2 workspace steps"),
    (r"^touch \.venv/COLCON_IGNORE$", "ROS 2 workspace steps"),
    (r"^mkdir -p '?~/ros2_ws", "ROS 2 workspace steps"),
    (r"colcon", "builds a ROS 2 workspace: needs a ROS installation"),
    (r"^ros2 ", "needs a running ROS 2 graph"),
    (r"pip install", "installs packages: the environment is built by scripts/setup.sh"),
    (r"^vllm ", "a GPU inference server"),
    (r"benchmarks/", "benchmarks take minutes and are never run as tests (docs/performance.md)"),
    (r"--config config/(vlm_local|seg_token_\w+)\.yaml", "a 7B model on a GPU, weights from the hub"),
    (r"--config config/cpu_detector\.yaml", "fetches SAM ViT-B and Grounding DINO: no network on the build machines"),
    (r"^(\.venv/bin/)?reasonseg convert ", "converts a dataset: not on the build machines"),
    (r"^(\.venv/bin/)?reasonseg replay (?!demo_bag )", "replays a converted dataset: not on the build machines"),
    (r"^reasonseg export .*--checkpoint '?~/", "needs the official SAM checkpoint (and --tensorrt a GPU)"),
]
RUN = re.compile(r"^(\.venv/bin/)?reasonseg (demo-bag|replay|segment) ")
"""Commands that run here; anything else must match a SKIP entry."""

# What the README says the main job and the one-image command write.
PROMISED = {
    "replay_out": ["report.md", "metrics.json", "output_bag/metadata.yaml", "overlays/round_000.png"],
    "reasonseg_out": ["result.json", "masks.png", "overlay.png"],
}


def commands(path: Path) -> list[str]:
    """The commands of a document's bash fences: continuations joined, comments dropped, ``&&`` chains split."""
    found = []
    for block in FENCE.findall(path.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            chain: list[str] = []
            for token in [*tokens, "&&"]:
                if token == "&&":
                    if chain:
                        found.append(shlex.join(chain))
                    chain = []
                else:
                    chain.append(token)
    return found


def classify(command: str) -> str | None:
    """``None`` to run it, else the reason it is skipped; raises for an unclassified command."""
    for pattern, reason in SKIP:
        if re.search(pattern, command):
            return reason
    if RUN.match(command):
        return None
    raise AssertionError(f"unclassified documented command: {command!r}: add it to RUN or SKIP in {__file__}")


def test_every_documented_command_is_run_or_skipped_with_a_reason():
    for path in DOCS:
        for command in commands(path):
            classify(command)


def test_every_shipped_config_is_in_the_configuration_table():
    table = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for config in sorted((ROOT / "config").glob("*.yaml")):
        assert f"`{config.name}`" in table, f"config/{config.name} is not in docs/configuration.md's table"


def _runs(command: str) -> bool:
    try:
        return classify(command) is None
    except AssertionError:  # reported by the test above, not at collection
        return False


@pytest.mark.parametrize("doc", [p for p in DOCS if any(_runs(c) for c in commands(p))], ids=lambda p: p.name)
def test_documented_commands_run(doc, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("rosbags")
    work = tmp_path / "work"
    work.mkdir()
    for folder in ("config", "examples"):
        (work / folder).symlink_to(ROOT / folder)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path / "home"),  # no cached checkpoint: the offline fallback is what runs
        "HTTPS_PROXY": "http://127.0.0.1:9",  # nothing listens there: downloads fail at once, as offline
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    for command in commands(doc):
        if not _runs(command):
            continue
        argv = shlex.split(command)
        argv = [sys.executable, "-m", "reasonseg_ros.cli", *argv[1:], *(["--quiet"] if argv[1] == "replay" else [])]
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{doc.name}: `{command}` failed:\n{done.stdout}\n{done.stderr}"
    for folder, files in PROMISED.items():
        if (work / folder).exists():
            for name in files:
                assert (work / folder / name).is_file(), f"{doc.name}: {folder}/{name} was promised"
    report = work / "replay_out" / "report.md"
    if report.exists():  # offline, so the demo ran on the random fallback and must say so
        assert "Randomly initialised weights" in report.read_text() and "none (random weights)" in report.read_text()
