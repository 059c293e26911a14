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

    return VlmReasoner(LocalVlm.load(config.vlm), config.vlm, config.deadline_s)


def create_remote(config: ReasonerConfig) -> VlmReasoner:
    """The ``remote`` backend: the same prompt over HTTP to ``config.remote.url``."""
    from reasonseg_ros.reasoner.vlm.remote import RemoteVlm

    return VlmReasoner(RemoteVlm(config.remote, config.vlm), config.vlm, config.deadline_s)


__all__ = ["PROMPT_VERSION", "VlmReasoner", "create_local", "create_remote"]
