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

"""A rosbags typestore that also knows the ``vision_msgs`` shipped in ``msg/``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from reasonseg_ros.deps import require

MSG_DIR = Path(__file__).parent / "msg"


@cache
def typestore(distro: str = "humble") -> Any:
    """rosbags' typestore of ``distro`` (humble, jazzy) plus our ``vision_msgs``."""
    typesys = require("rosbags.typesys", "ROS message classes without ROS")
    stores = {"humble": typesys.Stores.ROS2_HUMBLE, "jazzy": typesys.Stores.ROS2_JAZZY}
    if distro not in stores:
        raise ValueError(f"unknown ROS distro '{distro}' (known: {', '.join(stores)})")
    store = typesys.get_typestore(stores[distro])
    extra: dict[str, Any] = {}
    for path in sorted(MSG_DIR.glob("*/*.msg")):
        name = f"{path.parent.name}/msg/{path.stem}"
        if name not in store.types:
            extra.update(typesys.get_types_from_msg(path.read_text(), name))
    store.register(extra)
    return store
