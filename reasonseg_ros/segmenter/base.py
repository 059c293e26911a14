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
