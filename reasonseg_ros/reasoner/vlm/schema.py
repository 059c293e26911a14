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

"""The JSON schema of the answer the prompt asks for, for servers and decoders that can enforce it.

It mirrors ``prompt.ANSWER_SCHEMA`` (the example the model is shown); the
tolerant parser in ``answer.py`` still reads whatever comes back, so a
server that ignores the schema loses nothing.
"""

from __future__ import annotations

from typing import Any

_NUMBER: dict[str, Any] = {"type": "number"}
_POINT: dict[str, Any] = {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}

ANSWER_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "targets": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "box": {"type": "array", "items": _NUMBER, "minItems": 4, "maxItems": 4},
                    "points": {"type": "array", "items": _POINT, "maxItems": 8},
                    "negative_points": {"type": "array", "items": _POINT, "maxItems": 8},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "object_id": {"type": ["integer", "null"]},
                },
                "required": ["label"],
                "additionalProperties": False,
            },
        },
        "rejections": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"phrase": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["phrase"],
                "additionalProperties": False,
            },
        },
        "reply": {"type": "string"},
    },
    "required": ["targets", "rejections", "reply"],
    "additionalProperties": False,
}
SCHEMA_NAME = "reasonseg_answer"


def response_format() -> dict[str, Any]:
    """The OpenAI-style ``response_format`` that asks a server (vLLM, SGLang) to decode to the schema."""
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": ANSWER_JSON_SCHEMA}}
