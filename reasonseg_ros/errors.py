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

"""The exceptions of the package; each carries a message meant for a person."""

from __future__ import annotations


class ReasonsegError(Exception):
    """Base class: something the user can fix, described in one line."""

    kind = "error"


class InputError(ReasonsegError):
    """A malformed image, instruction or prompt."""

    kind = "bad_input"


class ConfigError(ReasonsegError):
    """An invalid configuration file or value."""

    kind = "bad_config"


class CheckpointError(ReasonsegError):
    """A model file that is missing, corrupt or of the wrong architecture."""

    kind = "bad_checkpoint"


class MissingDependencyError(ReasonsegError):
    """An optional library that a backend needs is not installed."""

    kind = "missing_dependency"


class ModelError(ReasonsegError):
    """A model failed while running."""

    kind = "model_failure"


class ModelOutputError(ModelError):
    """A model answered, but with text that cannot be read; ``raw_output`` keeps that text."""

    kind = "unreadable_output"

    def __init__(self, message: str, raw_output: str | None = None) -> None:
        super().__init__(message)
        self.raw_output = raw_output
