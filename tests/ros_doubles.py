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

"""Doubles that apply rclpy's own rules (Humble and Jazzy sources), for tests that run without ROS.

Each rule names the rclpy function it restates; the doubles are written from
reading those functions, not copied.
"""

from __future__ import annotations

import inspect
import math
import os
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = {"debug": 10, "info": 20, "warning": 30, "error": 40, "fatal": 50}

CallerId = namedtuple("CallerId", ["function_name", "file_path", "line_number", "last_index"])


class RclpyRuleLogger:
    """A logger with rclpy's call-site rule (``rclpy/impl/rcutils_logger.py``, ``RcutilsLogger.log``).

    The caller is the first frame outside the logger's own file
    (``_find_caller``); a call site is (function name, absolute file path,
    line, ``f_lasti``) (``CallerId``); a site's first call fixes its severity
    and a later call with another severity raises ``ValueError``. Only
    severities the logger is enabled for are checked, as in rclpy.
    """

    def __init__(self, level: str = "debug") -> None:
        self.threshold = SEVERITIES[level]
        self.contexts: dict[CallerId, int] = {}
        self.records: list[tuple[str, str]] = []

    def _log(self, message: str, severity: str) -> bool:
        if SEVERITIES[severity] < self.threshold:
            return False
        frame = inspect.currentframe()
        here = os.path.realpath(__file__)
        while os.path.realpath(frame.f_code.co_filename) == here:
            frame = frame.f_back
        caller = CallerId(
            frame.f_code.co_name, os.path.abspath(frame.f_code.co_filename), frame.f_lineno, frame.f_lasti
        )
        if caller not in self.contexts:
            self.contexts[caller] = SEVERITIES[severity]
        elif self.contexts[caller] != SEVERITIES[severity]:
            raise ValueError("Logger severity cannot be changed between calls.")
        self.records.append((severity, message))
        return True

    def debug(self, message: str) -> bool:
        return self._log(message, "debug")

    def info(self, message: str) -> bool:
        return self._log(message, "info")

    def warning(self, message: str) -> bool:
        return self._log(message, "warning")

    def warn(self, message: str) -> bool:
        return self.warning(message)

    def error(self, message: str) -> bool:
        return self._log(message, "error")

    def fatal(self, message: str) -> bool:
        return self._log(message, "fatal")


# -- parameters (rclpy/node.py: declare_parameters, _apply_descriptor, _apply_*_range) -------------

PARAMETER_NOT_SET, PARAMETER_BOOL, PARAMETER_INTEGER, PARAMETER_DOUBLE, PARAMETER_STRING = 0, 1, 2, 3, 4
PARAM_REL_TOL = 1e-6  # Node.PARAM_REL_TOL
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def parameter_type(value: Any) -> int:
    """``Parameter.Type.from_parameter_value`` for scalars (bool is tested before int, as rclpy does)."""
    if value is None:
        return PARAMETER_NOT_SET
    if isinstance(value, bool):
        return PARAMETER_BOOL
    if isinstance(value, int):
        return PARAMETER_INTEGER
    if isinstance(value, float):
        return PARAMETER_DOUBLE
    if isinstance(value, str):
        return PARAMETER_STRING
    raise TypeError(f"no parameter type for {value!r}")


@dataclass
class FakeRange:
    from_value: Any
    to_value: Any
    step: Any


@dataclass
class FakeDescriptor:
    type: int = PARAMETER_NOT_SET
    description: str = ""
    additional_constraints: str = ""
    read_only: bool = False
    dynamic_typing: bool = False
    floating_point_range: list[FakeRange] = field(default_factory=list)
    integer_range: list[FakeRange] = field(default_factory=list)


class InvalidParameterTypeException(Exception):
    pass


class InvalidParameterValueException(Exception):
    pass


class RclpyRuleParameters:
    """Declaration and set with rclpy's typing and range rules, plus the node's on-set callbacks."""

    def __init__(self, overrides: dict[str, Any] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self.values: dict[str, Any] = {}
        self.descriptors: dict[str, FakeDescriptor] = {}
        self.callbacks: list[Any] = []

    def declare(self, name: str, default: Any, descriptor: FakeDescriptor) -> Any:
        # declare_parameters: a static parameter takes its type from the default.
        if not descriptor.dynamic_typing:
            descriptor.type = parameter_type(default)
            if descriptor.type == PARAMETER_NOT_SET:
                raise ValueError("Cannot declare a statically typed parameter with default value of type NOT_SET")
        value = self.overrides.get(name, default)
        # _set_parameters(raise_on_failure=True): descriptor checks without read-only, then the on-set callbacks.
        ok, reason = self._apply(name, value, descriptor, check_read_only=False)
        for callback in self.callbacks if ok else []:
            ok, reason = callback([(name, value)])
            if not ok:
                break
        if not ok:
            if reason.startswith("Wrong parameter type"):
                raise InvalidParameterTypeException(name)
            raise InvalidParameterValueException(f"{name}: {reason}")
        self.values[name], self.descriptors[name] = value, descriptor
        return value

    def set(self, name: str, value: Any) -> tuple[bool, str]:
        """``set_parameters`` for one parameter: descriptor checks, then the on-set callbacks."""
        ok, reason = self._apply(name, value, self.descriptors[name], check_read_only=True)
        if not ok:
            return False, reason
        for callback in self.callbacks:
            ok, reason = callback([(name, value)])
            if not ok:
                return False, reason
        self.values[name] = value
        return True, ""

    def _apply(self, name: str, value: Any, d: FakeDescriptor, check_read_only: bool) -> tuple[bool, str]:
        # _apply_descriptor
        if check_read_only and d.read_only:
            return False, f"Trying to set a read-only parameter: {name}."
        kind = parameter_type(value)
        if d.dynamic_typing:
            d.type = kind
        elif kind != PARAMETER_NOT_SET and kind != d.type:
            return False, f"Wrong parameter type, expected {d.type} got {kind}"
        if kind == PARAMETER_INTEGER and d.integer_range:
            return integer_range_ok(value, d.integer_range[0])
        if kind == PARAMETER_DOUBLE and d.floating_point_range:
            return floating_range_ok(value, d.floating_point_range[0])
        return True, ""


def integer_range_ok(value: int, r: FakeRange) -> tuple[bool, str]:
    """``Node._apply_integer_range``: inclusive bounds, then the step counted from the lower bound."""
    low, high = min(r.from_value, r.to_value), max(r.from_value, r.to_value)
    if value in (low, high):
        return True, ""
    if not low < value < high:
        return False, "out of range"
    if r.step != 0 and (value - low) % r.step != 0:
        return False, "not a valid step"
    return True, ""


def floating_range_ok(value: float, r: FakeRange) -> tuple[bool, str]:
    """``Node._apply_floating_point_range``: bounds within a relative tolerance, step within it too."""
    low, high = min(r.from_value, r.to_value), max(r.from_value, r.to_value)
    if math.isclose(value, low, rel_tol=PARAM_REL_TOL) or math.isclose(value, high, rel_tol=PARAM_REL_TOL):
        return True, ""
    if not low < value < high:
        return False, "out of range"
    if r.step != 0.0:
        steps = round((value - low) / r.step)
        if not math.isclose(low + steps * r.step, value, rel_tol=PARAM_REL_TOL):
            return False, "not close enough to a valid step"
    return True, ""
