"""The tracker node's depth input (``depth_topic``): aligned depth images kept by stamp, matched to the
colour frame a track was stepped on, and each live track's 3D position
(:func:`~transt_ros.tracking.depth_position.target_position`).

Memory: ``depth_buffer_size`` depth images (messages as received: 640x480 16UC1 is 0.6 MB, 32FC1
1.2 MB; 1280x720 16UC1 1.8 MB). Per track and frame only the central part of its box is read.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from ..common.stamps import stamp_to_ns
from ..tracking.depth_position import DepthSettings, NoPosition, TargetPosition, depth_scale, target_position
from .image_input import WARN_PERIOD_S
from .matched_subscription import RETIRE_GRACE_S, MatchedSubscription

DEPTH_WAIT_S = 0.1
"""Longest the frame step waits for the depth image of its frame when none stamped at or after it has
arrived yet (depth and colour travel on separate topics: the colour one may come first)."""
ITEM_TYPES = {'16UC1': np.uint16, 'mono16': np.uint16, '32FC1': np.float32}


@dataclass(frozen=True)
class DepthFrame:
    """A depth image as a (height, width) view of the message's bytes (no copy), in stored units."""

    stamp_ns: int
    values: np.ndarray
    scale: float


def depth_frame(msg: Image) -> DepthFrame:
    """ValueError naming what is wrong: the encoding, or a size that does not fit the data."""
    scale = depth_scale(msg.encoding)
    dtype = np.dtype(ITEM_TYPES[msg.encoding]).newbyteorder('>' if msg.is_bigendian else '<')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0 or step < width * dtype.itemsize or step % dtype.itemsize:
        raise ValueError(f'malformed depth image: {width}x{height}, step {step} for {msg.encoding}')
    if len(msg.data) < step * height:
        raise ValueError(f'depth image data too short: {len(msg.data)} bytes for {height} rows of {step}')
    rows = np.frombuffer(msg.data, dtype=dtype, count=step * height // dtype.itemsize)
    return DepthFrame(stamp_to_ns(msg.header.stamp), rows.reshape(height, step // dtype.itemsize)[:, :width], scale)


class DepthInput:
    """Depth images from ``topic`` (QoS as the image input's), the newest ``buffer_size`` kept."""

    def __init__(self, node: Node, topic: str, reliability: str, buffer_size: int, logger: Callable):
        self._logger = logger
        self._arrived = threading.Condition()
        self._buffer: deque[Image] = deque(maxlen=buffer_size)
        self._subscription = MatchedSubscription(node, Image, topic, reliability, 2, self._on_depth,
                                                 self._on_lost, self._on_incompatible, self._on_replaced)
        self.topic = self._subscription.topic

    def _on_depth(self, msg: Image) -> None:
        with self._arrived:
            self._buffer.append(msg)
            self._arrived.notify_all()

    def _on_lost(self, event) -> None:
        self._logger().warning(f"{event.total_count} depth images on '{self.topic}' lost in transport",
                               throttle_duration_sec=WARN_PERIOD_S)

    def _on_incompatible(self, event) -> None:
        self._logger().warning(f"a publisher on '{self.topic}' offers a QoS incompatible with the depth "
                               'subscription: its images never arrive', throttle_duration_sec=WARN_PERIOD_S)

    def _on_replaced(self, reliability: str) -> None:
        self._logger().info(f"depth subscription on '{self.topic}' now {reliability}")

    def destroy_retired(self, grace_s: float = RETIRE_GRACE_S) -> int:
        return self._subscription.destroy_retired(grace_s)

    def match(self, stamp_ns: int, tolerance_s: float) -> Image | str:
        """The buffered depth image stamped closest to ``stamp_ns`` within ``tolerance_s``, else why not."""
        def arrived() -> bool:
            return bool(self._buffer) and stamp_to_ns(self._buffer[-1].header.stamp) >= stamp_ns
        with self._arrived:
            self._arrived.wait_for(arrived, timeout=DEPTH_WAIT_S)
            buffered = list(self._buffer)
        if not buffered:
            return f"no depth image received yet on '{self.topic}'"
        best = min(buffered, key=lambda msg: abs(stamp_to_ns(msg.header.stamp) - stamp_ns))
        offset_s = abs(stamp_to_ns(best.header.stamp) - stamp_ns) / 1e9
        if offset_s > tolerance_s:
            return (f'no depth image stamped within {tolerance_s * 1000:.0f} ms of the image (closest '
                    f'{offset_s * 1000:.0f} ms; depth_stamp_tolerance)')
        return best

    def positions(self, stamp_ns: int, image_shape, boxes: dict[str, tuple], k, tolerance_s: float,
                  settings: DepthSettings) -> dict[str, TargetPosition | NoPosition]:
        """Each box's 3D position on the colour frame stamped ``stamp_ns`` of ``image_shape`` (H, W)."""
        if not boxes:
            return {}
        matched = self.match(stamp_ns, tolerance_s)
        if isinstance(matched, str):
            return dict.fromkeys(boxes, NoPosition(matched))
        if k is None:
            return dict.fromkeys(boxes, NoPosition('no CameraInfo received yet (camera_info_topic)'))
        try:
            frame = depth_frame(matched)
        except ValueError as error:
            return dict.fromkeys(boxes, NoPosition(str(error)))
        height, width = image_shape[:2]
        if frame.values.shape != (height, width):
            depth_height, depth_width = frame.values.shape
            return dict.fromkeys(boxes, NoPosition(
                f'the depth image is {depth_width}x{depth_height}, the colour image {width}x{height}: publish '
                'depth aligned to the colour camera'))
        return {track_id: target_position(frame.values, frame.scale, box, k, settings)
                for track_id, box in boxes.items()}
