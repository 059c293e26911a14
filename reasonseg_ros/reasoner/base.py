"""The reasoner interface: instruction + image + memory -> SAM prompts or rejections."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from reasonseg_ros.memory import MemoryView
from reasonseg_ros.types import ReasonerOutput


class Reasoner(Protocol):
    name: str
    """Human-readable description (backend, model, weights) for results and reports."""

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> ReasonerOutput:
        """Decide what to segment in ``image`` (H×W×3 uint8 RGB) for ``text``.

        Raises :class:`~reasonseg_ros.errors.InputError` for an instruction it
        cannot act on; the engine turns that into an error round.
        """
        ...
