"""Issue 14, items 1, 4, 5, 8: a PNG bomb on the compressed input (bringup process, peak memory),
and an in-process tracker node over real DDS fed by a NaN model, a QoS-incompatible camera and
use_sim_time without /clock."""
from __future__ import annotations

import math
import threading
import time

import cv2
import numpy as np
import pytest

from transt_ros.ros.service_calls import call_service

from .ros_helpers import (
    peak_rss_mb,
    reset_peak_rss,
    ros_context,
    rss_mb,
    start_bringup,
    stop_process_group,
    write_light_checkpoint,
)

pytestmark = pytest.mark.ros

TOPIC = '/limits_cam/image'


class Listener:
    """The test's node: records the tracker's outputs, publishes images, calls services."""

    def __init__(self, image_qos=None, compressed=False, name='limits_probe'):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import MultiThreadedExecutor
        from sensor_msgs.msg import CompressedImage, Image
        from transt_ros.msg import TrackerStatus
        from transt_ros.srv import SetTarget
        from vision_msgs.msg import Detection2D

        self.node = rclpy.create_node(name)
        self.records = {'detection': [], 'status': [], 'diagnostics': []}
        for name, msg_type, topic in (('detection', Detection2D, '/transt_tracker/detection'),
                                      ('status', TrackerStatus, '/transt_tracker/status'),
                                      ('diagnostics', DiagnosticArray, '/diagnostics')):
            self.node.create_subscription(msg_type, topic, self.records[name].append, 50)
        self.image_pub = self.node.create_publisher(CompressedImage if compressed else Image,
                                                    TOPIC + ('/compressed' if compressed else ''), image_qos or 10)
        self.set_target = self.node.create_client(SetTarget, '/transt_tracker/set_target')
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def diagnostics(self, after: float = 0.0) -> dict:
        deadline = time.monotonic() + 15.0
        count = len(self.records['diagnostics'])
        while time.monotonic() < deadline:
            fresh = [m for m in self.records['diagnostics'][count:] if m.status[0].name.startswith('transt_tracker')]
            if fresh:
                status = fresh[-1].status[0]
                return {'message': status.message, **{kv.key: kv.value for kv in status.values}}
            time.sleep(0.05)
        raise AssertionError('no /diagnostics from transt_tracker')

    def target(self, x, y, w, h):
        from transt_ros.srv import SetTarget

        return call_service(self.set_target, SetTarget.Request(x=float(x), y=float(y), width=float(w),
                                                               height=float(h)), 20.0)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()


def rgb_image(width=320, height=240):
    from sensor_msgs.msg import Image

    data = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return Image(height=height, width=width, encoding='rgb8', step=width * 3, data=data.tobytes())


def test_png_bomb_is_dropped_before_decoding(tmp_path):
    from sensor_msgs.msg import CompressedImage

    log_path = tmp_path / 'bringup.log'
    with ros_context():
        process = start_bringup(log_path, '-p', f'image_topic:={TOPIC}', '-p', 'image_transport:=compressed',
                                '-p', 'autostart:=false', '-p', 'diagnostics_period:=0.5')
        listener = Listener(compressed=True)
        try:
            listener.wait = listener.diagnostics()  # the node is up
            time.sleep(1.0)
            bomb = cv2.imencode('.png', np.zeros((8000, 8000, 3), np.uint8))[1].tobytes()
            small = cv2.imencode('.png', np.zeros((480, 640, 3), np.uint8))[1].tobytes()
            before = listener.diagnostics()
            baseline = rss_mb(process.pid)
            reset_peak_rss(process.pid)
            for _ in range(5):
                listener.image_pub.publish(CompressedImage(format='png', data=bomb))
                time.sleep(0.2)
            listener.image_pub.publish(CompressedImage(format='png', data=small))
            time.sleep(1.0)
            after = listener.diagnostics()
            growth = peak_rss_mb(process.pid) - baseline
            print(f'\nPNG bomb ({len(bomb) // 1024} KiB, 8000x8000) x5: peak memory {growth:+.1f} MB, dropped '
                  f"{int(after['frames_dropped']) - int(before['frames_dropped'])}")
            assert int(after['frames_dropped']) - int(before['frames_dropped']) == 5
            assert int(after['frames_received']) - int(before['frames_received']) == 1  # the 640x480 one
            assert growth < 50.0  # decoding one would take 192 MB
            assert 'exceeds max_image_pixels (16777216)' in log_path.read_text()
        finally:
            listener.close()
            assert stop_process_group(process) == 0


@pytest.fixture()
def tracker_node(tmp_path):
    """An in-process transt_tracker on a ModelHandle the test loads; -> (node, handle, checkpoint dir)."""
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from transt_ros.ros.model_handle import ModelHandle
    from transt_ros.ros.tracker_node import TrackerNode

    nodes = []

    def make(**overrides):
        handle = ModelHandle()
        parameters = [Parameter('image_topic', value=TOPIC), Parameter('diagnostics_period', value=0.3),
                      *(Parameter(name, value=value) for name, value in overrides.items())]
        node = TrackerNode(handle, parameter_overrides=parameters)
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        nodes.append((node, executor))
        return node, handle

    with ros_context():
        yield make
        for node, executor in nodes:
            executor.shutdown()
            node.destroy_node()


def load_into(handle, checkpoint):
    from transt_ros.checkpoint import load_model
    from transt_ros.tracking import prepare_model

    handle.load(prepare_model(load_model(checkpoint)), 'cpu', 'fp32')  # no warm-up: the manager would refuse it
    handle.set_active(True)


def publish_for(listener, seconds, rate_hz=15.0):
    msg = rgb_image()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg.header.stamp = listener.node.get_clock().now().to_msg()
        listener.image_pub.publish(msg)
        time.sleep(1.0 / rate_hz)


def publish_until_received(listener, node, count=3, timeout_s=20.0):
    """Publish until the node has received ``count`` frames (discovery, then ``auto`` QoS matching)."""
    deadline = time.monotonic() + timeout_s
    while node.frames.counts().received < count and time.monotonic() < deadline:
        publish_for(listener, 0.2)
    assert node.frames.counts().received >= count, 'the tracker received no frames'


def test_non_finite_results_are_lost_and_never_published(tracker_node, tmp_path):
    node, handle = tracker_node()
    load_into(handle, write_light_checkpoint(tmp_path / 'nan.pth', fill=math.nan))
    listener = Listener()
    try:
        publish_until_received(listener, node)
        reply = listener.target(100, 80, 60, 60)
        assert reply.accepted, reply.reason
        publish_for(listener, 1.5)
        # every tracked frame (frame_count >= 1) is LOST at once; before the first one the new target is TRACKING
        statuses = [m for m in listener.records['status'] if m.track_id == reply.track_id and m.frame_count >= 1]
        assert len(statuses) >= 3 and all(m.state == 2 for m in statuses), [(m.state, m.score) for m in statuses]
        assert all(math.isfinite(m.score) for m in statuses)
        assert not listener.records['detection']
        assert int(listener.diagnostics()['non_finite_results']) >= 3
    finally:
        listener.close()


def test_incompatible_camera_and_silent_publisher_are_reported(tracker_node):
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    tracker_node(image_qos_reliability='reliable', input_timeout=0.5)
    listener = Listener(image_qos=QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    try:
        publish_for(listener, 1.5)
        values = listener.diagnostics()
        assert int(values['qos_incompatible_publishers']) >= 1
        assert int(values['frames_received']) == 0
        assert 'publisher(s) on' in values['message'] and 'no frame for' in values['message'], values['message']
    finally:
        listener.close()


def test_sim_time_without_clock_is_reported(tracker_node, tmp_path):
    node, handle = tracker_node(use_sim_time=True)
    load_into(handle, write_light_checkpoint(tmp_path / 'light.pth'))
    listener = Listener()
    try:
        publish_until_received(listener, node)
        assert listener.target(100, 80, 60, 60).accepted
        publish_for(listener, 1.0)
        values = listener.diagnostics()  # diagnostics go on without /clock
        assert 'no /clock' in values['message'] and values['latency_ms'] == 'n/a'
        latencies = [m.latency_ms for m in listener.records['status'] if m.track_id and m.frame_count >= 1]
        assert latencies and all(math.isnan(value) for value in latencies)
    finally:
        listener.close()


def test_auto_qos_subscribes_once_with_the_publishers_offer(tracker_node):
    """``auto`` subscribes only once a publisher is seen, with what it offers (here reliable): no
    best-effort subscription first, nothing replaced, frames arrive."""
    node, _ = tracker_node(image_qos_reliability='auto')
    assert node.images.subscription is None and node.images.reliability == ''
    listener = Listener()  # a reliable publisher (depth 10)
    try:
        deadline = time.monotonic() + 15.0
        while node.frames.counts().received < 5 and time.monotonic() < deadline:
            publish_for(listener, 0.3)
        assert node.images.reliability == 'reliable' and node.images.retired_count() == 0
        assert node.frames.counts().received >= 5
    finally:
        listener.close()


def test_auto_qos_replacement_keeps_the_node_processing(tracker_node):
    """When the publishers' offer changes (a best-effort publisher joins a reliable one), the replaced
    subscription is retired in a callback group of its own: the new one, CameraInfo and the
    diagnostics timer keep running (a shared group was stranded for good by the replaced one's events)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    node, _ = tracker_node(image_qos_reliability='auto')
    reliable = Listener()
    try:
        deadline = time.monotonic() + 15.0
        while node.images.reliability != 'reliable' and time.monotonic() < deadline:
            publish_for(reliable, 0.3)
        first = node.images.subscription
        best_effort = Listener(image_qos=QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT),
                               name='best_effort_camera')
        try:
            deadline = time.monotonic() + 15.0
            while node.images.reliability != 'best_effort' and time.monotonic() < deadline:
                publish_for(best_effort, 0.3)
            assert node.images.reliability == 'best_effort' and node.images.subscription is not first
            assert node.images.retired_count() == 1
            received = node.frames.counts().received
            ticks = len(best_effort.records['diagnostics'])
            publish_for(best_effort, 1.5)
            assert node.frames.counts().received > received
            assert len(best_effort.records['diagnostics']) > ticks
            assert node.destroy_retired_subscriptions() == 1 and node.images.retired_count() == 0
        finally:
            best_effort.close()
    finally:
        reliable.close()
