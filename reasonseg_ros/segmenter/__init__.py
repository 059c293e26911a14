"""SAM backends, chosen by ``segmenter.backend``."""

from __future__ import annotations

from reasonseg_ros.config import SegmenterConfig
from reasonseg_ros.errors import ConfigError
from reasonseg_ros.segmenter.base import DecodeResult, ImageEmbedding, Segmenter


def create_segmenter(config: SegmenterConfig) -> Segmenter:
    """Build the configured backend and load its weights (may take seconds)."""
    if config.backend == "torch":
        from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter

        return TorchSamSegmenter.from_config(config)
    if config.backend in ("onnx", "tensorrt"):
        from reasonseg_ros.segmenter.exported import ExportedSamSegmenter

        return ExportedSamSegmenter.from_config(config)
    raise ConfigError(f"segmenter.backend '{config.backend}' is not available")


__all__ = ["DecodeResult", "ImageEmbedding", "Segmenter", "create_segmenter"]
