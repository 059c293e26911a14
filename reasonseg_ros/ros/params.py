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

rclpy-free, so the mapping and its rules are tested without ROS. Rules that
follow rclpy (Humble and Jazzy ``rclpy/node.py``):

- a parameter's type is fixed by its default unless the descriptor sets
  ``dynamic_typing``; float keys set it, so ``-p engine.frame_wait_s:=2`` (an
  integer) is accepted and converted, and the on-set check refuses any other type;
- ``IntegerRange`` / ``FloatingPointRange`` are closed ranges; an open lower
  bound (a period must be above 0) and cross-key rules are enforced by the
  node's on-set callback, which applies the YAML config's own checks
  (:func:`check_value`, then ``Config.validate`` on the changed copy).

ROS parameters cannot be null, so an optional key uses a sentinel: ``""`` for
text, ``-1`` for numbers, and ``auto`` for an optional bool, which becomes a
string parameter ``auto`` / ``true`` / ``false``.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import inspect
import sys
import textwrap
import types
import typing
from typing import Any, Literal

from reasonseg_ros.config import NONE_TYPE, Config, Range, field_range, flat_fields
from reasonseg_ros.errors import ConfigError

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

OPTIONAL_BOOL = ("auto", "true", "false")
"""The values of an optional bool's string parameter; ``auto`` is None (the backend decides)."""

# rcl_interfaces/msg/ParameterType constants (rclpy-free copies).
PARAMETER_TYPE = {bool: 1, int: 2, float: 3, str: 4}
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    name: str
    kind: type
    """The ROS parameter's type: bool, int, float or str."""
    default: Any
    description: str
    read_only: bool
    choices: tuple[str, ...] = ()
    sentinel: Any = None
    """The value that stands for null, for optional keys."""
    value_range: Range | None = None
    """The config key's :class:`Range` (``config.ranged``), if any."""
    optional_bool: bool = False
    """A ``bool | None`` key carried as the string ``auto`` / ``true`` / ``false``."""

    @property
    def dynamic_typing(self) -> bool:
        """Whether the parameter takes more than its default's type; the on-set check refuses the rest.

        Float keys take an integer (``-p x:=2``); optional bools take a bool
        too, because ``-p x:=true`` and ``x: true`` in a parameter file arrive
        as bools, not as the string default's type.
        """
        return self.kind is float or self.optional_bool


def parameter_specs(config: Config) -> list[ParameterSpec]:
    """One spec per config key, with ``config``'s values as defaults."""
    docs = field_docs(Config)
    owners = _field_owners(Config)
    specs = []
    for name, (hint, value) in flat_fields(config).items():
        kind, optional, choices = _base_type(hint)
        optional_bool = optional and kind is bool
        if optional_bool:
            kind, choices, sentinel = str, OPTIONAL_BOOL, "auto"
            default = "auto" if value is None else str(value).lower()
        else:
            sentinel = ("" if kind is str else kind(-1)) if optional else None
            default = sentinel if value is None else value
        owner, key = owners[name]
        description = docs.get(name, "")
        if optional_bool:
            description = f"{description} (auto: unset, the backend decides)".strip()
        elif optional:
            description = f"{description} ({sentinel!r} means unset)".strip()
        if choices and not optional_bool:
            description = f"{description} One of: {', '.join(choices)}.".strip()
        specs.append(
            ParameterSpec(
                name=name,
                kind=kind,
                default=default,
                description=description,
                read_only=name not in DYNAMIC,
                choices=choices,
                sentinel=sentinel,
                value_range=field_range(owner, key),
                optional_bool=optional_bool,
            )
        )
    return specs


def descriptor_fields(spec: ParameterSpec) -> dict[str, Any]:
    """The ``rcl_interfaces/ParameterDescriptor`` of ``spec`` as plain data (``node.py`` builds the message).

    Ranges go in ``integer_range`` / ``floating_point_range`` (closed, step 0:
    continuous) as rclpy applies them; an optional number's sentinel ``-1``
    lies outside most ranges, so an optional key states its range in
    ``additional_constraints`` only and the on-set check enforces it.
    """
    constraints = []
    if spec.choices:
        constraints.append(f"one of: {', '.join(spec.choices)}")
    fields: dict[str, Any] = {
        "type": PARAMETER_TYPE[spec.kind],
        "description": spec.description,
        "read_only": spec.read_only,
        "dynamic_typing": spec.dynamic_typing,
        "integer_range": [],
        "floating_point_range": [],
    }
    r = spec.value_range
    if r is not None:
        constraints.append(_describe_range(r) + ("; -1: unset" if spec.sentinel is not None else ""))
        if spec.sentinel is None and spec.kind is int:
            low = INT64_MIN if r.low is None else int(r.low) + (1 if r.low_open else 0)
            high = INT64_MAX if r.high is None else int(r.high)
            fields["integer_range"] = [{"from_value": low, "to_value": high, "step": 0}]
        elif spec.sentinel is None and spec.kind is float:
            # Closed in rclpy: an open lower bound (above 0) is refused by the on-set check.
            low = -sys.float_info.max if r.low is None else float(r.low)
            high = sys.float_info.max if r.high is None else float(r.high)
            fields["floating_point_range"] = [{"from_value": low, "to_value": high, "step": 0.0}]
    fields["additional_constraints"] = "; ".join(constraints)
    return fields


def _describe_range(r: Range) -> str:
    parts = []
    if r.low is not None:
        parts.append(f"{'>' if r.low_open else '>='} {r.low:g}")
    if r.high is not None:
        parts.append(f"<= {r.high:g}")
    return " and ".join(parts)


def check_value(spec: ParameterSpec, value: Any) -> str | None:
    """Why ``value`` is not acceptable for ``spec`` (type, choices, range), or None when it is."""
    if spec.optional_bool:
        if isinstance(value, bool) or (isinstance(value, str) and value.lower() in OPTIONAL_BOOL):
            return None
        return f"{spec.name} must be auto, true or false, got {value!r}"
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.kind is float:
        type_ok = numeric
    elif spec.kind is int:
        type_ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        type_ok = isinstance(value, spec.kind)
    if not type_ok:
        return f"{spec.name} must be a {spec.kind.__name__}, got {type(value).__name__} {value!r}"
    if spec.sentinel is not None and value == spec.sentinel:
        return None
    if spec.choices and value not in spec.choices:
        return f"{spec.name} must be one of {', '.join(spec.choices)}, got {value!r}"
    if spec.value_range is not None and numeric:
        try:
            spec.value_range.check(spec.name, value)
        except ConfigError as exc:
            return str(exc)
    return None


def from_parameter(spec: ParameterSpec, value: Any) -> Any:
    """A parameter's value as the config holds it (sentinel -> None, ``true``/``false`` -> bool)."""
    if spec.optional_bool:
        return value if isinstance(value, bool) else {"auto": None, "true": True, "false": False}[value.lower()]
    if spec.sentinel is not None and value == spec.sentinel:
        return None
    if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def with_changes(config: Config, specs: dict[str, ParameterSpec], changes: dict[str, Any]) -> Config:
    """A validated copy of ``config`` with parameter values ``changes`` applied; ConfigError names the problem.

    The same checks as a YAML file: each value's type, choices and range, then ``Config.validate``.
    """
    updated = copy.deepcopy(config)
    for name, value in changes.items():
        spec = specs[name]
        problem = check_value(spec, value)
        if problem:
            raise ConfigError(problem)
        *path, key = name.split(".")
        section = updated
        for part in path:
            section = getattr(section, part)
        setattr(section, key, from_parameter(spec, value))
    return updated.validate()


def apply_config(target: Any, source: Any, names: typing.Iterable[str]) -> None:
    """Copy keys ``names`` (dotted) from config ``source`` into the live config ``target`` in place."""
    for name in names:
        *path, key = name.split(".")
        src, dst = source, target
        for part in path:
            src, dst = getattr(src, part), getattr(dst, part)
        setattr(dst, key, getattr(src, key))


class ParameterRules:
    """The node's on-set parameter callback without rclpy: refuse what the YAML config would refuse.

    While the node declares its parameters (``config`` still None) each value
    is checked on its own (type, choices, range); once the config is built,
    a set is checked on a copy of the whole config (``Config.validate`` too)
    and only then applied to the live config.
    """

    def __init__(self, specs: dict[str, ParameterSpec], config: Config | None = None) -> None:
        self.specs = specs
        self.config = config

    def on_set(self, items: typing.Iterable[tuple[str, Any]]) -> tuple[bool, str]:
        """(successful, reason) for parameters ``(name, value)``; names that are not config keys pass."""
        changes = {name: value for name, value in items if name in self.specs}
        if not changes:
            return True, ""
        if self.config is None:
            for name, value in changes.items():
                problem = check_value(self.specs[name], value)
                if problem:
                    return False, problem
            return True, ""
        try:
            updated = with_changes(self.config, self.specs, changes)
        except ConfigError as exc:
            return False, str(exc)
        apply_config(self.config, updated, changes)
        return True, ""


def _field_owners(cls: type, prefix: str = "") -> dict[str, tuple[type, str]]:
    """``"section.key"`` -> (the dataclass that declares the key, key), for :func:`field_range`."""
    owners: dict[str, tuple[type, str]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            owners.update(_field_owners(hints[f.name], f"{prefix}{f.name}."))
        else:
            owners[f"{prefix}{f.name}"] = (cls, f.name)
    return owners


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


@functools.cache  # reading the source is slow and it never changes in a process
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
