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

"""A frame as a ``data:`` URL for the chat-completions ``image_url`` field."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np

from reasonseg_ros.deps import require


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic with pillow when installed, else nearest neighbour (numpy)."""
    if image.shape[:2] == (height, width):
        return image
    try:
        from PIL import Image
    except ImportError:
        rows = (np.arange(height) * image.shape[0] / height).astype(np.int64)
        cols = (np.arange(width) * image.shape[1] / width).astype(np.int64)
        return image[rows][:, cols]
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB PNG written with the standard library only."""
    height, width = image.shape[:2]
    # each scanline starts with filter type 0 (none)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(np.ascontiguousarray(scanlines).tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    pil = require("PIL.Image", "sending frames as JPEG (set reasoner.remote.image_format: png to avoid it)")
    buffer = io.BytesIO()
    pil.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def data_url(image: np.ndarray, image_format: str = "png", quality: int = 90) -> str:
    if image_format == "jpeg":
        return "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(image, quality)).decode("ascii")
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")
