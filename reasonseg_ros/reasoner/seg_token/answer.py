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

"""Generated answer -> ``[SEG]`` targets and ``[REJ]`` rejections, in the order the model wrote them.

GSVA is trained on five answer forms per target (LeapLabTHU/GSVA
``model/llava/constants.py``, ``ANSWER_LIST_MODE4_TEMPLATE``), joined by
``", "`` after an opening (``"The segmentation results are"``, ``"Sure, they
are"``, ``"Sure,"``) and closed by ``"."``; an absent target has ``[REJ]``
in place of ``[SEG]``:

- ``"{c} [SEG]"``
- ``"{c}:[SEG]"``
- ``"the mask of {c} is [SEG]"``
- ``"the segmentation of {c} is [SEG]"``
- ``"the referred {c} is [SEG]"``

and validated with ``"Sure,{c}:[SEG], {c2}:[REJ]."`` (``data/dataset.py``
``ValDataset``). LISA and READ write ``"Sure, it is [SEG]."`` or
``"Sure, the segmentation result is [SEG]."``, which name no phrase.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_SPACES = re.compile(r"\s+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n")
_SEPARATOR = re.compile(r"^[\s,;]*(?:(?:and|or|but|also|then)\b)?[\s,;]*", re.IGNORECASE)
_OPENING = re.compile(
    r"^(?:sure\b[\s,]*)?(?:(?:the segmentation results are|they are|here they are)\b\s*)?", re.IGNORECASE
)
_WRAPPED = re.compile(r"^(?:the mask of|the segmentation of|the referred)\s+(?P<phrase>.+?)\s+is$", re.IGNORECASE)
_NO_PHRASE = re.compile(r"(?:^|\s)(?:is|are)$|^(?:it|this|that|here|sure)$", re.IGNORECASE)
"""``"it is"``, ``"the segmentation result is"``, ``"here"``: LISA-style fillers, not a phrase."""


@dataclass(frozen=True)
class Marker:
    """One ``[SEG]`` or ``[REJ]`` of the answer."""

    kind: str
    """``seg`` or ``rej``."""
    phrase: str | None
    """The ``"phrase:"`` written before the marker; None when the model wrote none."""
    index: int
    """Position of the marker among the generated ids."""


def parse_answer(
    ids: Sequence[int], seg_id: int, rej_id: int | None, decode: Callable[[list[int]], str]
) -> list[Marker]:
    """Split generated ids at each marker; the text before a marker gives its phrase."""
    markers = []
    start = 0
    for index, token in enumerate(ids):
        kind = "seg" if token == seg_id else "rej" if rej_id is not None and token == rej_id else None
        if kind is None:
            continue
        markers.append(Marker(kind, phrase_before(decode(list(ids[start:index]))), index))
        start = index + 1
    return markers


def phrase_before(text: str) -> str | None:
    """The phrase a marker refers to, from the text between the previous marker and it; None if it names none.

    ``"Sure, they are the mug "`` -> ``"the mug"``; ``", the mask of the plate is "`` -> ``"the plate"``;
    ``"Sure,the cup:"`` -> ``"the cup"``; ``"Sure, it is "`` -> None.
    """
    clause = _SENTENCE.split(text.strip())[-1]  # only the last sentence can hold the phrase
    clause = _SEPARATOR.sub("", clause.strip(), count=1)
    clause = _OPENING.sub("", clause, count=1).strip()
    if clause.endswith(":"):
        clause = clause[:-1].strip()
    else:
        wrapped = _WRAPPED.match(clause)
        if wrapped:
            clause = wrapped["phrase"]
        elif _NO_PHRASE.search(clause):
            return None
    clause = _SEPARATOR.sub("", clause, count=1).strip()
    return _SPACES.sub(" ", clause) or None


def clean_reply(text: str, markers: Sequence[str]) -> str:
    """The answer without its marker tokens, for people: ``"the mug:[SEG] and"`` -> ``"the mug and"``."""
    for marker in markers:
        text = text.replace(":" + marker, "").replace(marker, "")
    text = _SPACES.sub(" ", text).strip()
    return re.sub(r"\s+([,.;!?])", r"\1", text)
