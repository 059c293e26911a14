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

import json

import numpy as np
import pytest
from helpers import scene

from reasonseg_ros.cli import main

Image = pytest.importorskip("PIL.Image", reason="pillow is not installed")
pytest.importorskip("torch", reason="the torch extra is not installed")

TINY = ["--set", "segmenter.model_type=vit_tiny", "--set", "segmenter.random_weights=true"]


def test_segment_writes_masks_overlay_and_result(tmp_path, capsys):
    image = tmp_path / "scene.png"
    Image.fromarray(scene(120, 160)).save(image)
    instruction = json.dumps(
        {"targets": [{"label": "a", "box": [10, 10, 80, 90]}, {"label": "b", "points": [[120, 30]]}]}
    )
    out = tmp_path / "out"
    assert main(["segment", str(image), instruction, "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "random weights" in printed and "object 1 'a'" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["ok"] is True and [o["label"] for o in result["objects"]] == ["a", "b"]
    labels = np.asarray(Image.open(out / "masks.png"))
    assert labels.shape == (120, 160)
    assert set(np.unique(labels)) <= {0, 1, 2} and (labels > 0).any()
    overlay = np.asarray(Image.open(out / "overlay.png"))
    assert overlay.shape == (120, 160, 3)


def test_segment_reports_bad_instruction_and_missing_weights(tmp_path, capsys):
    image = tmp_path / "scene.png"
    Image.fromarray(scene(60, 80)).save(image)
    assert main(["segment", str(image), "find the mug", "--out", str(tmp_path / "o"), *TINY]) == 1
    assert "takes JSON" in capsys.readouterr().err
    code = main(
        ["segment", str(image), "[]", "--set", "segmenter.model_type=vit_b", "--set", f"segmenter.cache_dir={tmp_path}"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "sam_vit_b_01ec64.pth" in err and "https://dl.fbaipublicfiles.com" in err and "segmenter.checkpoint" in err
    assert main(["segment", str(tmp_path / "missing.png"), "[]", *TINY]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_info_lists_backends_and_checkpoints(tmp_path, capsys):
    (tmp_path / "sam_vit_l_0b3195.pth").write_bytes(b"x")
    assert main(["info", "--set", f"segmenter.cache_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "segmenter torch" in out and "available" in out
    assert str(tmp_path / "sam_vit_l_0b3195.pth") in out
    assert "not cached (https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth)" in out
