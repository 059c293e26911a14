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

"""Reading and writing ROS 2 bags with rosbags (sqlite3 and MCAP in, MCAP out)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from reasonseg_ros.deps import require
from reasonseg_ros.messages.rosbags_types import typestore

RESET_TOPIC = "/reset_session"
"""Optional std_msgs/String topic of a bag: a message clears the session it names (a video converter ends
each sequence with one; replay delivers it to the node's reset callback)."""


class BagWriter:
    """An MCAP bag; connections are added on first use of a topic."""

    def __init__(self, path: str | Path, distro: str = "humble") -> None:
        rosbag2 = require("rosbags.rosbag2", "writing bags")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists already: choose another output or remove it")
        self.typestore = typestore(distro)
        self.types = self.typestore.types
        self._writer = rosbag2.Writer(self.path, version=9, storage_plugin=rosbag2.StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, Any] = {}

    def write(self, topic: str, msgtype: str, msg: Any, timestamp_ns: int) -> None:
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
            self._connections[topic] = connection
        self._writer.write(connection, int(timestamp_ns), self.typestore.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def open_bag(path: str | Path, distro: str = "humble") -> Any:
    """An opened ``rosbags.highlevel.AnyReader``; an unreadable bag is a ValueError saying why."""
    highlevel = require("rosbags.highlevel", "reading bags")
    path = Path(path)
    if not path.exists():
        raise ValueError(f"bag not found: {path}")
    reader = highlevel.AnyReader([path], default_typestore=typestore(distro))
    try:
        reader.open()
    except Exception as exc:  # rosbags raises several types for a damaged or foreign file
        raise ValueError(f"cannot read bag {path}: {type(exc).__name__}: {exc}") from exc
    return reader
