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
