"""The tracker node's image input: the image subscription, its QoS, its health, and message -> RGB.

QoS (``image_qos_reliability``): ``reliable`` / ``best_effort`` subscribe at once. ``auto`` subscribes
only once a publisher is seen, with what the publishers offer (reliable when every one of them is
reliable), so a camera started before the node and one started after it both get the right
subscription at once; the choice is re-checked every :data:`GRAPH_CHECK_PERIOD_S` and the subscription
replaced only when the publishers' offer changes.

Replacing a subscription cannot stop the node: every subscription gets a callback group of its own
(shared with its DDS event handlers and nothing else). rclpy's executor strands a callback group for
good when an entity of the group is destroyed while a handler of it is being taken (``InvalidHandle``
raised outside its try/finally); with its own group, only the retired subscription's group can be
stranded. A replaced subscription is retired (its callbacks ignored from then on) and destroyed by
:meth:`ImageInput.destroy_retired` from the thread that spins the executor, between two waits, once it
has been retired for :data:`RETIRE_GRACE_S` (the bringup does; otherwise it goes with the node).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
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
from .parameters import AUTO_RELIABILITY, qos_profile, sibling_topic
from .tracker_settings import InputSettings

WARN_PERIOD_S = 5.0
GRAPH_CHECK_PERIOD_S = 0.25
RETIRE_GRACE_S = 1.0
LARGE_FRAMES_HINT = ('best-effort frames larger than the publisher\'s shared-memory segment (Fast DDS: 512 KiB) '
                     'are mostly lost: publish reliable, or give the camera a larger segment '
                     '(config/fastdds_large_frames.xml), see docs/ros.md "Camera QoS"')


def publisher_reliability(publishers) -> str | None:
    """'reliable' when every publisher offers reliable delivery, 'best_effort' when one does not,
    None without publishers."""
    if not publishers:
        return None
    if all(info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers):
        return 'reliable'
    return 'best_effort'


@dataclass
class _Retired:
    subscription: object
    since: float


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
        self.topic = node.resolve_topic_name(topic)
        """The resolved image topic."""
        self.reliability_setting = reliability
        self.reliability = ''
        """The reliability of the current subscription ('' : not subscribed yet, ``auto`` waits for a publisher)."""
        self._depth = depth
        self._lock = threading.Lock()
        self._subscription = None
        self._generation = 0
        self._retired: list[_Retired] = []
        self.camera_info: CameraInfo | None = None
        node.create_subscription(CameraInfo, camera_info_topic or sibling_topic(image_topic, 'camera_info'),
                                 self._on_camera_info, qos_profile('best_effort', 1),
                                 callback_group=MutuallyExclusiveCallbackGroup())
        if reliability == AUTO_RELIABILITY:
            self.match_publishers()
            node.create_timer(GRAPH_CHECK_PERIOD_S, self.match_publishers,  # steady: also without /clock
                              callback_group=MutuallyExclusiveCallbackGroup(),
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        else:
            self._subscribe(reliability)

    # ------------------------------------------------------------ the subscription

    def match_publishers(self) -> None:
        """``auto``: (re)subscribe with what the publishers offer; nothing while there is none."""
        wanted = publisher_reliability(self._node.get_publishers_info_by_topic(self.topic))
        if wanted is None or wanted == self.reliability:
            return
        replaced = bool(self.reliability)
        self._subscribe(wanted)
        if replaced:
            self._logger().info(f"image subscription on '{self.topic}' now {wanted} (auto: the publishers' "
                                'offer changed)')

    def _subscribe(self, reliability: str) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation

        def current_only(callback):
            def guarded(argument):
                if generation == self._generation:
                    callback(argument)
            return guarded

        events = SubscriptionEventCallbacks(message_lost=current_only(self._on_frames_lost),
                                            incompatible_qos=current_only(self._on_incompatible_qos))
        subscription = self._node.create_subscription(
            self.msg_type, self.topic, current_only(self._on_image), qos_profile(reliability, self._depth),
            callback_group=MutuallyExclusiveCallbackGroup(), event_callbacks=events)
        with self._lock:
            retired, self._subscription = self._subscription, subscription
            self.reliability = reliability
            if retired is not None:
                self._retired.append(_Retired(retired, time.monotonic()))

    @property
    def subscription(self):
        return self._subscription

    def retired_count(self) -> int:
        with self._lock:
            return len(self._retired)

    def destroy_retired(self, grace_s: float = RETIRE_GRACE_S) -> int:
        """Destroy the subscriptions retired at least ``grace_s`` ago -> how many. Call it from the thread
        that spins the executor, between two waits."""
        now = time.monotonic()
        with self._lock:
            due = [entry for entry in self._retired if now - entry.since >= grace_s]
            self._retired = [entry for entry in self._retired if now - entry.since < grace_s]
        for entry in due:
            self._node.destroy_subscription(entry.subscription)
        return len(due)

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
        return self._node.count_publishers(self.topic)

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
