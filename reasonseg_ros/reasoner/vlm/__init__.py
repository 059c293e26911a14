"""Grounding-VLM reasoners (SAM4MLLM style): the model writes SAM prompts as JSON text.

``vlm`` runs the model locally with transformers; ``remote`` sends the same
prompt to an OpenAI-compatible server. See docs/vlm.md.
"""

from __future__ import annotations

from reasonseg_ros.config import ReasonerConfig
from reasonseg_ros.reasoner.vlm.prompt import PROMPT_VERSION
from reasonseg_ros.reasoner.vlm.reasoner import VlmReasoner


def create_local(config: ReasonerConfig) -> VlmReasoner:
    """The ``vlm`` backend: load ``config.vlm.model`` with transformers."""
    from reasonseg_ros.reasoner.vlm.local import LocalVlm

    return VlmReasoner(LocalVlm.load(config.vlm), config.vlm)


def create_remote(config: ReasonerConfig) -> VlmReasoner:
    """The ``remote`` backend: the same prompt over HTTP to ``config.remote.url``."""
    from reasonseg_ros.reasoner.vlm.remote import RemoteVlm

    return VlmReasoner(RemoteVlm(config.remote, config.vlm), config.vlm)


__all__ = ["PROMPT_VERSION", "VlmReasoner", "create_local", "create_remote"]
