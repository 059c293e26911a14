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

"""sensor_msgs/Image and CompressedImage <-> numpy, by field access (any message class: rclpy's or rosbags').

Input encodings: the colour and grey ones of :data:`ENCODINGS`, ``yuv422`` /
``uyvy`` and ``yuyv`` / ``yuv422_yuy2`` (BT.601 to RGB), and 8-bit Bayer
mosaics (``bayer_rggb8`` ... : each 2×2 cell's colour given to its four
pixels). Anything else is refused with the supported list; 16UC1 / 32FC1
are depth, which has no colour to segment.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from reasonseg_ros.deps import available
from reasonseg_ros.errors import InputError

ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
}
"""Encodings read and written as plain arrays: element type and channels."""

YUV422 = {"yuv422": "uyvy", "uyvy": "uyvy", "yuyv": "yuyv", "yuv422_yuy2": "yuyv"}
"""Packed 4:2:2 encodings (ROS ``yuv422`` is UYVY byte order) -> byte order."""

BAYER = {"bayer_rggb8": "RGGB", "bayer_bggr8": "BGGR", "bayer_gbrg8": "GBRG", "bayer_grbg8": "GRBG"}
"""8-bit Bayer encodings -> colour of the 2×2 cell's top-left, top-right, bottom-left, bottom-right pixels."""

INPUT_ENCODINGS = (*ENCODINGS, *YUV422, *BAYER)
"""Every encoding :func:`image_to_rgb` converts."""

COMPRESSED_FORMATS = ("jpeg", "png")
"""sensor_msgs/CompressedImage formats :func:`compressed_to_rgb` decodes."""

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
    height, width = int(msg.height), int(msg.width)
    rows = _rows(msg, width * channels * dtype.itemsize, encoding)
    big_endian = bool(msg.is_bigendian)
    pixels = rows.view(dtype.newbyteorder(">" if big_endian else "<")).reshape(height, width, channels)
    if dtype.itemsize > 1 and big_endian != HOST_BIG_ENDIAN:
        pixels = pixels.astype(dtype)  # to native order, so later arithmetic is not on swapped values
    return pixels[:, :, 0] if channels == 1 else pixels


def _rows(msg: Any, row_bytes: int, encoding: str) -> np.ndarray:
    """The image's rows as a read-only H×row_bytes uint8 view of ``msg.data`` (``step`` may pad rows)."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise InputError(f"image is empty: {width}×{height}")
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
    return np.lib.stride_tricks.as_strided(flat, shape=(height, row_bytes), strides=(step, 1), writeable=False)


def _unsupported(encoding: str) -> InputError:
    why = " (depth or float data has no colour to segment)" if encoding in ("16uc1", "32fc1") else ""
    return InputError(
        f"image encoding '{encoding}' is not supported{why}; supported: {', '.join(INPUT_ENCODINGS)}, "
        f"and sensor_msgs/CompressedImage {' or '.join(COMPRESSED_FORMATS)} (node.image_transport: compressed)"
    )


def yuv422_to_rgb(msg: Any) -> np.ndarray:
    """Packed 4:2:2 (UYVY or YUYV) to RGB with the BT.601 limited-range matrix (as OpenCV's COLOR_YUV2RGB_UYVY)."""
    encoding = str(msg.encoding).lower()
    height, width = int(msg.height), int(msg.width)
    if width % 2:
        raise InputError(f"{encoding} image width must be even, got {width}")
    rows = _rows(msg, width * 2, encoding)
    if available("cv2"):
        import cv2  # lazily: OpenCV converts a 720p frame in about a millisecond, numpy below in about 100

        code = cv2.COLOR_YUV2RGB_UYVY if YUV422[encoding] == "uyvy" else cv2.COLOR_YUV2RGB_YUYV
        return cv2.cvtColor(np.ascontiguousarray(rows).reshape(height, width, 2), code)
    quads = rows.reshape(height, width // 2, 4).astype(np.float32)
    if YUV422[encoding] == "uyvy":
        u, y0, v, y1 = quads[..., 0], quads[..., 1], quads[..., 2], quads[..., 3]
    else:
        y0, u, y1, v = quads[..., 0], quads[..., 1], quads[..., 2], quads[..., 3]
    y = np.stack([y0, y1], axis=-1).reshape(height, width)
    u = np.repeat(u, 2, axis=1) - 128.0
    v = np.repeat(v, 2, axis=1) - 128.0
    c = 1.164 * (y - 16.0)
    rgb = np.stack([c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def bayer_to_rgb(msg: Any) -> np.ndarray:
    """An 8-bit Bayer mosaic to RGB: each 2×2 cell's red, mean green and blue given to its four pixels."""
    encoding = str(msg.encoding).lower()
    height, width = int(msg.height), int(msg.width)
    if height % 2 or width % 2:
        raise InputError(f"{encoding} image needs an even width and height, got {width}×{height}")
    raw = _rows(msg, width, encoding).astype(np.uint16)
    planes: dict[str, list[np.ndarray]] = {"R": [], "G": [], "B": []}
    for colour, (dy, dx) in zip(BAYER[encoding], ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True):
        planes[colour].append(raw[dy::2, dx::2])
    red, blue = planes["R"][0], planes["B"][0]
    green = (planes["G"][0] + planes["G"][1] + 1) // 2  # mean of the two greens, rounded half up
    cell_rgb = np.stack([red, green, blue], axis=-1).astype(np.uint8)
    return np.repeat(np.repeat(cell_rgb, 2, axis=0), 2, axis=1)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """H×W×3 uint8 RGB from a sensor_msgs/CompressedImage (jpeg or png), decoded with OpenCV or else Pillow.

    ``format`` is what image_transport writes (``jpeg``, ``png``, ``rgb8; jpeg
    compressed bgr8``); the data's own signature decides. ``compressedDepth``
    (16-bit depth) is refused.
    """
    fmt = str(msg.format).lower()
    if "compresseddepth" in fmt:
        raise InputError(f"compressed image format '{msg.format}' is depth, which has no colour to segment")
    data = _buffer(msg.data)
    if data.size == 0:
        raise InputError("compressed image data is empty")
    head = data[:8].tobytes()
    kind = "jpeg" if head.startswith(b"\xff\xd8\xff") else "png" if head.startswith(b"\x89PNG\r\n\x1a\n") else None
    if kind is None:
        raise InputError(
            f"compressed image ({len(data)} bytes, format '{msg.format}') is neither jpeg nor png data "
            f"(supported: {', '.join(COMPRESSED_FORMATS)})"
        )
    rgb = _decode(data, kind)
    if rgb is None:
        raise InputError(f"compressed image: the {kind} data ({len(data)} bytes) is corrupt and cannot be decoded")
    return rgb


def _decode(data: np.ndarray, kind: str) -> np.ndarray | None:
    """Decode with OpenCV (python3-opencv or the cv extra) or Pillow; None when the data is corrupt."""
    if available("cv2"):
        import cv2  # lazily: only a node that receives compressed images needs OpenCV

        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)  # BGR; None on corrupt data
        if decoded is None:
            return None
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if available("PIL"):
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data.tobytes())) as picture:
                return np.asarray(picture.convert("RGB"))
        except (OSError, UnidentifiedImageError, SyntaxError):
            return None
    # An input error, not a crash: the node keeps running and says what to install.
    raise InputError(
        f"decoding {kind} images needs OpenCV or Pillow: apt install python3-opencv, or pip install 'reasonseg_ros[cv]'"
    )


def image_to_rgb(msg: Any) -> np.ndarray:
    """H×W×3 uint8 RGB, what the engine takes; a view of ``msg.data`` for rgb8 without conversion.

    Takes a sensor_msgs/Image in any of :data:`INPUT_ENCODINGS`, or a
    sensor_msgs/CompressedImage (a message with ``format`` and no ``encoding``).
    """
    if not hasattr(msg, "encoding") and hasattr(msg, "format"):
        return compressed_to_rgb(msg)
    encoding = str(msg.encoding).lower()
    if encoding in YUV422:
        return yuv422_to_rgb(msg)
    if encoding in BAYER:
        return bayer_to_rgb(msg)
    if encoding not in ENCODINGS:
        raise _unsupported(encoding)
    pixels = image_to_numpy(msg)
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
