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

"""Every CLI failure is one line saying what to do, found before any model loads (issue 15)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
from helpers import loopback_server
from PIL import Image

from reasonseg_ros import cli
from reasonseg_ros.cli import main
from reasonseg_ros.preflight import model_problem

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "segmenter.model_type=vit_tiny", "--set", "segmenter.random_weights=true"]


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "scene.png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(path)
    return str(path)


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model fails the test: the checks must come first."""
    from reasonseg_ros.engine import Engine

    def refuse(*_: object) -> None:
        raise AssertionError("a model was loaded before the pre-flight checks failed")

    monkeypatch.setattr(Engine, "from_config", classmethod(refuse))


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_cuda_device_on_a_machine_without_one(image, tmp_path, capsys, monkeypatch, no_model_load):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["segment", image, "[]", *TINY, "--set", "segmenter.device=cuda", "--out", str(tmp_path / "o")])
    line = one_line(capsys)
    assert code == 2 and "segmenter.device is 'cuda'" in line and "segmenter.device=cpu" in line


def test_a_set_value_that_is_not_yaml(image, capsys, no_model_load):
    assert main(["segment", image, "[]", "--set", "segmenter.device=[cuda"]) == 2
    line = one_line(capsys)
    assert "--set segmenter.device" in line and "not valid YAML" in line and "quote it" in line


def test_an_instruction_file_that_is_missing(image, tmp_path, capsys, no_model_load):
    assert main(["segment", image, f"@{tmp_path / 'missing.txt'}", *TINY]) == 2
    line = one_line(capsys)
    assert "cannot read the instruction file" in line and "missing.txt" in line


def test_a_second_replay_into_the_same_folder_names_force_before_loading(tmp_path, capsys, no_model_load):
    out = tmp_path / "out"
    (out / "output_bag").mkdir(parents=True)
    (out / "output_bag" / "metadata.yaml").write_text("x")
    assert main(["replay", str(tmp_path / "bag"), "--out", str(out), *TINY]) == 2
    line = one_line(capsys)
    assert "output_bag exists already" in line and "--force" in line


def test_an_uncached_model_offline_is_refused_at_once_with_the_other_problems(
    image, tmp_path, capsys, monkeypatch, no_model_load
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    sets = ["segmenter.device=cpu", "reasoner.vlm.device=cpu", f"segmenter.cache_dir={tmp_path}"]
    config = str(ROOT / "config" / "vlm_local.yaml")
    code = main(
        ["segment", image, "the mug", "--config", config, "--out", str(tmp_path / "o")]
        + [arg for value in sets for arg in ("--set", value)]
    )
    line = one_line(capsys)
    assert code == 2 and "HF_HUB_OFFLINE is set" in line and "huggingface-cli download" in line
    assert "SAM checkpoint not found" in line  # both problems in the one line


def test_an_unexpected_failure_is_one_line_and_debug_shows_the_traceback(image, capsys, monkeypatch):
    def boom(_: object) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "cmd_info", boom)
    assert main(["info"]) == 1
    line = one_line(capsys)
    assert line == "reasonseg: unexpected RuntimeError: boom; run again with --debug for the traceback"
    assert main(["info", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err
    assert main(["--debug", "info"]) == 1 and "Traceback" in capsys.readouterr().err


def test_usage_errors_and_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["segment"])
    assert stop.value.code == 2
    assert "see reasonseg segment --help" in one_line(capsys)
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    from importlib.metadata import version

    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"reasonseg_ros {version('reasonseg_ros')}"


def test_the_installed_command_prints_one_line(tmp_path):
    """The console entry point as a user runs it, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "reasonseg_ros.cli", "segment", "x.png", f"@{tmp_path / 'nope.txt'}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


class Hub(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(200 if self.path == "/api/models/org/exists" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    with loopback_server(Hub) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        yield


def test_an_uncached_hub_id_is_asked_once_of_the_hub(hub, tmp_path):
    assert model_problem("org/exists", False, "reasoner.vlm.model") is None
    assert "has no model 'org/missing'" in model_problem("org/missing", False, "reasoner.vlm.model")
    assert "not an existing folder" in model_problem(str(tmp_path / "nowhere"), False, "reasoner.vlm.model")
    folder = tmp_path / "model"
    folder.mkdir()
    assert model_problem(str(folder), True, "reasoner.vlm.model") is None
    assert "local_files_only is set" in model_problem("org/exists", True, "reasoner.vlm.model")
