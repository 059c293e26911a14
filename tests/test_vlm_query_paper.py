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

"""Query mode's ``paper`` layout: SAM4MLLM's 15 in-box candidates and its P(yes) > 0.75 / P(no) > 0.9 rule."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from reasonseg_ros.config import VlmConfig, load_config
from reasonseg_ros.reasoner.vlm.coords import CoordinateFrame
from reasonseg_ros.reasoner.vlm.prompt import PromptText
from reasonseg_ros.reasoner.vlm.query import choose_paper_points, paper_points, refine_with_queries
from reasonseg_ros.types import Prompt, ReasonerOutput, Target

BOX = np.array([100, 200, 300, 400], dtype=np.float32)


def test_paper_candidates_are_sam4mllms_fifteen_points_in_the_box() -> None:
    points = paper_points(BOX)
    assert points.shape == (15, 2)
    # SAM4MLLM's inference gives them in percent of the box: (93, 70) is the first, (73, 73) the last
    assert points[0].tolist() == [100 + 0.93 * 200, 200 + 0.70 * 200]
    assert points[-1].tolist() == [100 + 0.73 * 200, 200 + 0.73 * 200]
    assert ((points > BOX[:2]) & (points < BOX[2:])).all()  # inside only, no ring around the box


def test_paper_rule_negative_first_then_positive_with_strict_thresholds_and_no_cap() -> None:
    points = np.arange(16, dtype=np.float32).reshape(8, 2)
    # P(yes) against P(no): P(no) = 1 - P(yes)
    p_yes = np.array([0.05, 0.1, 0.75, 0.76, 0.99, 0.5, 0.95, 0.09])
    chosen, labels = choose_paper_points(points, p_yes)
    # 0.05 and 0.09: P(no) > 0.9; 0.1: P(no) = 0.9, not above; 0.75 not above 0.75; 0.76, 0.99, 0.95 positive
    assert labels.tolist() == [0, 1, 1, 1, 0]
    np.testing.assert_array_equal(chosen, points[[0, 3, 4, 6, 7]])


class FixedScores:
    """A client whose yes/no scores are given; records what it was asked."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.asked: list[Any] = []

    def yes_probabilities(self, image: np.ndarray, prompt: PromptText, answer: str, groups: Any) -> list[float]:
        self.asked.extend(groups)
        return self.scores[: sum(len(g.questions) for g in groups)]


def refine(config: VlmConfig, scores: list[float]) -> tuple[ReasonerOutput, FixedScores]:
    client = FixedScores(scores)
    output = ReasonerOutput("", (Target("mug", Prompt(box=BOX)),))
    frame = CoordinateFrame("relative_1", (480, 640))
    refined = refine_with_queries(
        output, client, np.zeros((480, 640, 3), np.uint8), PromptText("", ""), "", frame, config
    )
    return refined, client


def test_the_config_key_selects_the_layout() -> None:
    scores = [0.8] * 10 + [0.05] * 5 + [0.8] * 5
    paper = load_config(None, {"reasoner.vlm.point_mode": "query", "reasoner.vlm.query_layout": "paper"})
    refined, client = refine(paper.reasoner.vlm, scores)
    assert len(client.asked[0].questions) == 15
    prompt = refined.targets[0].prompt
    assert prompt.point_labels.tolist() == [1] * 10 + [0] * 5  # no cap of 4
    np.testing.assert_allclose(prompt.points, paper_points(BOX))
    ring, client = refine(VlmConfig(point_mode="query"), scores)
    assert len(client.asked[0].questions) == 20
    assert ring.targets[0].prompt.point_labels.tolist() == [1] * 4 + [0] * 4  # the ring layout's cap


def test_an_unknown_layout_is_refused() -> None:
    from reasonseg_ros.errors import ConfigError

    with pytest.raises(ConfigError, match="query_layout"):
        load_config(None, {"reasoner.vlm.query_layout": "grid"})
