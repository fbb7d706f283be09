"""sensor_msgs/Image fields -> RGB frames (transt_ros.ros.image_conversion): pure numpy/OpenCV, no ROS."""
from __future__ import annotations

import array
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from transt_ros.ros.image_conversion import (
    ImageConversionError,
    compressed_msg_to_rgb,
    compressed_to_rgb,
    image_msg_to_rgb,
    image_to_rgb,
    rgb_to_image_fields,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)


def as_msg_data(raw: bytes) -> array.array:
    """rclpy stores uint8[] fields as array.array('B')."""
    return array.array('B', raw)


def padded(rows: np.ndarray, extra: int) -> tuple[bytes, int]:
    """(H, row_bytes) uint8 -> bytes with ``extra`` padding bytes after each row, and the step."""
    height, row_bytes = rows.shape
    out = np.full((height, row_bytes + extra), 0xEE, np.uint8)
    out[:, :row_bytes] = rows
    return out.tobytes(), row_bytes + extra


def test_rgb8_is_a_zero_copy_view():
    data = as_msg_data(RGB.tobytes())
    frame = image_to_rgb('rgb8', 6, 8, 24, data)
    assert frame.shape == (6, 8, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, RGB)
    assert np.shares_memory(frame, np.frombuffer(data, np.uint8))


def test_row_padding_is_skipped_without_copying():
    raw, step = padded(RGB.reshape(6, 24), 8)
    data = as_msg_data(raw)
    frame = image_to_rgb('rgb8', 6, 8, step, data)
    np.testing.assert_array_equal(frame, RGB)
    assert np.shares_memory(frame, np.frombuffer(data, np.uint8))
    bgr_raw, bgr_step = padded(RGB[:, :, ::-1].reshape(6, 24), 3)
    np.testing.assert_array_equal(image_to_rgb('bgr8', 6, 8, bgr_step, bgr_raw), RGB)


@pytest.mark.parametrize('encoding, pixels', [
    ('bgr8', lambda: RGB[:, :, ::-1]),
    ('rgba8', lambda: np.dstack([RGB, np.full((6, 8), 7, np.uint8)])),
    ('bgra8', lambda: np.dstack([RGB[:, :, ::-1], np.full((6, 8), 7, np.uint8)])),
])
def test_colour_encodings(encoding, pixels):
    source = np.ascontiguousarray(pixels())
    channels = source.shape[2]
    frame = image_to_rgb(encoding, 6, 8, 8 * channels, source.tobytes())
    np.testing.assert_array_equal(frame, RGB)


def test_mono8_is_replicated_to_three_channels():
    gray = RNG.integers(0, 256, (6, 8), dtype=np.uint8)
    frame = image_to_rgb('mono8', 6, 8, 8, gray.tobytes())
    np.testing.assert_array_equal(frame, np.dstack([gray] * 3))


@pytest.mark.parametrize('bigendian', [False, True])
def test_mono16_scaled_like_cv_bridge(bigendian):
    """cv_bridge's mono16 -> rgb8: convertTo(CV_8U, 255/65535), i.e. round(value / 257)."""
    values = np.array([[0, 128, 129, 257, 1000, 32768, 65534, 65535]], dtype=np.uint16)
    raw = values.astype('>u2' if bigendian else '<u2').tobytes()
    frame = image_to_rgb('mono16', 1, 8, 16, raw, is_bigendian=bigendian)
    expected = np.rint(values * (255.0 / 65535.0)).astype(np.uint8)
    np.testing.assert_array_equal(frame[:, :, 0], expected)
    np.testing.assert_array_equal(frame[:, :, 0], frame[:, :, 2])
    assert expected.tolist() == [[0, 0, 1, 1, 4, 128, 255, 255]]


def test_mono16_with_odd_row_padding():
    values = RNG.integers(0, 65536, (3, 4), dtype=np.uint16)
    raw, step = padded(np.frombuffer(values.astype('<u2').tobytes(), np.uint8).reshape(3, 8), 1)
    frame = image_to_rgb('mono16', 3, 4, step, raw)
    np.testing.assert_array_equal(frame[:, :, 1], np.rint(values / 257.0).astype(np.uint8))


def uyvy_and_yuyv(y0, u, y1, v) -> tuple[bytes, bytes]:
    """One 2x1 macro-pixel as UYVY ('yuv422') and as YUYV ('yuv422_yuy2')."""
    return bytes([u, y0, v, y1]), bytes([y0, u, y1, v])


def test_yuv422_byte_orders():
    uyvy, yuyv = uyvy_and_yuyv(60, 90, 200, 180)
    from_uyvy = image_to_rgb('yuv422', 1, 2, 4, uyvy)
    from_yuyv = image_to_rgb('yuv422_yuy2', 1, 2, 4, yuyv)
    np.testing.assert_array_equal(from_uyvy, from_yuyv)
    assert from_uyvy.shape == (1, 2, 3)
    assert int(from_uyvy[0, 1].mean()) > int(from_uyvy[0, 0].mean())  # y1 (200) brighter than y0 (60)
    gray_uyvy, _ = uyvy_and_yuyv(128, 128, 128, 128)
    gray = image_to_rgb('yuv422', 1, 2, 4, gray_uyvy)
    assert np.ptp(gray) <= 1  # neutral chroma: a gray pixel
    expected = cv2.cvtColor(np.frombuffer(uyvy, np.uint8).reshape(1, 2, 2), cv2.COLOR_YUV2RGB_UYVY)
    np.testing.assert_array_equal(from_uyvy, expected)


@pytest.mark.parametrize('fields, message', [
    (dict(encoding='16UC1', height=2, width=2, step=4, data=bytes(8)), 'not a colour format'),
    (dict(encoding='32FC1', height=2, width=2, step=8, data=bytes(16)), 'not a colour format'),
    (dict(encoding='foo', height=2, width=2, step=6, data=bytes(12)), "unsupported encoding 'foo'"),
    (dict(encoding='rgb8', height=2, width=2, step=5, data=bytes(12)), 'step 5 is smaller'),
    (dict(encoding='rgb8', height=2, width=2, step=6, data=bytes(7)), 'data has 7 bytes'),
    (dict(encoding='rgb8', height=2, width=2, step=6, data=b''), 'data has 0 bytes'),
    (dict(encoding='rgb8', height=0, width=0, step=0, data=b''), 'empty image'),
    (dict(encoding='yuv422', height=1, width=3, step=6, data=bytes(6)), 'even width'),
])
def test_malformed_images_raise_clear_errors(fields, message):
    with pytest.raises(ImageConversionError, match=message):
        image_to_rgb(**fields)


def test_message_like_objects():
    msg = SimpleNamespace(encoding='bgr8', height=6, width=8, step=24, is_bigendian=0,
                          data=as_msg_data(RGB[:, :, ::-1].tobytes()))
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)
    fields = rgb_to_image_fields(RGB[:, ::2])  # a non-contiguous view is copied
    assert (fields['encoding'], fields['height'], fields['width'], fields['step']) == ('rgb8', 6, 4, 12)
    np.testing.assert_array_equal(image_msg_to_rgb(SimpleNamespace(**fields)), RGB[:, ::2])


def test_compressed_png_and_jpeg():
    ok, png = cv2.imencode('.png', np.ascontiguousarray(RGB[:, :, ::-1]))
    assert ok
    np.testing.assert_array_equal(compressed_to_rgb('png', png.tobytes()), RGB)
    np.testing.assert_array_equal(
        compressed_msg_to_rgb(SimpleNamespace(format='rgb8; png compressed bgr8', data=as_msg_data(png.tobytes()))),
        RGB)
    smooth = np.zeros((16, 16, 3), np.uint8)
    smooth[:, :] = (200, 100, 50)
    ok, jpeg = cv2.imencode('.jpg', np.ascontiguousarray(smooth[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = compressed_to_rgb('jpeg', jpeg.tobytes())
    assert decoded.shape == (16, 16, 3)
    assert np.abs(decoded.astype(int) - smooth).max() <= 3


@pytest.mark.parametrize('format_, data, message', [
    ('jpeg', b'', 'empty'),
    ('jpeg', b'definitely not a jpeg', 'cannot decode'),
    ('16UC1; compressedDepth png', b'\x00' * 20, 'compressed depth'),
    ('tiff', b'\x00' * 20, 'unsupported compressed format'),
])
def test_bad_compressed_images(format_, data, message):
    with pytest.raises(ImageConversionError, match=message):
        compressed_to_rgb(format_, data)


def test_importable_without_ros():
    code = ('import sys, transt_ros.ros.image_conversion, transt_ros.ros.targeting; '
            'assert "rclpy" not in sys.modules, "rclpy imported"')
    subprocess.run([sys.executable, '-c', code], cwd=Path(__file__).resolve().parents[1], check=True)
