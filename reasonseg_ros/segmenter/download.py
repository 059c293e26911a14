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

"""Verified downloads of official weights: pooch for URL files, huggingface_hub for hub ids.

Every URL file is checked against a SHA-256 before it takes its final name
(pooch downloads into a temporary file beside it and moves it only when the
hash matches). Meta publishes no checksum for SAM: the SAM 1 file names carry
the first six hex digits of the file's MD5 (not of its SHA-256, as torch hub's
``name-<sha256 prefix>.ext`` convention would), and the full SHA-256 values
below are the ones quoted alike by independent projects; both are checked.
SAM 2.1 files have neither: their SHA-256 is recorded on the first download
(``recorded_hashes.json`` in the cache folder, said so on the console) and
every later download is checked against it.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from reasonseg_ros.deps import require
from reasonseg_ros.errors import CheckpointError
from reasonseg_ros.segmenter.checkpoints import SAM_ARCHS, file_digest
from reasonseg_ros.segmenter.sam2_image import SAM2_FILES, SAM2_URL

RECORDED = "recorded_hashes.json"
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WeightsFile:
    """One official weights file."""

    file: str
    url: str
    sha256: str | None
    """Published (or widely quoted) SHA-256; None: recorded on the first download."""
    md5_prefix: str | None = None
    """The hash prefix the file name carries (SAM 1: first hex digits of the MD5)."""


SHA256 = {
    # Quoted alike by independent projects; Meta publishes none. Their MD5 starts with the name's suffix.
    "sam_vit_b_01ec64.pth": "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
    "sam_vit_l_0b3195.pth": "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
    "sam_vit_h_4b8939.pth": "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
}


def _official_weights() -> dict[str, WeightsFile]:
    """Every official file by name: SAM 1 from ``SAM_ARCHS``, SAM 2.1 from ``SAM2_FILES`` (one list each)."""
    weights = {}
    for name, arch in SAM_ARCHS.items():
        if arch.checkpoint_file and arch.url:
            prefix = arch.checkpoint_file.rsplit("_", 1)[1].removesuffix(".pth")
            weights[name] = WeightsFile(arch.checkpoint_file, arch.url, SHA256[arch.checkpoint_file], prefix)
    for name, file in SAM2_FILES.items():
        weights[name] = WeightsFile(file, SAM2_URL + file, None)
    return weights


WEIGHTS: dict[str, WeightsFile] = _official_weights()


def is_hub_id(name: str) -> bool:
    """``owner/name`` (a Hugging Face hub repository) rather than a file of :data:`WEIGHTS`."""
    return name not in WEIGHTS and name.count("/") == 1 and not name.startswith((".", "/", "~"))


def fetch(name: str, cache_dir: str | Path, *, progress: bool = True, log: TextIO | None = None) -> Path:
    """The verified local copy of ``name`` (a key of :data:`WEIGHTS`), downloading it when missing.

    A file already in ``cache_dir`` is returned as it is (hashing gigabytes
    at every start would cost seconds); ``reasonseg download`` re-checks it.
    """
    spec = _spec(name)
    path = Path(cache_dir).expanduser() / spec.file
    if path.is_file():
        return path
    return download_file(spec, path.parent, progress=progress, log=log)


def verify(name: str, cache_dir: str | Path) -> tuple[Path, str]:
    """Check the cached file of ``name`` against its hash; returns its path and SHA-256."""
    spec = _spec(name)
    path = Path(cache_dir).expanduser() / spec.file
    expected = spec.sha256 or _recorded(path.parent).get(spec.file)
    digest = file_digest(path)
    if expected is not None and digest != expected:
        raise CheckpointError(
            f"{path} has SHA-256 {digest}, expected {expected}: the file is damaged or not the official one; "
            f"delete it and run `reasonseg download {name}` again"
        )
    return path, digest


def download_file(spec: WeightsFile, folder: Path, *, progress: bool = True, log: TextIO | None = None) -> Path:
    """Download ``spec`` into ``folder`` with pooch: resumable, with a progress bar, hash checked before the move."""
    pooch = require("pooch", "verified downloads")
    log = log or sys.stderr
    folder.mkdir(parents=True, exist_ok=True)
    recorded = _recorded(folder)
    expected = spec.sha256 or recorded.get(spec.file)
    target = folder / spec.file
    pooch.get_logger().setLevel("WARNING")  # its info lines repeat what the progress bar and this module say
    try:
        pooch.retrieve(
            spec.url,
            known_hash=f"sha256:{expected}" if expected else None,
            fname=spec.file,
            path=folder,
            downloader=ResumingDownloader(target.with_name(target.name + ".part"), progress),
        )
    except ValueError as exc:  # pooch: the hash did not match; the temporary file is already deleted
        raise CheckpointError(
            f"{spec.url} arrived with the wrong SHA-256 (expected {expected}); nothing was kept. "
            f"Try again, or fetch it by hand into {folder} and check it ({' '.join(str(exc).split())[:200]})"
        ) from exc
    except OSError as exc:
        raise CheckpointError(offline_hint(spec.url, target, exc)) from exc
    except Exception as exc:  # requests' connection and HTTP errors
        if type(exc).__module__.startswith(("requests", "urllib3")):
            raise CheckpointError(offline_hint(spec.url, target, exc)) from exc
        raise
    if spec.md5_prefix is not None and not file_digest(target, "md5").startswith(spec.md5_prefix):
        target.unlink()
        raise CheckpointError(
            f"{target.name} matched its SHA-256 but not the MD5 prefix {spec.md5_prefix} its name carries; deleted"
        )
    if expected is None:
        digest = file_digest(target)
        recorded[spec.file] = digest
        (folder / RECORDED).write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        print(
            f"no published checksum for {spec.file}: recorded its SHA-256 {digest} in {folder / RECORDED}; "
            "later downloads are checked against it",
            file=log,
        )
    return target


def offline_hint(url: str, target: Path, exc: BaseException) -> str:
    """One line for a machine that cannot reach ``url``: what to fetch, and where to put it."""
    reason = " ".join(str(exc).split())[:160]
    return (
        f"cannot download {url} ({type(exc).__name__}: {reason}); "
        f"on a connected machine fetch it and copy it to {target}"
    )


def download_hub(repo_id: str, cache_dir: str | Path | None = None, revision: str | None = None) -> Path:
    """A Hugging Face hub repository through ``huggingface_hub.snapshot_download`` (hash-checked LFS files)."""
    from reasonseg_ros.preflight import hub_problem

    hub = require("huggingface_hub", "downloading hub models")
    fix = (
        f"on a connected machine run `reasonseg download {repo_id}` and copy the hub cache "
        "(~/.cache/huggingface/hub) here, or point the config at a local folder"
    )
    problem = hub_problem(repo_id, fix)  # one request: huggingface_hub itself would retry for minutes
    if problem is not None:
        raise CheckpointError(problem)
    try:
        folder = hub.snapshot_download(
            repo_id, revision=revision, cache_dir=str(Path(cache_dir).expanduser()) if cache_dir else None
        )
    except Exception as exc:  # the hub's connection, offline-mode and not-found errors share no base class
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(
            f"cannot download {repo_id} from the Hugging Face hub ({type(exc).__name__}: {reason}); "
            f"on a connected machine run `huggingface-cli download {repo_id}` and copy the hub cache "
            "(~/.cache/huggingface/hub) here, or point the config at a local folder"
        ) from exc
    return Path(folder)


class ResumingDownloader:
    """A pooch downloader that continues a partial file with an HTTP range request.

    The bytes go to ``part`` (kept after a dropped connection, so the next
    try resumes), then move into pooch's temporary file, which pooch hashes
    and renames, or deletes on a mismatch.
    """

    def __init__(self, part: Path, progress: bool = True) -> None:
        self.part = part
        self.progress = progress

    def __call__(self, url: str, output_file: str | Any, pooch: Any = None, check_only: bool = False) -> bool | None:
        requests = require("requests", "verified downloads")
        if check_only:
            return requests.head(url, allow_redirects=True, timeout=CONNECT_TIMEOUT_S).ok
        have = self.part.stat().st_size if self.part.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        with requests.get(url, stream=True, headers=headers, timeout=timeout) as response:
            if response.status_code == 416:  # asked past the end: the part file is already whole
                response.close()
            else:
                response.raise_for_status()
                if have and response.status_code != 206:  # the server ignored the range: start over
                    have = 0
                total = int(response.headers.get("content-length", 0)) + have
                tqdm = require("tqdm", "the download progress bar").tqdm
                with (
                    open(self.part, "ab" if have else "wb") as sink,
                    tqdm(
                        total=total or None,
                        initial=have,
                        unit="B",
                        unit_scale=True,
                        desc=self.part.name.removesuffix(".part"),
                        disable=not self.progress,
                        file=sys.stderr,
                    ) as bar,
                ):
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        sink.write(chunk)
                        bar.update(len(chunk))
        shutil.move(str(self.part), str(output_file))
        return None


def _recorded(folder: Path) -> dict[str, str]:
    path = folder / RECORDED
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not readable JSON ({exc}); delete it to record the hashes again") from exc
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _spec(name: str) -> WeightsFile:
    try:
        return WEIGHTS[name]
    except KeyError:
        known = ", ".join(WEIGHTS)
        raise CheckpointError(f"no official weights named '{name}' (known: {known}, or a hub id owner/name)") from None
