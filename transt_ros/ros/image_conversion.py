"""sensor_msgs/Image and CompressedImage fields -> RGB uint8 H x W x 3 arrays, like cv_bridge.

Pure numpy/OpenCV (no rclpy import), so it is testable without ROS and usable where cv_bridge is
not installed. Results match ``cv_bridge.CvBridge().imgmsg_to_cv2(msg, 'rgb8')``:

- ``rgb8`` (and ``rgba8`` sliced) are returned as zero-copy views of ``msg.data`` (row padding
  included: a ``step`` larger than ``width * channels`` gives a strided view). Treat them as
  read-only; copy before drawing on them.
- ``bgr8``, ``bgra8``, ``mono8``, ``mono16``, ``yuv422`` (UYVY), ``yuv422_yuy2`` (YUYV) are
  converted with ``cv2.cvtColor`` (a copy).
- ``mono16`` is scaled to 8 bit as cv_bridge's ``rgb8`` conversion does
  (``convertTo(..., 255.0 / 65535.0)``: value / 257, rounded); ``is_bigendian`` is honoured.
- ``16UC1`` and other non-colour encodings are rejected (cv_bridge refuses them too: a depth
  image is not a colour format).
- Compressed images (``format`` naming jpeg or png, e.g. ``'rgb8; jpeg compressed bgr8'``) are
  decoded with ``cv2.imdecode``; ``compressedDepth`` is rejected.
- ``max_pixels`` (optional) refuses images with more pixels before anything is converted; for
  compressed images the dimensions are read from the PNG/JPEG header, so a decompression bomb
  (a 182 KiB PNG of 8000x8000) is refused without being decoded.

Every problem raises :class:`ImageConversionError` with a message naming it.
"""
from __future__ import annotations

import cv2
import numpy as np

# encoding -> (bytes per pixel, number of channels stored)
ENCODINGS = {
    'rgb8': (3, 3),
    'bgr8': (3, 3),
    'rgba8': (4, 4),
    'bgra8': (4, 4),
    'mono8': (1, 1),
    'mono16': (2, 1),
    'yuv422': (2, 2),
    'yuv422_yuy2': (2, 2),
}
NON_COLOUR_PREFIXES = ('8U', '8S', '16U', '16S', '32S', '32F', '64F')


class ImageConversionError(ValueError):
    """An image message that cannot be turned into an RGB frame; the message says why."""


def _check_geometry(encoding: str, height: int, width: int, step: int, size: int) -> int:
    if encoding not in ENCODINGS:
        if encoding.startswith(NON_COLOUR_PREFIXES):
            raise ImageConversionError(
                f"encoding '{encoding}' is not a colour format (a depth/raw image cannot be tracked); "
                f'supported: {", ".join(ENCODINGS)}')
        raise ImageConversionError(f"unsupported encoding '{encoding}'; supported: {', '.join(ENCODINGS)}")
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'empty image ({width}x{height})')
    pixel_bytes = ENCODINGS[encoding][0]
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than width * bytes per pixel = {width} * {pixel_bytes} = {row_bytes}')
    if size < step * (height - 1) + row_bytes:
        raise ImageConversionError(
            f'data has {size} bytes, expected step * height = {step} * {height} = {step * height} '
            f'(wrong step or truncated data)')
    if encoding.startswith('yuv422') and width % 2:
        raise ImageConversionError(f'{encoding} needs an even width, got {width}')
    return row_bytes


def _rows(buffer: np.ndarray, height: int, step: int, row_bytes: int) -> np.ndarray:
    """A (height, row_bytes) uint8 view of the buffer, skipping the padding at each row's end."""
    return np.lib.stride_tricks.as_strided(buffer, shape=(height, row_bytes), strides=(step, 1))


def check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    """ImageConversionError when ``width * height`` exceeds ``max_pixels`` (None: no limit)."""
    if max_pixels is not None and width * height > max_pixels:
        raise ImageConversionError(f'image of {width}x{height} = {width * height} pixels exceeds max_image_pixels '
                                   f'({max_pixels})')


def png_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if ``data`` is not a PNG."""
    if len(data) >= 24 and data[:8] == b'\x89PNG\r\n\x1a\n' and data[12:16] == b'IHDR':
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    return None


HEADER_BYTES = 1 << 20
JPEG_FRAME_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_STANDALONE_MARKERS = {0x01, *range(0xD0, 0xD8)}


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first start-of-frame segment, or None if not found.

    Walks the marker segments from the start (each names its length) up to the first SOFn.
    """
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return None
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in JPEG_STANDALONE_MARKERS:
            index += 2
            continue
        length = int.from_bytes(data[index + 2:index + 4], 'big')
        if marker in JPEG_FRAME_MARKERS:
            if index + 9 > len(data):
                return None
            height = int.from_bytes(data[index + 5:index + 7], 'big')
            width = int.from_bytes(data[index + 7:index + 9], 'big')
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:  # end of image / start of scan before any frame header
            return None
        index += 2 + length
    return None


def compressed_dimensions(data) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG from its header, without decoding; None when unknown.

    Reads at most the first MiB (a JPEG's metadata segments before its frame header are each
    at most 64 KiB)."""
    head = bytes(memoryview(data).cast('B')[:HEADER_BYTES]) if len(data) else b''
    return png_dimensions(head) or jpeg_dimensions(head)


def image_to_rgb(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False,
                 max_pixels: int | None = None) -> np.ndarray:
    """Raw image fields -> RGB uint8 (height, width, 3); a view of ``data`` for rgb8/rgba8."""
    encoding = str(encoding).strip()
    height, width, step = int(height), int(width), int(step)
    check_pixels(width, height, max_pixels)
    buffer = np.frombuffer(data, dtype=np.uint8) if len(data) else np.zeros(0, np.uint8)
    row_bytes = _check_geometry(encoding, height, width, step, buffer.size)
    rows = _rows(buffer, height, step, row_bytes)
    if encoding == 'mono16':
        mono = np.ascontiguousarray(rows).view('>u2' if is_bigendian else '<u2')
        mono8 = cv2.convertScaleAbs(mono.astype(np.uint16, copy=False), alpha=255.0 / 65535.0)
        return cv2.cvtColor(mono8, cv2.COLOR_GRAY2RGB)
    pixels = rows.reshape(height, width, ENCODINGS[encoding][1])
    if encoding == 'rgb8':
        return pixels
    if encoding == 'rgba8':
        return pixels[:, :, :3]
    contiguous = np.ascontiguousarray(pixels)
    code = {
        'bgr8': cv2.COLOR_BGR2RGB,
        'bgra8': cv2.COLOR_BGRA2RGB,
        'mono8': cv2.COLOR_GRAY2RGB,
        'yuv422': cv2.COLOR_YUV2RGB_UYVY,
        'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUY2,
    }[encoding]
    return cv2.cvtColor(contiguous, code)


def image_msg_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """A sensor_msgs/Image (or anything with its fields) -> RGB uint8 (H, W, 3)."""
    return image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian),
                        max_pixels)


def compressed_to_rgb(format_: str, data, max_pixels: int | None = None) -> np.ndarray:
    """sensor_msgs/CompressedImage fields (jpeg or png) -> RGB uint8 (H, W, 3).

    With ``max_pixels`` the dimensions are read from the header first; an image whose header
    cannot be read is refused rather than decoded blind."""
    lowered = str(format_).lower()
    if 'compresseddepth' in lowered:
        raise ImageConversionError(f"format '{format_}' is a compressed depth image, not a colour image")
    if lowered and not any(name in lowered for name in ('jpeg', 'jpg', 'png')):
        raise ImageConversionError(f"unsupported compressed format '{format_}'; supported: jpeg, png")
    buffer = np.frombuffer(data, dtype=np.uint8) if len(data) else np.zeros(0, np.uint8)
    if buffer.size == 0:
        raise ImageConversionError('empty compressed image')
    if max_pixels is not None:
        dimensions = compressed_dimensions(buffer)
        if dimensions is None:
            raise ImageConversionError(f'cannot read the dimensions of the {buffer.size}-byte compressed image '
                                       f"('{format_}'): not a PNG or JPEG header")
        check_pixels(*dimensions, max_pixels)
    bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageConversionError(f"cannot decode the {buffer.size}-byte compressed image ('{format_}')")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def compressed_msg_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """A sensor_msgs/CompressedImage -> RGB uint8 (H, W, 3)."""
    return compressed_to_rgb(msg.format, msg.data, max_pixels)


def rgb_to_image_fields(frame: np.ndarray) -> dict:
    """RGB uint8 (H, W, 3) -> the fields of an rgb8 sensor_msgs/Image (``data`` as bytes)."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    height, width = frame.shape[:2]
    return {'encoding': 'rgb8', 'height': height, 'width': width, 'step': width * 3, 'is_bigendian': 0,
            'data': frame.tobytes()}
