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

GSVA writes ``"phrase:[SEG]"`` per target and ``"phrase:[REJ]"`` per absent
one; LISA writes ``"Sure, it is [SEG]."``, which names no phrase.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_LEADING = re.compile(r"^(?:and|or|but|also|then)\b\s*", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


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
    """``", and the plate:"`` -> ``"the plate"``; None unless the text ends with a colon."""
    text = text.rstrip()
    if not text.endswith(":"):
        return None
    clause = re.split(r"[,;.!?\n]", text[:-1])[-1]
    clause = _LEADING.sub("", clause.strip()).strip()
    return _SPACES.sub(" ", clause) or None


def clean_reply(text: str, markers: Sequence[str]) -> str:
    """The answer without its marker tokens, for people: ``"the mug:[SEG] and"`` -> ``"the mug and"``."""
    for marker in markers:
        text = text.replace(":" + marker, "").replace(marker, "")
    text = _SPACES.sub(" ", text).strip()
    return re.sub(r"\s+([,.;!?])", r"\1", text)
