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

"""Verified downloads against a loopback HTTP server: hash ok, mismatch, resume, offline."""

import hashlib
import http.server
import json
import socket

import pytest
from helpers import loopback_server

pytest.importorskip("pooch")
pytest.importorskip("requests")

from reasonseg_ros import cli
from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.errors import CheckpointError
from reasonseg_ros.segmenter import download
from reasonseg_ros.segmenter.checkpoints import resolve_checkpoint

PAYLOAD = bytes(range(256)) * 1200  # 307 200 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, honouring ``Range: bytes=N-`` as a real file server does."""

    requests_seen: list[str | None] = []  # noqa: RUF012
    cut_after: int | None = None
    """Drop the connection after this many bytes (a broken download)."""

    def do_GET(self):
        type(self).requests_seen.append(self.headers.get("Range"))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cut_after is not None:
            self.wfile.write(body[: type(self).cut_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.requests_seen = []
    _Handler.cut_after = None
    with loopback_server(_Handler) as url:
        yield f"{url}/", _Handler


def _spec(url, sha=SHA, md5_prefix=None):
    return download.WeightsFile("weights.bin", url + "weights.bin", sha, md5_prefix)


def test_download_verifies_the_sha256(tmp_path, server):
    url, _ = server
    path = download.download_file(_spec(url, md5_prefix=MD5[:6]), tmp_path, progress=False)
    assert path == tmp_path / "weights.bin"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]


def test_a_hash_mismatch_is_a_clear_error_and_leaves_no_file(tmp_path, server):
    url, _ = server
    with pytest.raises(CheckpointError, match=r"wrong SHA-256.*nothing was kept"):
        download.download_file(_spec(url, sha="0" * 64), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_name_prefix_deletes_the_file(tmp_path, server):
    url, _ = server
    with pytest.raises(CheckpointError, match="MD5 prefix"):
        download.download_file(_spec(url, md5_prefix="ffffff"), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_broken_download_resumes_with_a_range_request(tmp_path, server):
    url, handler = server
    handler.cut_after = 200_000
    with pytest.raises(CheckpointError, match="cannot download"):
        download.download_file(_spec(url), tmp_path, progress=False)
    part = tmp_path / "weights.bin.part"
    kept = part.stat().st_size
    assert 0 < kept <= 200_000 and not (tmp_path / "weights.bin").exists()
    handler.cut_after = None
    path = download.download_file(_spec(url), tmp_path, progress=False)
    assert handler.requests_seen[-1] == f"bytes={kept}-"
    assert path.read_bytes() == PAYLOAD and not part.exists()


def test_offline_is_one_line_naming_what_to_fetch_and_where(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on: connection refused, as on a machine offline
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = _spec(f"http://127.0.0.1:{port}/")
    with pytest.raises(CheckpointError) as caught:
        download.download_file(spec, tmp_path, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert spec.url in message and str(tmp_path / "weights.bin") in message
    assert not (tmp_path / "weights.bin").exists()


def test_an_unpublished_hash_is_recorded_then_enforced(tmp_path, server, capsys):
    url, _ = server
    download.download_file(_spec(url, sha=None), tmp_path, progress=False)
    assert json.loads((tmp_path / download.RECORDED).read_text()) == {"weights.bin": SHA}
    assert "recorded its SHA-256" in capsys.readouterr().err
    (tmp_path / "weights.bin").unlink()
    (tmp_path / download.RECORDED).write_text(json.dumps({"weights.bin": "1" * 64}))
    with pytest.raises(CheckpointError, match="wrong SHA-256"):
        download.download_file(_spec(url, sha=None), tmp_path, progress=False)


def test_segmenter_download_goes_through_the_verified_fetch(tmp_path, server, monkeypatch):
    url, _ = server
    monkeypatch.setitem(download.WEIGHTS, "vit_b", download.WeightsFile("sam_vit_b_01ec64.pth", url + "x", SHA))
    config = SegmenterConfig(model_type="vit_b", cache_dir=str(tmp_path), download=True)
    assert resolve_checkpoint(config).read_bytes() == PAYLOAD
    with pytest.raises(CheckpointError, match="reasonseg download vit_l"):
        resolve_checkpoint(SegmenterConfig(model_type="vit_l", cache_dir=str(tmp_path)))


def test_download_command_fetches_then_reverifies(tmp_path, server, monkeypatch, capsys):
    url, _ = server
    monkeypatch.setitem(download.WEIGHTS, "vit_b", download.WeightsFile("sam_vit_b_01ec64.pth", url + "x", SHA))
    assert cli.main(["download", "vit_b", "--cache-dir", str(tmp_path), "--quiet"]) == 0
    assert "downloaded, verified" in capsys.readouterr().out
    assert cli.main(["download", "vit_b", "--cache-dir", str(tmp_path)]) == 0
    assert SHA in capsys.readouterr().out
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"damaged")
    assert cli.main(["download", "vit_b", "--cache-dir", str(tmp_path)]) == 2
    assert "damaged or not the official one" in capsys.readouterr().err


def test_hub_download_offline_is_one_line_at_once(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    with socket.socket() as probe:  # nothing listens: the hub "is down"
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(CheckpointError) as caught:
        download.download_hub("google/owlv2-base-patch16-ensemble", tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "unreachable" in message
    assert "reasonseg download google/owlv2-base-patch16-ensemble" in message


def test_published_sam_hashes_match_the_name_prefixes_convention():
    # SAM 1 names end in the MD5 prefix; each entry carries the prefix of its own name.
    for name in ("vit_b", "vit_l", "vit_h"):
        spec = download.WEIGHTS[name]
        assert spec.file.endswith(f"_{spec.md5_prefix}.pth") and len(spec.sha256) == 64


def test_random_fallback_runs_and_says_so_everywhere(tmp_path, capsys):
    pytest.importorskip("torch")
    Image = pytest.importorskip("PIL.Image")
    from helpers import scene

    image = tmp_path / "scene.png"
    Image.fromarray(scene(60, 80)).save(image)
    sets = ["--set", "segmenter.model_type=vit_b", "--set", f"segmenter.cache_dir={tmp_path / 'empty'}"]
    target = '[{"label": "a", "box": [5, 5, 40, 40]}]'
    assert cli.main(["segment", str(image), target, "--out", str(tmp_path / "o"), *sets]) == 2
    capsys.readouterr()
    fallback = [*sets, "--set", "segmenter.random_fallback=vit_tiny"]
    assert cli.main(["segment", str(image), target, "--out", str(tmp_path / "o"), *fallback]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM WEIGHTS" in printed and "fallback, no vit_b checkpoint" in printed and "why: " in printed
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    assert result["random_weights"] is True and result["objects"][0]["label"] == "a"


def test_threads_setting_reaches_torch():
    torch = pytest.importorskip("torch")
    from reasonseg_ros.segmenter.sam_torch import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(0)  # 0 leaves whatever is set
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("argv", [["segment", "x.png", "the mug"], ["replay", "bag", "--out", "o"]])
def test_download_flag_sets_segmenter_download(argv):
    parser = cli.build_parser()
    assert cli.load(parser.parse_args(argv)).segmenter.download is False
    assert cli.load(parser.parse_args([*argv, "--download"])).segmenter.download is True
