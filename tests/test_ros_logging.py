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

"""The node's logging path under rclpy's rule: one severity per call site (issue 14, defect 1)."""

import ast
import itertools
from pathlib import Path

import pytest
from ros_doubles import RclpyRuleLogger

from reasonseg_ros.ros.runtime import LEVELS, log_at

ROS_DIR = Path(__file__).resolve().parents[1] / "reasonseg_ros" / "ros"
LOGGER_METHODS = {"debug", "info", "warning", "warn", "error", "fatal"}
RCLPY_NAME = {"debug": "debug", "info": "info", "warn": "warning", "error": "error", "fatal": "fatal"}


def test_the_double_applies_rclpys_rule_to_a_shared_call_site():
    # The pattern the node used before: one call whose method depends on the level.
    def shared_site(logger, level, text):
        {"warn": logger.warning, "error": logger.error}.get(level, logger.info)(text)

    logger = RclpyRuleLogger()
    shared_site(logger, "warn", "bad image")
    with pytest.raises(ValueError, match="severity cannot be changed"):
        shared_site(logger, "info", "cleared session")


@pytest.mark.parametrize("order", list(itertools.permutations(LEVELS)))
def test_every_level_in_any_order_through_the_node_logging_path(order):
    logger = RclpyRuleLogger()
    for level in (*order, *reversed(order), *order):
        log_at(logger, level, f"at {level}")
    assert [severity for severity, _ in logger.records[: len(order)]] == [RCLPY_NAME[lv] for lv in order]
    assert len(logger.contexts) == len(LEVELS)  # one call site per severity


def test_an_unknown_level_is_logged_not_raised():
    logger = RclpyRuleLogger()
    log_at(logger, "verbose", "x")
    log_at(logger, "info", "y")
    assert logger.records[0] == ("error", "(unknown log level 'verbose') x")


def _ros_sources():
    return {path.name: ast.parse(path.read_text(), str(path)) for path in sorted(ROS_DIR.glob("*.py"))}


def test_no_logger_method_is_chosen_at_run_time():
    """A logger method taken as a value (a dict of methods, ``getattr(logger, level)``) shares one call site."""
    offenders = []
    for name, tree in _ros_sources().items():
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in LOGGER_METHODS
                and "log" in ast.unparse(node.value).lower()
                and id(node) not in called
            ):
                offenders.append(f"{name}:{node.lineno} {ast.unparse(node)}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "getattr"
                and len(node.args) > 1
                and "log" in ast.unparse(node.args[0]).lower()
                and not isinstance(node.args[1], ast.Constant)
            ):
                offenders.append(f"{name}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []


def _levels_logged_by_the_core():
    """Every level passed to the core's ``log`` callable (``self._log(level, text)``) in ros/."""
    levels = {}
    for name, tree in _ros_sources().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "_log"
                and node.args
            ):
                level = node.args[0]
                assert isinstance(level, ast.Constant), f"{name}:{node.lineno}: the level must be a literal"
                levels.setdefault(level.value, []).append(f"{name}:{node.lineno}")
    return levels


def test_every_level_the_node_logs_at_reaches_its_own_call_site():
    used = _levels_logged_by_the_core()
    assert {"warn", "info"} <= set(used)  # the two that crashed the node when mixed
    assert set(used) <= set(LEVELS), f"unknown levels: {set(used) - set(LEVELS)}"
    logger = RclpyRuleLogger()
    for level in [*used, *reversed(list(used))] * 2:
        log_at(logger, level, "x")
    assert {severity for severity, _ in logger.records} == {RCLPY_NAME[lv] for lv in used}
