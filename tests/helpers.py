"""Small builders shared by the tests."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from reasonseg_ros.types import Frame


def scene(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def frame(stamp_ns: int = 0, height: int = 240, width: int = 320, seed: int = 0) -> Frame:
    return Frame(scene(height, width, seed), stamp_ns, "camera")


def targets(*entries: dict[str, Any], **extra: Any) -> str:
    return json.dumps({"targets": list(entries), **extra})
