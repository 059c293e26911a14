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

"""The reasoner interface: instruction + image + memory -> SAM prompts or rejections."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from reasonseg_ros.memory import MemoryView
from reasonseg_ros.types import ReasonerOutput


class Reasoner(Protocol):
    name: str
    """Human-readable description (backend, model, weights) for results and reports."""

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> ReasonerOutput:
        """Decide what to segment in ``image`` (H×W×3 uint8 RGB) for ``text``.

        Raises :class:`~reasonseg_ros.errors.InputError` for an instruction it
        cannot act on; the engine turns that into an error round.
        """
        ...
