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

"""What a VLM reasoner needs from a model: generate an answer, and score yes/no questions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from reasonseg_ros.reasoner.vlm.prompt import PromptText


@dataclass(frozen=True)
class QueryGroup:
    """The yes/no questions about one target (query mode)."""

    context: str
    """The sentence that places the target (its label and box); shared by its questions."""
    questions: tuple[str, ...]


class VlmClient(Protocol):
    name: str
    """The model and where it runs, for results and reports."""

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of the image as the model will see it (after the processor's resize)."""
        ...

    def generate(self, image: np.ndarray, prompt: PromptText) -> str:
        """The model's answer text for ``image`` and ``prompt``."""
        ...

    def yes_probabilities(
        self, image: np.ndarray, prompt: PromptText, answer: str, groups: Sequence[QueryGroup]
    ) -> np.ndarray:
        """P(Yes) / (P(Yes) + P(No)) of the first answer token for every question of every group, in order.

        Each question is the next user turn after ``prompt`` and the model's
        ``answer`` to it: the group's context, a space, the question.
        """
        ...
