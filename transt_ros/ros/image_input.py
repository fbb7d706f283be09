"""The tracker node's image input and its health, as :class:`ImageInputMixin` (mixed into
:class:`~transt_ros.ros.tracker_node.TrackerNode`).

Holds the image subscription (re-created when ``image_qos_reliability: auto`` matches the publishers),
its DDS events (lost frames, incompatible QoS), the silent-publisher check, the image callback (size
check, then the one-frame slot and the ring buffer of recent frames), the CameraInfo callback and the
message -> RGB conversion; with the :class:`Frame` they make and the stamp helpers.

Relies on these attributes of the node (set in ``TrackerNode.__init__``): ``_image_type``,
``_image_topic``, ``_image_depth``, ``_image_sub``, ``_image_reliability``, ``_image_generation``,
``_image_topic_resolved``, ``_retired_subscriptions``, ``_input_group``,
``_convert``, ``_settings`` (``max_image_pixels``, ``input_timeout``), ``_frames_lock``, ``_counts``,
``_seq``, ``_newest``, ``_buffer``, ``_camera_frame``, ``_camera_info``, ``_last_frame_time``,
``_frame_ready`` (the guard condition of the processing callback) and ``_live_logger()``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from .image_conversion import ImageConversionError, check_pixels, compressed_dimensions
from .parameters import qos_profile

WARN_PERIOD_S = 5.0
LARGE_FRAMES_HINT = ('best-effort frames larger than the publisher\'s shared-memory segment (Fast DDS: 512 KiB) '
                     'are mostly lost: publish reliable, or give the camera a larger segment '
                     '(config/fastdds_large_frames.xml), see docs/ros.md "Camera QoS"')


@dataclass
class Frame:
    msg: Image | CompressedImage
    seq: int
    stamp_ns: int
    received_ns: int


def publisher_reliability(publishers) -> str:
    """'reliable' when every publisher offers reliable delivery (and there is one), else 'best_effort'."""
    if publishers and all(info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers):
        return 'reliable'
    return 'best_effort'


def stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def format_stamp(nanoseconds: int) -> str:
    return f'{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}'


class ImageInputMixin:
    """The image subscription of :class:`~transt_ros.ros.tracker_node.TrackerNode` and its health."""

    @property
    def _image_topic_name(self) -> str:
        """The resolved image topic (a plain string: never touches a subscription being replaced)."""
        return self._image_topic_resolved

    def _subscribe_images(self, reliability: str) -> None:
        """(Re)create the image subscription with ``reliability``; events report lost frames and QoS
        mismatches.

        A replaced subscription is not destroyed here (this runs in an executor callback, and rclpy's
        executor may be adding its event handlers to a wait set in another thread at that moment:
        ``InvalidHandle``). It is retired: its callbacks are ignored from now on, and
        :meth:`destroy_retired_subscriptions` destroys it from the spinning thread between two waits.
        """
        self._image_generation += 1
        generation = self._image_generation

        def current_only(callback):
            def guarded(argument):
                if generation == self._image_generation:
                    callback(argument)
            return guarded

        events = SubscriptionEventCallbacks(message_lost=current_only(self._on_frames_lost),
                                            incompatible_qos=current_only(self._on_incompatible_qos))
        subscription = self.create_subscription(
            self._image_type, self._image_topic, current_only(self._on_image),
            qos_profile(reliability, self._image_depth), callback_group=self._input_group, event_callbacks=events)
        retired, self._image_sub = self._image_sub, subscription
        self._image_topic_resolved = subscription.topic_name
        self._image_reliability = reliability
        if retired is not None:
            with self._frames_lock:
                self._retired_subscriptions.append(retired)

    def destroy_retired_subscriptions(self) -> None:
        """Destroy replaced image subscriptions; call it from the thread that spins the executor,
        between two ``spin_once`` calls (the bringup does). Otherwise they go with the node."""
        with self._frames_lock:
            retired, self._retired_subscriptions = self._retired_subscriptions, []
        for subscription in retired:
            self.destroy_subscription(subscription)

    def _match_publishers(self) -> None:
        """``image_qos_reliability: auto``: subscribe with what the publishers offer."""
        wanted = publisher_reliability(self.get_publishers_info_by_topic(self._image_topic_name))
        if wanted != self._image_reliability:
            self._subscribe_images(wanted)
            self._live_logger().info(
                f"image subscription on '{self._image_topic_name}' now {wanted} (auto: matches the publishers)")

    def _on_frames_lost(self, event) -> None:
        with self._frames_lock:
            self._counts['lost'] += event.total_count_change
        self._live_logger().warning(f"{event.total_count} frames on '{self._image_topic_name}' lost in transport "
                                    f'(reported by DDS); {LARGE_FRAMES_HINT}', throttle_duration_sec=WARN_PERIOD_S)

    def _on_incompatible_qos(self, event) -> None:
        with self._frames_lock:
            self._counts['qos_incompatible'] = event.total_count
        self._live_logger().warning(f"a publisher on '{self._image_topic_name}' offers a QoS incompatible with this "
                                    f'{self._image_reliability} subscription (policy id {event.last_policy_kind}): its '
                                    "frames never arrive; set image_qos_reliability to 'auto' or 'best_effort'",
                  throttle_duration_sec=WARN_PERIOD_S)

    def _input_problem(self, counts) -> str | None:
        """A publisher on the image topic and no frame for ``input_timeout`` -> the reason, else None."""
        publishers = self.count_publishers(self._image_topic_name)
        silent_s = time.monotonic() - self._last_frame_time
        if publishers == 0 or silent_s < self._settings['input_timeout']:
            return None
        return (f"{publishers} publisher(s) on '{self._image_topic_name}' but no frame for {silent_s:.1f} s "
                f"(lost in transport: {counts['lost']}, QoS incompatible: {counts['qos_incompatible']})")

    def _frame_pixels_problem(self, msg) -> str | None:
        """Why ``msg`` is too large to keep (checked before buffering; compressed: header only)."""
        limit = self._settings['max_image_pixels']
        try:
            if self._image_type is Image:
                check_pixels(int(msg.width), int(msg.height), limit)
            else:
                dimensions = compressed_dimensions(msg.data)
                if dimensions is not None:
                    check_pixels(*dimensions, limit)
        except ImageConversionError as error:
            return str(error)
        return None

    def _on_image(self, msg) -> None:
        received_ns = self.get_clock().now().nanoseconds
        self._last_frame_time = time.monotonic()
        problem = self._frame_pixels_problem(msg)
        if problem:
            with self._frames_lock:
                self._counts['dropped'] += 1
            self._live_logger().warning(f"dropped an image from '{self._image_topic_name}': {problem}",
                                        throttle_duration_sec=WARN_PERIOD_S)
            return
        with self._frames_lock:
            self._seq += 1
            frame = Frame(msg, self._seq, stamp_ns(msg.header.stamp), received_ns)
            if self._newest is not None:
                self._counts['skipped'] += 1
            self._newest = frame
            self._buffer.append(frame)
            self._counts['received'] += 1
            self._camera_frame = msg.header.frame_id
        self._frame_ready.trigger()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _to_rgb(self, msg) -> np.ndarray:
        return self._convert(msg, self._settings['max_image_pixels'])
