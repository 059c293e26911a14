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

"""The segmenter interface every SAM backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from reasonseg_ros.types import Prompt


@dataclass(frozen=True)
class ImageEmbedding:
    """The image encoder's output for one frame, in the backend's own tensor type."""

    features: Any
    original_size: tuple[int, int]
    """``(height, width)`` of the frame."""
    input_size: tuple[int, int]
    """``(height, width)`` of the resized image inside the encoder's square input."""


@dataclass(frozen=True)
class DecodeResult:
    masks: np.ndarray
    """``N×H×W`` bool at the frame's size, in the order of the prompts."""
    scores: np.ndarray
    """``N`` predicted IoU of each returned mask."""


class Segmenter(Protocol):
    name: str
    """Human-readable description (backend, model, weights) for results and reports."""

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        """Run the image encoder on one H×W×3 uint8 RGB image."""
        ...

    def decode(self, embedding: ImageEmbedding, prompts: Sequence[Prompt]) -> DecodeResult:
        """Decode all prompts against one embedding (batched)."""
        ...
