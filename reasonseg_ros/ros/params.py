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

"""ROS parameters <-> the configuration: one parameter per config key, named ``section.key``.

rclpy-free, so the mapping is tested without ROS. ROS parameters cannot be
null, so an optional key uses a sentinel: ``""`` for text, ``-1`` for numbers.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from typing import Any, Literal

from reasonseg_ros.config import NONE_TYPE, Config, flat_fields

DYNAMIC = {
    "engine.frame_wait_s",
    "engine.stamp_tolerance_s",
    "engine.max_instruction_bytes",
    "engine.min_mask_pixels",
    "node.publish_masks",
    "node.publish_detections",
    "node.publish_result",
    "node.publish_rejection",
    "node.publish_overlay",
    "node.result_masks",
    "node.default_session",
}
"""Keys that take effect while the node runs; every other key needs a restart (read-only parameter)."""


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    name: str
    kind: type
    """bool, int, float or str."""
    default: Any
    description: str
    read_only: bool
    choices: tuple[str, ...] = ()
    sentinel: Any = None
    """The value that stands for null, for optional keys."""


def parameter_specs(config: Config) -> list[ParameterSpec]:
    """One spec per config key, with ``config``'s values as defaults."""
    docs = field_docs(Config)
    specs = []
    for name, (hint, value) in flat_fields(config).items():
        kind, optional, choices = _base_type(hint)
        sentinel = ("" if kind is str else kind(-1)) if optional else None
        description = docs.get(name, "")
        if optional:
            description = f"{description} ({sentinel!r} means unset)".strip()
        if choices:
            description = f"{description} One of: {', '.join(choices)}.".strip()
        specs.append(
            ParameterSpec(
                name=name,
                kind=kind,
                default=sentinel if value is None else value,
                description=description,
                read_only=name not in DYNAMIC,
                choices=choices,
                sentinel=sentinel,
            )
        )
    return specs


def from_parameter(spec: ParameterSpec, value: Any) -> Any:
    """A parameter's value as the config holds it (sentinel -> None)."""
    if spec.sentinel is not None and value == spec.sentinel:
        return None
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _base_type(hint: Any) -> tuple[type, bool, tuple[str, ...]]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not NONE_TYPE]
        kind, _, choices = _base_type(args[0])
        return kind, True, choices
    if origin is Literal:
        return str, False, tuple(typing.get_args(hint))
    if hint in (bool, int, float, str):
        return hint, False, ()
    raise TypeError(f"no ROS parameter type for {hint!r}")


def field_docs(cls: type, prefix: str = "") -> dict[str, str]:
    """The docstring under each dataclass field (``"section.key": text``), read from the source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    hints = typing.get_type_hints(cls)
    docs: dict[str, str] = {}
    for node, after in zip(body, [*body[1:], None], strict=True):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        if dataclasses.is_dataclass(hints.get(name)):
            docs.update(field_docs(hints[name], f"{prefix}{name}."))
        elif (
            isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)
        ):
            docs[f"{prefix}{name}"] = " ".join(after.value.value.split())
    return docs
