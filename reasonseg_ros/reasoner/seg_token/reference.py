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


r"""The reference evaluation protocol: each paper's own question and ground-truth answer, teacher-forced.

LISA, GSVA and READ are not scored on free generation: their evaluation
code builds the question and the *ground-truth* answer for each sample, runs
one forward over both, and takes the [SEG] states from it. Written out from
the references (read for facts only):

- LISA (``utils/dataset.py`` ``ValDataset``): ``"<image>\n {sentence} Please
  output segmentation mask."`` for a ReasonSeg sentence, ``"<image>\n What is
  {phrase} in this image? Please output segmentation mask."`` for a phrase
  (lower-cased for RefCOCO); answer ``"[SEG]."``; ReasonSeg keeps only the
  first text of an image.
- READ (``dataloaders/test_dataset.py`` ``TestReasoningDataset``): the same
  without the space after the newline, answer ``"Sure, the segmentation result
  is [SEG]."``.
- GSVA (``data/dataset.py`` ``ValDataset``): ReasonSeg as LISA with answer
  ``"[SEG]"``; RefCOCO-style ``"<image>\n What are {phrases}in this image?
  Please output segmentation masks."`` (no space before ``in``, as written
  there) and ``"Sure,{phrase}:[SEG]."`` or ``:[REJ]`` for an absent one. At
  each marker the prediction is the ground-truth marker if the whole-vocabulary
  argmax there is that marker, else the other one
  (``model/modeling_lisa_gsva.py``); masks come from a second forward with
  every ``[REJ]`` replaced by ``[SEG]``, and ``solver.py`` ``eval_gres``
  scores a present target's mask even when [REJ] was predicted.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reasonseg_ros.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from reasonseg_ros.memory import MemoryView
    from reasonseg_ros.types import ReasonerOutput


@dataclass(frozen=True)
class ReferenceRound:
    """One sample as a reference evaluation poses it."""

    phrase: str
    """The referring phrase or ReasonSeg sentence (the label of the result)."""
    question: str
    """The user message after the image."""
    answer: str
    """The ground-truth answer that is teacher-forced."""
    present: bool = True
    scored: bool = True
    """False for samples the reference leaves out (ReasonSeg texts after an image's first)."""
    marker: int | None = None
    """Which marker of the answer is this sample's (GSVA asks all of an image's phrases at once); None: all."""


def reference_round(
    layout: str,
    phrase: str,
    present: bool,
    referring: bool,
    is_sentence: bool = False,
    first: bool = True,
    group: tuple[tuple[str, bool], ...] = (),
    position: int = 0,
) -> ReferenceRound:
    """The question and answer ``layout``'s evaluation code builds for ``phrase``.

    ``referring``: a RefCOCO-style phrase (lower-cased by the references), else a ReasonSeg text
    (``is_sentence`` from its annotation; only an image's ``first`` text is scored). ``group``: all
    ``(phrase, present)`` of the image, this one at ``position`` (GSVA asks them in one question).
    """
    text = phrase.strip()
    scored = referring or first
    if layout == "gsva" and referring:
        asked = group or ((text, present),)
        stripped = [p.strip().lower().strip(".") for p, _ in asked]
        parts = [f"{p}:{'[SEG]' if here else '[REJ]'}" for p, (_, here) in zip(stripped, asked, strict=True)]
        question = " What are " + ", ".join(stripped) + "in this image? Please output segmentation masks."
        return ReferenceRound(text, question, "Sure," + ", ".join(parts) + ".", present, True, position)
    if layout == "read":
        question = (
            f"{text} Please output segmentation mask."
            if is_sentence
            else f"What is {text.lower()} in this image? Please output segmentation mask."
        )
        return ReferenceRound(text, question, "Sure, the segmentation result is [SEG].", present, scored)
    if layout not in ("lisa", "gsva"):
        raise ValueError(f"no reference protocol for layout {layout!r} (lisa, gsva, read)")
    shown = text.lower() if referring else text
    question = (
        f" {shown} Please output segmentation mask."
        if is_sentence
        else f" What is {shown} in this image? Please output segmentation mask."
    )
    return ReferenceRound(text, question, "[SEG]" if layout == "gsva" else "[SEG].", present, scored)


class ReferenceProtocol:
    """Wraps a ``seg_token`` reasoner for bag replay: each instruction is answered as its reference scores it.

    Replay queues every instruction's :class:`ReferenceRound` (:meth:`expect`) before the bag is played,
    as it does for the oracle reasoner.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = f"{inner.name}, reference protocol (ground-truth answer teacher-forced)"
        self._expected: dict[tuple[str, str], deque[ReferenceRound]] = defaultdict(deque)

    def expect(self, session: str, text: str, sample: ReferenceRound) -> None:
        self._expected[(session, text)].append(sample)

    def reason(self, image: np.ndarray, text: str, memory: MemoryView) -> ReasonerOutput:
        queue = self._expected.get((memory.session, text))
        if not queue:
            raise InputError("the reference protocol has no ground-truth answer for this instruction")
        return self.inner.reference(image, queue.popleft())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # sam_state_dict, timings: the wrapped reasoner's
