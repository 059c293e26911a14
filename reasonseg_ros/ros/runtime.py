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

"""rclpy-free pieces of the node's plumbing: the logging path and a publish gate for shutdown.

Kept apart from ``node.py`` so that they are tested without ROS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

LEVELS = ("debug", "info", "warn", "error", "fatal")
"""The levels NodeCore and the node log at."""


def log_at(logger: Any, level: str, text: str) -> None:
    """Log ``text`` at ``level`` on an rclpy logger, with one call site per severity.

    rclpy identifies a log call by its caller's file, function, line and
    bytecode offset and raises ``ValueError`` when one call site logs a second
    severity (``rclpy/impl/rcutils_logger.py``), so the level must never be
    chosen by a shared call such as ``{...}.get(level)(text)``.
    """
    if level == "debug":
        logger.debug(text)
    elif level == "info":
        logger.info(text)
    elif level == "warn":
        logger.warning(text)
    elif level == "error":
        logger.error(text)
    elif level == "fatal":
        logger.fatal(text)
    else:
        # Never raise from logging: a bad level name must not kill the worker or a callback.
        logger.error(f"(unknown log level {level!r}) {text}")


def guarded(callback: Callable[[Any], None], log: Callable[[str, str], None], name: str) -> Callable[[Any], None]:
    """``callback`` for an rclpy subscription or timer, with any exception logged instead of raised.

    rclpy's executor re-raises an exception from a callback out of ``spin()``,
    which ends the node; an unexpected one is logged at error level instead,
    once per distinct message, and the node keeps running.
    """
    seen: set[str] = set()

    def run(*args: Any) -> None:
        try:
            callback(*args)
        except Exception as exc:  # the node must outlive one bad callback
            text = f"{name} failed: {type(exc).__name__}: {exc}"
            if text not in seen and len(seen) < 100:
                seen.add(text)
                try:
                    log("error", text)
                except Exception:  # a broken logger must not end the executor either
                    pass

    return run


class PublishGate:
    """Wraps publish callables so that nothing is published once :meth:`close` has returned.

    rclpy raises ``InvalidHandle`` when a publisher of a destroyed node
    publishes; a round still running on the worker at shutdown would do so.
    ``close`` takes the same lock as every publish, so once it returns no
    publish is in progress and none will start.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self.dropped = 0

    def wrap(self, publish: Callable[[Any], None]) -> Callable[[Any], None]:
        """A publish callable that does nothing after :meth:`close`."""

        def gated(msg: Any) -> None:
            with self._lock:
                if self._closed:
                    self.dropped += 1
                    return
                publish(msg)

        return gated

    def close(self) -> None:
        """Stop every wrapped publisher (waits for a publish in progress)."""
        with self._lock:
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed
