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

"""SAM backends, chosen by ``segmenter.backend``."""

from __future__ import annotations

from typing import Any

from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.errors import ConfigError
from reasonseg_ros.segmenter.base import DecodeResult, ImageEmbedding, Segmenter


def create_segmenter(config: SegmenterConfig, reasoner: Any = None) -> Segmenter:
    """Build the configured backend and load its weights (may take seconds).

    ``checkpoint: from_reasoner`` takes the SAM inside the reasoner's checkpoint (seg_token backend).
    """
    if config.backend == "torch":
        from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter

        if config.checkpoint == "from_reasoner":
            if reasoner is None:
                raise ConfigError("segmenter.checkpoint: from_reasoner needs the reasoner built first and passed in")
            if not hasattr(reasoner, "sam_state_dict"):
                raise ConfigError("segmenter.checkpoint: from_reasoner needs reasoner.backend: seg_token")
            return TorchSamSegmenter.from_state_dict(reasoner.sam_state_dict(), config)
        return TorchSamSegmenter.from_config(config)
    if config.backend == "sam2":
        from reasonseg_ros.segmenter.sam2_image import Sam2ImageSegmenter

        if config.checkpoint == "from_reasoner":
            raise ConfigError("segmenter.checkpoint: from_reasoner needs a SAM backend (torch), not sam2")
        return Sam2ImageSegmenter.from_config(config)
    if config.backend in ("onnx", "tensorrt"):
        from reasonseg_ros.segmenter.exported import ExportedSamSegmenter

        return ExportedSamSegmenter.from_config(config)
    raise ConfigError(f"segmenter.backend '{config.backend}' is not available")


__all__ = ["DecodeResult", "ImageEmbedding", "Segmenter", "create_segmenter"]
