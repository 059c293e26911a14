"""Reasoner backends, chosen by ``reasoner.backend``."""

from __future__ import annotations

from reasonseg_ros.config import ReasonerConfig
from reasonseg_ros.errors import ConfigError
from reasonseg_ros.reasoner.base import Reasoner


def create_reasoner(config: ReasonerConfig) -> Reasoner:
    if config.backend == "prompt":
        from reasonseg_ros.reasoner.prompt import PromptReasoner

        return PromptReasoner()
    if config.backend == "oracle":
        from reasonseg_ros.reasoner.oracle import OracleReasoner

        return OracleReasoner(config.oracle)
    if config.backend == "vlm":
        from reasonseg_ros.reasoner.vlm import create_local

        return create_local(config)
    if config.backend == "remote":
        from reasonseg_ros.reasoner.vlm import create_remote

        return create_remote(config)
    if config.backend == "seg_token":
        from reasonseg_ros.reasoner.seg_token.reasoner import SegTokenReasoner

        return SegTokenReasoner.from_config(config.seg_token)
    raise ConfigError(f"reasoner.backend '{config.backend}' is not available")


__all__ = ["Reasoner", "create_reasoner"]
