"""numpy -> the messages of a tracking bag (Image, CompressedImage, CameraInfo, Detection2D), and the
box of a Detection2D back. (Image messages -> numpy: :mod:`transt_ros.ros.image_conversion`.)

Frames are RGB ``uint8`` ``(H, W, 3)``; boxes are ``(x, y, w, h)`` pixels with ``x, y`` the
top-left corner; a Detection2D stores the box centre (``bbox.center.position``) and size
(vision_msgs 4.x). Stamps are integer nanoseconds since the epoch.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D

from ..common import detections
from ..common.detections import detection_box as detection_box  # re-exported
from ..common.detections import detection_score as detection_score  # re-exported
from ..common.stamps import ns_to_sec_nanosec

COMPRESSED_FORMATS = ('jpeg', 'png')
DEFAULT_HORIZONTAL_FOV_DEG = 60.0


def time_from_ns(stamp_ns: int) -> Time:
    """A builtin_interfaces/Time of integer nanoseconds (back: :func:`transt_ros.common.stamps.stamp_to_ns`)."""
    seconds, nanoseconds = ns_to_sec_nanosec(stamp_ns)
    return Time(sec=seconds, nanosec=nanoseconds)


def header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=time_from_ns(stamp_ns), frame_id=frame_id)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected an RGB uint8 (H, W, 3) frame, got {rgb.dtype} {rgb.shape}')
    return np.ascontiguousarray(rgb)


def image_message(rgb: np.ndarray, stamp_ns: int, frame_id: str = 'camera') -> Image:
    """An ``rgb8`` sensor_msgs/Image of ``rgb``."""
    rgb = _check_rgb(rgb)
    height, width = rgb.shape[:2]
    return Image(header=header(stamp_ns, frame_id), height=height, width=width, encoding='rgb8', is_bigendian=0,
                 step=width * 3, data=rgb.tobytes())


def compressed_image_message(rgb: np.ndarray, stamp_ns: int, frame_id: str = 'camera', image_format: str = 'png',
                             jpeg_quality: int = 95) -> CompressedImage:
    """A sensor_msgs/CompressedImage (``format`` as image_transport's compressed plugin writes it)."""
    if image_format not in COMPRESSED_FORMATS:
        raise ValueError(f"image_format must be one of {', '.join(COMPRESSED_FORMATS)}, got '{image_format}'")
    bgr = cv2.cvtColor(_check_rgb(rgb), cv2.COLOR_RGB2BGR)
    parameters = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if image_format == 'jpeg' else []
    ok, encoded = cv2.imencode('.jpg' if image_format == 'jpeg' else '.png', bgr, parameters)
    if not ok:
        raise ValueError(f'OpenCV could not encode a {rgb.shape} frame as {image_format}')
    return CompressedImage(header=header(stamp_ns, frame_id), format=f'rgb8; {image_format} compressed bgr8',
                           data=encoded.tobytes())


def camera_info_message(width: int, height: int, stamp_ns: int, frame_id: str = 'camera',
                        horizontal_fov_deg: float = DEFAULT_HORIZONTAL_FOV_DEG) -> CameraInfo:
    """An undistorted pinhole camera of the image size: square pixels, principal point at the centre,
    focal length from the horizontal field of view (60 degrees by default)."""
    focal = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return CameraInfo(
        header=header(stamp_ns, frame_id), width=int(width), height=int(height), distortion_model='plumb_bob',
        d=[0.0] * 5, k=[focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0],
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[focal, 0.0, cx, 0.0, 0.0, focal, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


def stamped_detection(box_xywh, stamp_ns: int, frame_id: str = 'camera', score: float = 1.0,
                      class_id: str = 'target', detection_id: str = '') -> Detection2D:
    """A vision_msgs/Detection2D of a top-left ``(x, y, w, h)`` box with one hypothesis, stamped ``stamp_ns``
    (a bag's ground truth; no check, a zero box is written as it is)."""
    return detections.detection_from_box(header(stamp_ns, frame_id), box_xywh, score, class_id, detection_id)


