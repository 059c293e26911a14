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

"""The VLM reasoner: prompt a grounding VLM, read its JSON answer, optionally query points.

The same reasoner drives a local transformers model (``vlm`` backend) and an
OpenAI-compatible server (``remote`` backend); only the client differs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from reasonseg_ros.config import VlmConfig
from reasonseg_ros.memory import MemoryView
from reasonseg_ros.reasoner.vlm.answer import read_answer
from reasonseg_ros.reasoner.vlm.client import VlmClient
from reasonseg_ros.reasoner.vlm.coords import CONVENTIONS, CoordinateFrame
from reasonseg_ros.reasoner.vlm.prompt import PROMPT_VERSION, build_prompt
from reasonseg_ros.reasoner.vlm.query import refine_with_queries
from reasonseg_ros.types import ReasonerOutput


class VlmReasoner:
    def __init__(self, client: VlmClient, config: VlmConfig, deadline_s: float | None = None) -> None:
        self.client = client
        self.config = config
        self.deadline_s = deadline_s
        """``reasoner.deadline_s``: handed to a client that can keep a round within it (``begin_round``)."""
        self.name = f"{client.name}; prompt {PROMPT_VERSION}; {config.family} coordinates; {config.point_mode} points"

    def frame_for(self, height: int, width: int) -> CoordinateFrame:
        """How the model's coordinates map to this image's pixels."""
        needs_size = CONVENTIONS[self.config.family].kind == "resized_pixels"
        return CoordinateFrame(
            self.config.family, (height, width), self.client.model_size(height, width) if needs_size else None
        )

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> ReasonerOutput:
        height, width = image.shape[:2]
        frame = self.frame_for(height, width)
        prompt = build_prompt(
            text, memory, frame, memory_cap=self.config.memory_objects, point_mode=self.config.point_mode
        )
        begin_round = getattr(self.client, "begin_round", None)
        if begin_round is not None:
            begin_round(self.deadline_s)  # one deadline for the answer and every query of this round
        try:
            raw = self.client.generate(image, prompt)
            # an unreadable answer raises ModelOutputError carrying ``raw``; the engine makes it an error round
            output = read_answer(raw, frame, memory, text, keep_raw=self.config.keep_raw)
            if self.config.point_mode == "query" and output.targets:
                output = refine_with_queries(output, self.client, image, prompt, raw, frame, self.config)
        finally:
            if begin_round is not None:
                begin_round(None)  # a later direct use of the client is not held to this round's deadline
        return replace(output, prompt=prompt.render() if self.config.keep_prompt else None)
