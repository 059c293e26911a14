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

"""Bounds on the text a result or an error message carries, whatever a model or a client sends.

One rule everywhere: a kept text (``raw_output``, ``prompt``, the echoed
instruction) is cut to :data:`RESULT_TEXT_BYTES` with a marker saying how
long it was; a text quoted in an error message is cut much shorter
(:func:`quote`), so no message ever carries a whole input.
"""

from __future__ import annotations

RESULT_TEXT_BYTES = 4096
"""Most UTF-8 bytes of a text kept in a result (raw model answer, prompt, echoed instruction)."""
QUOTE_CHARS = 200
"""Most characters of an input quoted in an error message."""


def cap_text(text: str | None, limit: int = RESULT_TEXT_BYTES) -> str | None:
    """``text`` if its UTF-8 form fits ``limit`` bytes, else its head and ``"… truncated, N bytes"``."""
    if text is None:
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= limit:
        return text
    # cut on bytes, then drop a partial character at the cut
    head = text.encode("utf-8", "surrogatepass")[:limit].decode("utf-8", "ignore")
    return f"{head}… truncated, {size} bytes"


def quote(text: object, chars: int = QUOTE_CHARS) -> str:
    """``text`` on one line, cut to ``chars`` characters, in quotes: for error messages."""
    whole = str(text)
    flat = " ".join(whole[: 2 * chars].split())  # never scan more of a huge input than is shown
    if len(flat) > chars or len(whole) > 2 * chars:
        flat = f"{flat[:chars]}… ({len(whole)} characters)"
    return repr(flat)


def echo(value: object) -> str:
    """An instruction as a result repeats it: capped text, or its type's name when a client sent no text."""
    if isinstance(value, str):
        return cap_text(value)  # type: ignore[return-value]
    return f"<{type(value).__name__}>"
