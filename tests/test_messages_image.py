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

import array
import io

import numpy as np
import pytest

from reasonseg_ros.errors import InputError
from reasonseg_ros.messages import image_to_numpy, image_to_rgb, label_image_to_msg, numpy_to_image

rosbags_types = pytest.importorskip("reasonseg_ros.messages.rosbags_types")
pytest.importorskip("rosbags", reason="the eval extra (rosbags) is not installed")


@pytest.fixture(scope="module")
def ts():
    return rosbags_types.typestore()


def header(ts, sec=3, nanosec=5, frame_id="cam"):
    return ts.types["std_msgs/msg/Header"](
        stamp=ts.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


def make(ts, pixels_bytes, height, width, encoding, step, big=0):
    return ts.types["sensor_msgs/msg/Image"](
        header=header(ts),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=big,
        step=step,
        data=np.frombuffer(pixels_bytes, dtype=np.uint8).copy(),
    )


RGB = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("encoding", "pixels"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[:, :, ::-1]),
        ("rgba8", np.concatenate([RGB, np.full((5, 7, 1), 9, np.uint8)], axis=2)),
        ("bgra8", np.concatenate([RGB[:, :, ::-1], np.full((5, 7, 1), 9, np.uint8)], axis=2)),
    ],
)
@pytest.mark.parametrize("padding", [0, 3])
def test_colour_encodings_to_rgb(ts, encoding, pixels, padding):
    channels = pixels.shape[2]
    step = 7 * channels + padding
    rows = np.zeros((5, step), dtype=np.uint8)
    rows[:, : 7 * channels] = pixels.reshape(5, -1)
    rows[:, 7 * channels :] = 255  # padding bytes must never leak into the image
    msg = make(ts, rows.tobytes(), 5, 7, encoding, step)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


def test_rgb8_without_padding_is_zero_copy(ts):
    msg = make(ts, RGB.tobytes(), 5, 7, "rgb8", 21)
    out = image_to_rgb(msg)
    assert np.shares_memory(out, msg.data)
    assert not out.flags.writeable


def test_mono8_and_mono16_both_byte_orders(ts):
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7)
    rgb = image_to_rgb(make(ts, gray.tobytes(), 5, 7, "mono8", 7))
    assert rgb.shape == (5, 7, 3) and (rgb[:, :, 0] == gray).all() and (rgb[:, :, 2] == gray).all()
    deep = np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000
    for big, raw in ((0, deep.astype("<u2").tobytes()), (1, deep.astype(">u2").tobytes())):
        msg = make(ts, raw, 5, 7, "mono16", 14, big=big)
        native = image_to_numpy(msg)
        np.testing.assert_array_equal(native, deep)
        np.testing.assert_array_equal(image_to_rgb(msg)[:, :, 1], (deep >> 8).astype(np.uint8))


@pytest.mark.parametrize(
    "data",
    [bytes(RGB.tobytes()), bytearray(RGB.tobytes()), array.array("B", RGB.tobytes()), list(RGB.tobytes())],
    ids=["bytes", "bytearray", "array", "list"],
)
def test_every_data_container(data):
    class Msg:  # the shape of an rclpy message: fields only
        height, width, encoding, is_bigendian, step = 5, 7, "rgb8", False, 21

    msg = Msg()
    msg.data = data
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encoding": "32FC1"}, "encoding '32fc1' is not supported (depth or float data has no colour"),
        ({"height": 0}, "image is empty"),
        ({"width": 0}, "image is empty"),
        ({"step": 20}, "step 20 is smaller than a row of 7 rgb8 pixels (21 bytes)"),
        ({"data": np.zeros(0, np.uint8)}, "image data is empty"),
        ({"data": np.zeros(100, np.uint8)}, "image data has 100 bytes; 7×5 rgb8 with step 21 needs 105"),
        ({"height": 6}, "needs 126"),
    ],
)
def test_bad_images_are_clear_errors(ts, change, message):
    fields = {
        "header": header(ts),
        "height": 5,
        "width": 7,
        "encoding": "rgb8",
        "is_bigendian": 0,
        "step": 21,
        "data": np.frombuffer(RGB.tobytes(), np.uint8).copy(),
    }
    fields.update(change)
    with pytest.raises(InputError) as info:
        image_to_rgb(ts.types["sensor_msgs/msg/Image"](**fields))
    assert message in str(info.value)


def test_label_image_message_round_trips_through_cdr(ts):
    labels = np.zeros((6, 9), dtype=np.uint16)
    labels[1:3, 2:5] = 7
    labels[4, 8] = 65535
    msg = label_image_to_msg(ts.types["sensor_msgs/msg/Image"], header(ts), labels)
    assert (msg.encoding, msg.step, msg.is_bigendian, msg.height, msg.width) == ("mono16", 18, 0, 6, 9)
    back = ts.deserialize_cdr(ts.serialize_cdr(msg, "sensor_msgs/msg/Image"), "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(image_to_numpy(back), labels)
    assert back.header.stamp.sec == 3 and back.header.frame_id == "cam"


def test_numpy_to_image_rgb8_and_wrapping(ts):
    msg = numpy_to_image(ts.types["sensor_msgs/msg/Image"], header(ts), RGB, "rgb8")
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)
    wrapped = numpy_to_image(
        ts.types["sensor_msgs/msg/Image"], header(ts), RGB, "rgb8", lambda a: array.array("B", a.tobytes())
    )
    assert isinstance(wrapped.data, array.array) and len(wrapped.data) == RGB.size
    with pytest.raises(ValueError, match="mono16 needs"):
        numpy_to_image(ts.types["sensor_msgs/msg/Image"], header(ts), RGB, "mono16")


# -- compressed images and the converted encodings (issue 14) ----------------------------------------

from reasonseg_ros.messages import image as image_module  # noqa: E402
from reasonseg_ros.messages.image import INPUT_ENCODINGS, compressed_to_rgb  # noqa: E402


@pytest.fixture
def cv2():
    return pytest.importorskip("cv2", reason="OpenCV (the cv extra) is not installed")


def compressed(ts, data, fmt):
    return ts.types["sensor_msgs/msg/CompressedImage"](
        header=header(ts), format=fmt, data=np.frombuffer(bytes(data), dtype=np.uint8).copy()
    )


SCENE = np.random.default_rng(3).integers(0, 256, (12, 16, 3), dtype=np.uint8)
SMOOTH = np.stack([*np.meshgrid(np.arange(16) * 16, np.arange(12) * 20), np.full((12, 16), 90)], -1).astype(np.uint8)


def encoded(kind, rgb=SCENE):
    """PNG or JPEG bytes written by Pillow (an encoder independent of the decoder under test)."""
    image_lib = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    out = io.BytesIO()
    image_lib.fromarray(rgb).save(out, format="PNG" if kind == "png" else "JPEG")
    return out.getvalue()


def test_png_compressed_image_is_lossless_rgb(ts):
    msg = compressed(ts, encoded("png"), "png")
    np.testing.assert_array_equal(image_to_rgb(msg), SCENE)


@pytest.mark.parametrize("fmt", ["jpeg", "rgb8; jpeg compressed bgr8"])
def test_jpeg_compressed_image_matches_opencvs_own_decode(ts, cv2, fmt):
    data = encoded("jpeg")
    msg = compressed(ts, data, fmt)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    out = image_to_rgb(msg)
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, reference)


def test_pillow_decodes_when_opencv_is_missing(ts, monkeypatch):
    real = image_module.available
    monkeypatch.setattr(image_module, "available", lambda name: name != "cv2" and real(name))
    np.testing.assert_array_equal(compressed_to_rgb(compressed(ts, encoded("png"), "png")), SCENE)
    jpeg = compressed_to_rgb(compressed(ts, encoded("jpeg", SMOOTH), "jpeg"))
    assert jpeg.shape == SMOOTH.shape
    assert np.abs(jpeg.astype(int) - SMOOTH.astype(int)).mean() < 6  # lossy, but the same picture


def test_no_decoder_is_a_clear_input_error(ts, monkeypatch):
    data = encoded("png")
    monkeypatch.setattr(image_module, "available", lambda name: False)
    with pytest.raises(InputError, match="needs OpenCV or Pillow: apt install python3-opencv"):
        compressed_to_rgb(compressed(ts, data, "png"))


@pytest.mark.parametrize(
    ("source", "fmt", "message"),
    [
        (("jpeg", 40), "jpeg", r"jpeg data \(40 bytes\) is corrupt"),
        (("png", 60), "png", r"png data \(60 bytes\) is corrupt"),
        (b"GIF89a" + bytes(30), "gif", "neither jpeg nor png"),
        (b"", "jpeg", "compressed image data is empty"),
        (("png", None), "16UC1; compressedDepth png", "depth"),
    ],
)
def test_bad_compressed_images_are_clear_errors(ts, source, fmt, message):
    data = encoded(source[0])[: source[1]] if isinstance(source, tuple) else source
    with pytest.raises(InputError, match=message):
        image_to_rgb(compressed(ts, data, fmt))


@pytest.mark.parametrize(("encoding", "code"), [("yuv422", "UYVY"), ("uyvy", "UYVY"), ("yuyv", "YUYV")])
@pytest.mark.parametrize("use_opencv", [True, False])
def test_yuv422_matches_opencvs_conversion(ts, cv2, monkeypatch, encoding, code, use_opencv):
    packed = np.random.default_rng(5).integers(16, 236, (6, 8, 2), dtype=np.uint8)
    reference = cv2.cvtColor(packed, getattr(cv2, f"COLOR_YUV2RGB_{code}"))
    rows = np.zeros((6, 20), np.uint8)  # step 20: padded rows
    rows[:, :16] = packed.reshape(6, 16)
    msg = make(ts, rows.tobytes(), 6, 8, encoding, 20)
    real = image_module.available
    monkeypatch.setattr(image_module, "available", lambda name: (use_opencv or name != "cv2") and real(name))
    out = image_to_rgb(msg)
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 2  # the numpy path: OpenCV's rounding


def test_bayer_cells_by_hand(ts):
    # One 2×2 RGGB cell: R=200, G=(100, 51), B=10 -> every pixel (200, 76, 10); the BGGR layout swaps R and B.
    cell = np.array([[200, 100], [51, 10]], dtype=np.uint8)
    out = image_to_rgb(make(ts, cell.tobytes(), 2, 2, "bayer_rggb8", 2))
    assert out.shape == (2, 2, 3) and (out == [200, 76, 10]).all()
    out = image_to_rgb(make(ts, cell.tobytes(), 2, 2, "bayer_bggr8", 2))
    assert (out == [10, 76, 200]).all()
    out = image_to_rgb(make(ts, cell.tobytes(), 2, 2, "bayer_grbg8", 2))  # G R / B G
    assert (out == [100, 105, 51]).all()


def test_unsupported_encodings_list_what_is_supported(ts):
    with pytest.raises(InputError) as info:
        image_to_rgb(make(ts, bytes(8), 2, 2, "16UC1", 4))
    text = str(info.value)
    assert "depth" in text and all(name in text for name in INPUT_ENCODINGS) and "CompressedImage" in text
    with pytest.raises(InputError, match="even"):
        image_to_rgb(make(ts, bytes(6), 1, 3, "yuv422", 6))
