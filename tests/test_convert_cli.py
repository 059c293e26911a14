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

"""``reasonseg convert``: what SRC is per format in --help, and a progress bar of the images written."""

import json

import numpy as np
import pytest

from reasonseg_ros.cli import main
from reasonseg_ros.eval.convert import FORMATS

pytest.importorskip("rosbags")
Image = pytest.importorskip("PIL.Image")


def test_help_says_what_src_is_for_every_format(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = capsys.readouterr().out
    for name in FORMATS:
        line = next(line for line in text.splitlines() if line.strip().startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10, f"no help for {name}"


def test_convert_shows_a_progress_bar_unless_quiet(tmp_path, capsys):
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(tmp_path / "scene.jpg")
    square = [5, 5, 15, 5, 15, 15, 5, 15]
    data = {"dialogues": [{"image": "scene.jpg", "rounds": [{"text": "the cup", "objects": [{"polygons": [square]}]}]}]}
    (tmp_path / "d.json").write_text(json.dumps(data))
    assert main(["convert", "multiround", str(tmp_path / "d.json"), "--out", str(tmp_path / "a")]) == 0
    assert "1image" in capsys.readouterr().err.replace(" ", "")
    assert main(["convert", "multiround", str(tmp_path / "d.json"), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert "image" not in capsys.readouterr().err
