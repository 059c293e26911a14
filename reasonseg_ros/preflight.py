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

"""Checks that run before any model loads, so that a missing GPU, checkpoint or model is reported at once.

Each check returns a problem sentence (what is wrong and what to do) or
None; :func:`preflight` raises one :class:`ConfigError` naming all of them.
The model check never waits on the network for long: a hub id not in the
local cache is refused at once when offline (``HF_HUB_OFFLINE``,
``local_files_only``), else one short request asks the hub whether it exists.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from reasonseg_ros.config import Config
from reasonseg_ros.errors import ConfigError, ReasonsegError

HUB_TIMEOUT_S = 3.0
"""One request to the hub, no retries: enough to tell reachable from not."""


def preflight(config: Config, out_bag: Path | None = None, force: bool = False) -> None:
    """Raise a :class:`ConfigError` naming every problem found; ``out_bag``: a bag folder the command will write."""
    problems = [
        p
        for p in (
            *device_problems(config),
            checkpoint_problem(config),
            *sam2_problems(config),
            *model_problems(config),
            output_problem(out_bag, force) if out_bag is not None else None,
        )
        if p
    ]
    if problems:
        raise ConfigError("; ".join(problems))


def device_problems(config: Config) -> list[str]:
    """Every configured torch device that this machine does not have."""
    wanted = [("segmenter.device", config.segmenter.device)] if config.segmenter.backend in ("torch", "sam2") else []
    if config.tracking.backend == "sam2":
        wanted.append(("tracking.sam2.device", config.tracking.sam2.device))
    if config.reasoner.backend == "vlm":
        wanted.append(("reasoner.vlm.device", config.reasoner.vlm.device))
    if config.reasoner.backend == "seg_token":
        wanted.append(("reasoner.seg_token.device", config.reasoner.seg_token.device))
    problems = []
    for key, device in wanted:
        problem = device_problem(device)
        if problem:
            problems.append(f"{key} is '{device}' but {problem}; set {key}=cpu or run where that device exists")
    return problems


def device_problem(device: str) -> str | None:
    """Why ``device`` cannot be used here, or None. Imports torch only for a device other than the CPU."""
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return None
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "this machine has no CUDA GPU that torch can use"
        count = torch.cuda.device_count()
        if index and (not index.isdigit() or int(index) >= count):
            return f"this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})"
        return None
    if kind == "mps":
        return None if torch.backends.mps.is_available() else "MPS is not available here"
    try:
        torch.device(device)
    except (RuntimeError, ValueError):
        return "torch does not know that device"
    return None


def checkpoint_problem(config: Config) -> str | None:
    """A SAM checkpoint (torch backend) that is neither on disk nor to be downloaded."""
    seg = config.segmenter
    if seg.backend != "torch" or seg.random_weights or seg.checkpoint == "from_reasoner":
        return None
    if seg.random_fallback is not None:
        return None  # a missing checkpoint becomes random weights, said everywhere
    if seg.download and not seg.checkpoint:
        return None  # fetched at load time (an architecture without official weights is caught there)
    from dataclasses import replace

    from reasonseg_ros.segmenter.checkpoints import resolve_checkpoint

    try:
        resolve_checkpoint(replace(seg, download=False))  # only looks on disk
    except ReasonsegError as exc:
        return str(exc)
    return None


def sam2_problems(config: Config) -> list[str]:
    """A SAM 2.1 checkpoint (sam2 segmenter or tracker) that is not on disk."""
    from reasonseg_ros.segmenter.sam2_image import resolve_sam2_checkpoint

    wanted = []
    seg = config.segmenter
    if seg.backend == "sam2" and not seg.random_weights:
        wanted.append((seg.sam2.model, seg.checkpoint, seg.cache_dir, "segmenter"))
    track = config.tracking
    if track.backend == "sam2" and not track.sam2.random_weights:
        wanted.append((track.sam2.model, track.sam2.checkpoint, track.sam2.cache_dir, "tracking.sam2"))
    problems = []
    for model, checkpoint, cache_dir, setting in wanted:
        try:
            resolve_sam2_checkpoint(model, checkpoint, cache_dir, setting)
        except ReasonsegError as exc:
            problems.append(str(exc))
    return problems


def model_problems(config: Config) -> list[str]:
    """A reasoner model (hub id or folder) that is neither on disk, nor cached, nor on a reachable hub."""
    reasoner = config.reasoner
    if reasoner.backend == "vlm":
        problem = model_problem(reasoner.vlm.model, reasoner.vlm.local_files_only, "reasoner.vlm.model")
        return [problem] if problem else []
    if reasoner.backend == "detector":
        detector = reasoner.detector
        problem = model_problem(detector.model, detector.local_files_only, "reasoner.detector.model")
        return [problem] if problem else []
    if reasoner.backend == "seg_token" and reasoner.seg_token.checkpoint:
        problem = model_problem(reasoner.seg_token.checkpoint, False, "reasoner.seg_token.checkpoint")
        return [problem] if problem else []
    return []


def model_problem(model: str, local_files_only: bool, key: str) -> str | None:
    """Why ``model`` (a folder or a hub id) cannot be loaded here, or None; at most one short hub request."""
    path = Path(model).expanduser()
    if path.exists():
        return None
    if model.startswith(("/", ".", "~")) or model.count("/") > 1 or not model.strip("/"):
        return f"{key} '{model}' is not an existing folder; point it at the folder that holds the model"
    if _cached(model):
        return None
    offline = local_files_only or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    fix = f"fetch it where there is network (huggingface-cli download {model}) or set {key} to a local folder"
    if offline:
        why = f"{key.rsplit('.', 1)[0]}.local_files_only is set" if local_files_only else "HF_HUB_OFFLINE is set"
        return f"the model '{model}' is not in the local Hugging Face cache and {why}; {fix}"
    return hub_problem(model, fix)


def _cached(model: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:  # an id the cache layout refuses is simply not cached
        return False


def hub_problem(model: str, fix: str) -> str | None:
    """Why the hub cannot serve ``model`` now, or None: one request, no retries (huggingface_hub would retry)."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    request = urllib.request.Request(f"{endpoint}/api/models/{model}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=HUB_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return None  # gated or private: the loader will say whether the token grants it
        if exc.code == 404:
            return f"the Hugging Face hub has no model '{model}'; check the id"
        return f"the Hugging Face hub answered HTTP {exc.code} for '{model}'; {fix}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return (
            f"the model '{model}' is not in the local Hugging Face cache and the hub is unreachable ({reason}); {fix}"
        )


def output_problem(bag: Path, force: bool) -> str | None:
    """An output bag folder that exists and would not be replaced."""
    if not bag.exists() or force:
        return None
    return f"{bag} exists already: pass --force to replace it, or choose another --out"
