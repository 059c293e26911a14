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

"""sensor_msgs/Image <-> numpy, by field access (any message class: rclpy's or rosbags')."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from reasonseg_ros.errors import InputError

ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
}
"""Encodings the node accepts: element type and channels."""

HOST_BIG_ENDIAN = sys.byteorder == "big"


def _buffer(data: Any) -> np.ndarray:
    """The bytes of ``data`` as a flat uint8 array, without copying where the type allows."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)  # rosbags
    try:
        return np.frombuffer(data, dtype=np.uint8)  # bytes, bytearray, array.array('B') (rclpy)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)  # a list of ints (old rclpy)


def image_to_numpy(msg: Any) -> np.ndarray:
    """The image as H×W (one channel) or H×W×C of its element type, in native byte order.

    A read-only view of ``msg.data`` (rows strided by ``step``) wherever no
    byte swap is needed.
    """
    encoding = str(msg.encoding).lower()
    if encoding not in ENCODINGS:
        raise InputError(f"image encoding '{msg.encoding}' is not supported (supported: {', '.join(ENCODINGS)})")
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise InputError(f"image is empty: {width}×{height}")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise InputError(f"image step {step} is smaller than a row of {width} {encoding} pixels ({row_bytes} bytes)")
    flat = _buffer(msg.data)
    if flat.size == 0:
        raise InputError("image data is empty")
    needed = step * (height - 1) + row_bytes
    if flat.size < needed:
        raise InputError(
            f"image data has {flat.size} bytes; {width}×{height} {encoding} with step {step} needs {needed}"
        )
    rows = np.lib.stride_tricks.as_strided(flat, shape=(height, row_bytes), strides=(step, 1), writeable=False)
    big_endian = bool(msg.is_bigendian)
    pixels = rows.view(dtype.newbyteorder(">" if big_endian else "<")).reshape(height, width, channels)
    if dtype.itemsize > 1 and big_endian != HOST_BIG_ENDIAN:
        pixels = pixels.astype(dtype)  # to native order, so later arithmetic is not on swapped values
    return pixels[:, :, 0] if channels == 1 else pixels


def image_to_rgb(msg: Any) -> np.ndarray:
    """H×W×3 uint8 RGB, what the engine takes; a view of ``msg.data`` for rgb8 without conversion."""
    pixels = image_to_numpy(msg)
    encoding = str(msg.encoding).lower()
    if encoding == "rgb8":
        return pixels
    if encoding == "bgr8":
        return pixels[:, :, ::-1]
    if encoding == "rgba8":
        return pixels[:, :, :3]
    if encoding == "bgra8":
        return pixels[:, :, 2::-1]
    if encoding == "mono16":
        pixels = (pixels >> 8).astype(np.uint8)
    # Grey as RGB without copying: the three channels are one plane read three times.
    return np.broadcast_to(pixels[:, :, None], (*pixels.shape, 3))


def numpy_to_image(
    image_cls: Any,
    header: Any,
    array: np.ndarray,
    encoding: str,
    wrap_data: Callable[[np.ndarray], Any] | None = None,
) -> Any:
    """A sensor_msgs/Image of ``array`` (little-endian, no row padding).

    ``wrap_data`` turns the flat uint8 array into what the message class wants
    (rosbags takes the numpy array; rclpy is fastest with ``array.array('B')``).
    """
    dtype, channels = ENCODINGS[encoding]
    expected = (array.shape[0], array.shape[1]) if channels == 1 else (array.shape[0], array.shape[1], channels)
    if array.dtype != dtype or array.shape != expected[: array.ndim] or array.ndim != len(expected):
        raise ValueError(f"{encoding} needs a {dtype} array of shape {'H×W' if channels == 1 else f'H×W×{channels}'}")
    little = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<"))
    flat = little.reshape(-1).view(np.uint8)
    return image_cls(
        header=header,
        height=int(array.shape[0]),
        width=int(array.shape[1]),
        encoding=encoding,
        is_bigendian=0,
        step=int(array.shape[1]) * channels * dtype.itemsize,
        data=wrap_data(flat) if wrap_data else flat,
    )


def label_image_to_msg(
    image_cls: Any, header: Any, labels: np.ndarray, wrap_data: Callable[[np.ndarray], Any] | None = None
) -> Any:
    """A mono16 label image message (0 background, pixel = object id)."""
    return numpy_to_image(image_cls, header, labels, "mono16", wrap_data)
