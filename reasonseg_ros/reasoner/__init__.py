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

        return SegTokenReasoner.from_config(config.seg_token, config.deadline_s)
    if config.backend == "detector":
        from reasonseg_ros.reasoner.detector import DetectorReasoner

        return DetectorReasoner.from_config(config.detector)
    raise ConfigError(f"reasoner.backend '{config.backend}' is not available")


__all__ = ["Reasoner", "create_reasoner"]
