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

"""``reasonseg export``: a checkpoint to checked ONNX files, and its one-line errors."""

import json

import numpy as np
import pytest
from helpers import scene

from reasonseg_ros.cli import main

torch = pytest.importorskip("torch", reason="the torch extra is not installed")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_sam, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "sam_tiny.pth"
    torch.save(tiny_sam.state_dict(), path)
    return path


def test_export_writes_checked_onnx_that_the_onnx_backend_runs(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["export", "--sam", "vit_tiny", "--checkpoint", str(tiny_checkpoint), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "checker ok" in printed and "decoder parity" in printed and "encoder parity" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"] == "sam_tiny.pth" and manifest["opset"] == 17

    from reasonseg_ros.config import load_config
    from reasonseg_ros.segmenter import create_segmenter
    from reasonseg_ros.types import Prompt

    overrides = {
        "segmenter.backend": "onnx",
        "segmenter.model_type": "vit_tiny",
        "segmenter.onnx.model_dir": str(out),
        "segmenter.onnx.providers": "cpu",
    }
    segmenter = create_segmenter(load_config(None, overrides).segmenter)
    result = segmenter.decode(segmenter.embed(scene(90, 120)), [Prompt(box=[10, 10, 60, 70])])
    assert result.masks.shape == (1, 90, 120) and np.isfinite(result.scores).all()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sam", "vit_b"], "is a SAM vit_tiny checkpoint but --sam is vit_b: use --sam vit_tiny"),
        (["--sam", "vit_tiny", "--checkpoint", "/nonexistent/sam.pth"], "SAM checkpoint not found"),
        (["--sam", "vit_tiny", "--checkpoint", None], "cannot read SAM checkpoint"),
        (["--sam", "vit_tiny", "--checkpoint", ""], "export needs --checkpoint FILE"),
    ],
    ids=["wrong-architecture", "missing", "corrupt", "none"],
)
def test_export_errors_are_one_line_naming_the_fix(tiny_checkpoint, tmp_path, capsys, args, expected):
    if "--checkpoint" not in args:
        args = [*args, "--checkpoint", str(tiny_checkpoint)]
    elif args[-1] is None:
        corrupt = tmp_path / "broken.pth"
        corrupt.write_bytes(b"not a checkpoint")
        args = [*args[:-1], str(corrupt)]
    elif args[-1] == "":
        args = args[:-2]
    assert main(["export", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1
    assert not (tmp_path / "o" / "encoder.onnx").exists()


def test_export_tensorrt_without_tensorrt_fails_before_exporting(tiny_checkpoint, tmp_path, capsys):
    from reasonseg_ros.deps import available

    if available("tensorrt"):
        pytest.skip("tensorrt is installed here; the GPU tests build engines")
    code = main(
        ["export", "--sam", "vit_tiny", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path), "--tensorrt"]
    )
    assert code == 2
    assert "reasonseg_ros[tensorrt]" in capsys.readouterr().err
    assert not (tmp_path / "encoder.onnx").exists()
