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

"""Query mode (SAM4MLLM's PQPP): candidate points around each box are asked as yes/no questions.

The model first answers with boxes; then, for every target with a box,
candidate points inside and around it are each asked "is this point on the
object?". The probability of "Yes" against "No" picks positive and negative
SAM points. The questions are the next user turn after the model's answer.
Scoring is the client's job (:meth:`VlmClient.yes_probabilities`): the local
backend continues the KV cache of the answer's own generation (the image is
not encoded again), extends it once by each target's text, and scores all of
the target's candidates in one forward.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from reasonseg_ros.config import VlmConfig
from reasonseg_ros.reasoner.vlm.client import QueryGroup, VlmClient
from reasonseg_ros.reasoner.vlm.coords import CoordinateFrame
from reasonseg_ros.reasoner.vlm.prompt import PromptText, query_question, query_target
from reasonseg_ros.types import Prompt, ReasonerOutput, Target

INSIDE_SHARE = 0.7
"""Share of the candidates on a grid inside the box; the rest ring it."""
PAPER_POINTS = (
    (93, 70), (51, 89), (91, 90), (32, 32), (88, 10),
    (12, 28), (29, 52), (49, 49), (28, 12), (59, 60),
    (9, 48), (52, 29), (31, 92), (68, 13), (73, 73),
)  # fmt: skip
"""SAM4MLLM's 15 fixed quasi-random candidates, ``(x, y)`` in percent of the box's width and height."""
PAPER_POSITIVE = 0.75
"""SAM4MLLM: a candidate with P(yes) above this is a positive point..."""
PAPER_NEGATIVE = 0.9
"""...and one with P(no) above this a negative point (checked first)."""


def paper_points(box: np.ndarray) -> np.ndarray:
    """SAM4MLLM's 15 candidates placed in ``box`` (all inside it, none around it)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    share = np.asarray(PAPER_POINTS, dtype=np.float64) / 100.0
    return (np.array([x1, y1]) + share * [x2 - x1, y2 - y1]).astype(np.float32)


def choose_paper_points(points: np.ndarray, p_yes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SAM4MLLM's rule, in candidate order and without a cap: P(no) > 0.9 -> 0, else P(yes) > 0.75 -> 1.

    ``p_yes`` is P(yes) against P(no), so P(no) is ``1 - p_yes`` (see docs/vlm.md for the difference to
    SAM4MLLM's whole-vocabulary probabilities).
    """
    picked, labels = [], []
    for index, p in enumerate(np.asarray(p_yes, dtype=np.float64)):
        if 1.0 - p > PAPER_NEGATIVE:
            picked.append(index), labels.append(0)
        elif p > PAPER_POSITIVE:
            picked.append(index), labels.append(1)
    return points[picked].reshape(-1, 2), np.asarray(labels, dtype=np.int64)


def candidate_points(box: np.ndarray, count: int, margin: float, image_size: tuple[int, int]) -> np.ndarray:
    """Up to ``count`` ``(x, y)`` pixels: a grid inside ``box`` and a ring ``margin`` × its size around it.

    Deterministic, so that a round can be replayed; ring points outside the
    image are left out.
    """
    if count < 1:
        return np.zeros((0, 2), dtype=np.float32)
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = x2 - x1, y2 - y1
    inside = max(1, round(count * INSIDE_SHARE)) if count > 1 else 1
    cols = max(1, math.ceil(math.sqrt(inside * width / max(height, 1e-6))))
    rows = max(1, math.ceil(inside / cols))
    xs = x1 + (np.arange(cols) + 0.5) * width / cols
    ys = y1 + (np.arange(rows) + 0.5) * height / rows
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    # centre-out order so that a grid larger than the budget keeps the middle
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    grid = grid[np.argsort(np.linalg.norm((grid - centre) / [max(width, 1e-6), max(height, 1e-6)], axis=1))][:inside]
    ring_count = count - len(grid)
    ring = np.zeros((0, 2))
    if ring_count > 0:
        angles = np.linspace(0, 2 * np.pi, ring_count, endpoint=False)
        half = np.array([width, height]) * (0.5 + margin)
        # points on the ellipse through the corners of the enlarged box
        ring = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * half * math.sqrt(2)
        image_h, image_w = image_size
        keep = (ring[:, 0] >= 0) & (ring[:, 0] < image_w) & (ring[:, 1] >= 0) & (ring[:, 1] < image_h)
        ring = ring[keep]
    return np.concatenate([grid, ring]).astype(np.float32)


def choose_points(
    points: np.ndarray, p_yes: np.ndarray, positive: float, negative: float, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """The candidates the model is surest of, as SAM ``(points, labels)`` (1 object, 0 background)."""
    order = np.argsort(-p_yes, kind="stable")
    pos = [i for i in order if p_yes[i] >= positive][:max_points]
    neg = [i for i in order[::-1] if p_yes[i] <= negative][:max_points]
    picked = pos + neg
    labels = np.array([1] * len(pos) + [0] * len(neg), dtype=np.int64)
    return points[picked].reshape(-1, 2), labels


def refine_with_queries(
    output: ReasonerOutput,
    client: VlmClient,
    image: np.ndarray,
    prompt: PromptText,
    answer: str,
    frame: CoordinateFrame,
    config: VlmConfig,
) -> ReasonerOutput:
    """Replace the points of every boxed target with the ones its yes/no queries choose."""
    plan: list[tuple[int, np.ndarray]] = []
    groups: list[QueryGroup] = []
    for index, target in enumerate(output.targets):
        box = target.prompt.box
        if box is None:
            continue
        if config.query_layout == "paper":
            points = paper_points(box)
        else:
            points = candidate_points(box, config.query_candidates, config.query_margin, frame.image_size)
        if not len(points):
            continue
        model_box = frame.box_from_pixels(tuple(float(v) for v in box))  # type: ignore[arg-type]
        questions = []
        for x, y in points:
            mx, my = frame.from_pixels(float(x), float(y))
            questions.append(query_question(round(mx), round(my)))
        groups.append(QueryGroup(query_target(target.label, model_box), tuple(questions)))
        plan.append((index, points))
    if not groups:
        return output
    p_yes = np.asarray(client.yes_probabilities(image, prompt, answer, groups), dtype=np.float64)
    targets = list(output.targets)
    warnings = list(output.warnings)
    start = 0
    for index, points in plan:
        scores = p_yes[start : start + len(points)]
        start += len(points)
        if config.query_layout == "paper":
            chosen, labels = choose_paper_points(points, scores)
        else:
            chosen, labels = choose_points(
                points, scores, config.query_positive, config.query_negative, config.query_max_points
            )
        target = targets[index]
        if not np.any(labels == 1):
            warnings.append(f'query mode: no candidate point of "{target.label}" passed; its box alone prompts SAM')
        prompt = Prompt(
            points=chosen if len(chosen) else None, point_labels=labels if len(chosen) else None, box=target.prompt.box
        )
        targets[index] = Target(target.label, prompt, target.score, target.object_id)
    return replace(output, targets=tuple(targets), warnings=tuple(warnings))
