"""The tracker node's image input: the image subscription (its QoS follows the camera:
:class:`~.matched_subscription.MatchedSubscription`), its health, CameraInfo, and message -> RGB."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..common.stamps import stamp_to_ns
from .frame_buffer import FrameBuffer
from .image_conversion import (
    ImageConversionError,
    check_pixels,
    compressed_dimensions,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
)
from .matched_subscription import RETIRE_GRACE_S, MatchedSubscription
from .parameters import qos_profile, sibling_topic
from .tracker_settings import InputSettings

WARN_PERIOD_S = 5.0
LARGE_FRAMES_HINT = ('best-effort frames larger than the publisher\'s shared-memory segment (Fast DDS: 512 KiB) '
                     'are mostly lost: publish reliable, or give the camera a larger segment '
                     '(config/fastdds_large_frames.xml), see docs/ros.md "Camera QoS"')


class ImageInput:
    """Images from ``image_topic`` into a :class:`FrameBuffer`; ``on_frame()`` after each accepted one."""

    def __init__(self, node: Node, frames: FrameBuffer, *, image_topic: str, transport: str, reliability: str,
                 depth: int, camera_info_topic: str, settings: Callable[[], InputSettings],
                 on_frame: Callable[[], None], logger: Callable):
        self._node, self._frames, self._settings, self._on_frame, self._logger = (
            node, frames, settings, on_frame, logger)
        if transport == 'compressed':
            self.msg_type, topic, self._convert = CompressedImage, image_topic + '/compressed', compressed_msg_to_rgb
        else:
            self.msg_type, topic, self._convert = Image, image_topic, image_msg_to_rgb
        self.camera_info: CameraInfo | None = None
        node.create_subscription(CameraInfo, camera_info_topic or sibling_topic(image_topic, 'camera_info'),
                                 self._on_camera_info, qos_profile('best_effort', 1),
                                 callback_group=MutuallyExclusiveCallbackGroup())
        self._images = MatchedSubscription(node, self.msg_type, topic, reliability, depth, self._on_image,
                                           self._on_frames_lost, self._on_incompatible_qos, self._on_replaced)
        self.topic = self._images.topic
        """The resolved image topic."""

    @property
    def reliability(self) -> str:
        """The image subscription's reliability ('' : ``auto`` waits for a publisher)."""
        return self._images.reliability

    @property
    def subscription(self):
        return self._images.subscription

    def retired_count(self) -> int:
        return self._images.retired_count()

    def destroy_retired(self, grace_s: float = RETIRE_GRACE_S) -> int:
        return self._images.destroy_retired(grace_s)

    def _on_replaced(self, reliability: str) -> None:
        self._logger().info(f"image subscription on '{self.topic}' now {reliability} (auto: the publishers' "
                            'offer changed)')

    # ------------------------------------------------------------ callbacks

    def _on_image(self, msg) -> None:
        received_ns = self._node.get_clock().now().nanoseconds
        self._frames.note_arrival()
        problem = self._pixels_problem(msg)
        if problem:
            self._frames.count_dropped()
            self._logger().warning(f"dropped an image from '{self.topic}': {problem}",
                                   throttle_duration_sec=WARN_PERIOD_S)
            return
        self._frames.put(msg, stamp_to_ns(msg.header.stamp), received_ns, msg.header.frame_id)
        self._on_frame()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def _on_frames_lost(self, event) -> None:
        self._frames.count_lost(event.total_count_change)
        self._logger().warning(f"{event.total_count} frames on '{self.topic}' lost in transport "
                               f'(reported by DDS); {LARGE_FRAMES_HINT}', throttle_duration_sec=WARN_PERIOD_S)

    def _on_incompatible_qos(self, event) -> None:
        self._frames.set_qos_incompatible(event.total_count)
        self._logger().warning(f"a publisher on '{self.topic}' offers a QoS incompatible with this "
                               f'{self.reliability} subscription (policy id {event.last_policy_kind}): its '
                               "frames never arrive; set image_qos_reliability to 'auto' or 'best_effort'",
                               throttle_duration_sec=WARN_PERIOD_S)

    # ------------------------------------------------------------ checks and conversion

    def _pixels_problem(self, msg) -> str | None:
        """Why ``msg`` is too large to keep (checked before buffering; compressed: header only)."""
        limit = self._settings().max_image_pixels
        try:
            if self.msg_type is Image:
                check_pixels(int(msg.width), int(msg.height), limit)
            else:
                dimensions = compressed_dimensions(msg.data)
                if dimensions is not None:
                    check_pixels(*dimensions, limit)
        except ImageConversionError as error:
            return str(error)
        return None

    def to_rgb(self, msg) -> np.ndarray:
        """Raises ImageConversionError."""
        return self._convert(msg, self._settings().max_image_pixels)

    def publisher_count(self) -> int:
        return self._images.publisher_count()

    def problem(self, counts) -> str | None:
        """A publisher on the image topic and no frame for ``input_timeout`` -> the reason, else None."""
        publishers = self.publisher_count()
        silent_s = time.monotonic() - self._frames.last_arrival
        if publishers == 0 or silent_s < self._settings().input_timeout:
            return None
        problem = (f"{publishers} publisher(s) on '{self.topic}' but no frame for {silent_s:.1f} s "
                   f'(lost in transport: {counts.lost}, QoS incompatible: {counts.qos_incompatible})')
        if self.reliability == 'best_effort':
            problem += f'; {LARGE_FRAMES_HINT}'
        return problem
