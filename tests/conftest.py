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

"""Shared fixtures: one tiny SAM (real segment_anything classes, random weights) per test session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reasonseg_ros.config import Config, load_config
from reasonseg_ros.engine import Engine
from reasonseg_ros.reasoner.prompt import PromptReasoner

TINY = {"segmenter.model_type": "vit_tiny", "segmenter.random_weights": True}


@pytest.fixture(scope="session")
def tiny_sam() -> Any:
    torch = pytest.importorskip("torch", reason="the torch extra is not installed")
    from reasonseg_ros.segmenter.sam_torch import build_sam

    torch.manual_seed(0)
    return build_sam("vit_tiny")


@pytest.fixture(scope="session")
def segmenter(tiny_sam: Any) -> Any:
    from reasonseg_ros.segmenter.sam_torch import TorchSamSegmenter

    return TorchSamSegmenter(tiny_sam, name="torch SAM vit_tiny (random weights)")


@pytest.fixture(scope="session")
def tiny_sam2() -> Any:
    """One tiny random SAM 2.1 (the sam2 package's classes, shrunk: tests/sam2_tiny.py) per session."""
    pytest.importorskip("torch", reason="the torch extra is not installed")
    pytest.importorskip("sam2", reason="the sam2 extra is not installed")
    from sam2_tiny import tiny_overrides

    from reasonseg_ros.segmenter.sam2_image import Sam2Model

    return Sam2Model.build("sam2.1_hiera_t", None, "", "cpu", True, "segmenter", tiny_overrides())


@pytest.fixture
def encoder_calls(tiny_sam: Any) -> Any:
    """Counts real forward passes of the image encoder."""
    calls: list[int] = []
    handle = tiny_sam.image_encoder.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


@pytest.fixture
def make_engine(segmenter: Any) -> Callable[..., Engine]:
    def make(overrides: dict[str, Any] | None = None, **kwargs: Any) -> Engine:
        config = load_config(None, {**TINY, **(overrides or {})})
        return Engine(kwargs.pop("segmenter", segmenter), kwargs.pop("reasoner", PromptReasoner()), config, **kwargs)

    return make


@pytest.fixture
def default_config() -> Config:
    return Config()
