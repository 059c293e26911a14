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

"""Tracker backends, chosen by ``tracking.backend``."""

from __future__ import annotations

from typing import Any

from reasonseg_ros.config import TrackingConfig
from reasonseg_ros.errors import ConfigError
from reasonseg_ros.tracker.base import Tracker, TrackState


def create_tracker(config: TrackingConfig, segmenter: Any = None) -> Tracker | None:
    """Build the configured tracker (None for ``backend: none``).

    ``segmenter``: the round's segmenter, so a ``sam2`` tracker can share a ``sam2`` segmenter's model.
    """
    if config.backend == "none":
        return None
    if config.backend == "flow":
        from reasonseg_ros.tracker.flow import FlowTracker

        return FlowTracker(config.flow)
    if config.backend == "sam2":
        from reasonseg_ros.tracker.sam2_tracker import Sam2Tracker

        return Sam2Tracker.from_config(config.sam2, segmenter)
    raise ConfigError(f"tracking.backend '{config.backend}' is not available")


__all__ = ["TrackState", "Tracker", "create_tracker"]
