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

"""SAM architectures, their official checkpoints, and finding the weights on disk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.errors import CheckpointError, ConfigError

OFFICIAL_URL = "https://dl.fbaipublicfiles.com/segment_anything/"


@dataclass(frozen=True)
class SamArch:
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    checkpoint_file: str | None
    """Name of the official checkpoint; None for architectures without published weights."""
    image_size: int = 1024
    """Side of the encoder's square input."""

    @property
    def url(self) -> str | None:
        return None if self.checkpoint_file is None else OFFICIAL_URL + self.checkpoint_file


SAM_ARCHS: dict[str, SamArch] = {
    "vit_h": SamArch(1280, 32, 16, (7, 15, 23, 31), "sam_vit_h_4b8939.pth"),
    "vit_l": SamArch(1024, 24, 16, (5, 11, 17, 23), "sam_vit_l_0b3195.pth"),
    "vit_b": SamArch(768, 12, 12, (2, 5, 8, 11), "sam_vit_b_01ec64.pth"),
    # SAM's own prompt encoder and decoder behind a two-block encoder at 256 px: tests and demos.
    "vit_tiny": SamArch(64, 2, 2, (1,), None, image_size=256),
}


def arch_of(model_type: str) -> SamArch:
    try:
        return SAM_ARCHS[model_type]
    except KeyError:
        known = ", ".join(SAM_ARCHS)
        raise ConfigError(f"segmenter.model_type '{model_type}' is not a SAM architecture ({known})") from None


def arch_name_for_width(embed_dim: int) -> str | None:
    """Which architecture a checkpoint is, from its encoder's embedding width."""
    for name, arch in SAM_ARCHS.items():
        if arch.embed_dim == embed_dim:
            return name
    return None


def resolve_checkpoint(config: SegmenterConfig) -> Path:
    """The weights file to load, downloading it first when the config allows."""
    arch = arch_of(config.model_type)
    if config.checkpoint:
        path = Path(config.checkpoint).expanduser()
        if not path.is_file():
            hint = f" (official weights: {arch.url})" if arch.url else ""
            raise CheckpointError(f"SAM checkpoint not found: {path}; set segmenter.checkpoint to the file{hint}")
        return path
    if arch.checkpoint_file is None:
        raise CheckpointError(
            f"SAM '{config.model_type}' has no official weights: set segmenter.checkpoint "
            "or segmenter.random_weights: true"
        )
    path = Path(config.cache_dir).expanduser() / arch.checkpoint_file
    if path.is_file():
        return path
    if config.download:
        from reasonseg_ros.segmenter.download import fetch

        return fetch(config.model_type, config.cache_dir)
    raise CheckpointError(
        f"SAM checkpoint not found: {path}; run `reasonseg download {config.model_type}` "
        f"(or download {arch.url} there), or set segmenter.checkpoint (or segmenter.download: true, "
        "or --download)"
    )


def cached_checkpoints(cache_dir: str) -> dict[str, Path]:
    """Official checkpoints present in ``cache_dir``, by architecture."""
    root = Path(cache_dir).expanduser()
    return {
        name: root / arch.checkpoint_file
        for name, arch in SAM_ARCHS.items()
        if arch.checkpoint_file and (root / arch.checkpoint_file).is_file()
    }


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file read in 1 MiB blocks (checkpoints are gigabytes; ``hashlib.file_digest`` needs 3.11)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
