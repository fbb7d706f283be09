"""Several targets in one transt_tracker, over real DDS on loopback.

The node runs in this process (so the test can count the calls of its model's ``track``: one
batched forward per frame whatever the number of tracks) on a ModelHandle loaded with the light
test checkpoint (constant heads: score 0.8, every square box kept, so positions are exact); the
probe is a separate node that talks to it only through topics and services.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from transt_ros.ros.service_calls import call_service
from transt_ros.ros.targeting import LOST, TRACKING

from .ros_helpers import SCORE, ros_context, write_light_checkpoint

pytestmark = pytest.mark.ros

TOPIC = '/multi_cam/image'
WIDTH, HEIGHT = 320, 240
BOXES = [(20.0, 30.0, 40.0, 40.0), (120.0, 40.0, 50.0, 50.0), (220.0, 150.0, 40.0, 40.0), (60.0, 150.0, 48.0, 48.0)]


def center_of(box):
    x, y, width, height = box
    return x + width / 2, y + height / 2


class Probe:
    def __init__(self):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image
        from std_srvs.srv import Trigger
        from transt_ros.msg import TrackerStatus
        from transt_ros.srv import ClearTrack, SetTarget
        from vision_msgs.msg import Detection2D, Detection2DArray

        self.node = rclpy.create_node('multi_target_probe')
        self.lock = threading.Lock()
        self.arrays, self.statuses, self.singles = [], [], []
        self.node.create_subscription(Detection2DArray, '/transt_tracker/detections', self._keep(self.arrays), 50)
        self.node.create_subscription(Detection2D, '/transt_tracker/detection', self._keep(self.singles), 200)
        self.node.create_subscription(TrackerStatus, '/transt_tracker/status', self._keep(self.statuses), 50)
        self.image_pub = self.node.create_publisher(Image, TOPIC, 10)
        self.target_pub = self.node.create_publisher(Detection2D, '/transt_tracker/target', 10)
        self.targets_pub = self.node.create_publisher(Detection2DArray, '/transt_tracker/targets', 10)
        self.set_target = self.node.create_client(SetTarget, '/transt_tracker/set_target')
        self.clear_track = self.node.create_client(ClearTrack, '/transt_tracker/clear_track')
        self.clear_target = self.node.create_client(Trigger, '/transt_tracker/clear_target')
        self.SetTarget, self.ClearTrack, self.Trigger = SetTarget, ClearTrack, Trigger
        rng = np.random.default_rng(1)
        rgb = rng.integers(40, 120, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        self.image = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3, data=rgb.tobytes())
        self.image.header.frame_id = 'multi_camera'
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()
        self._camera = None

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _keep(self, store):
        def keep(msg):
            with self.lock:
                store.append((time.time(), msg))
        return keep

    def publish_frame(self) -> int:
        self.image.header.stamp = self.node.get_clock().now().to_msg()
        self.image_pub.publish(self.image)
        return self.image.header.stamp.sec * 10**9 + self.image.header.stamp.nanosec

    def start_camera(self, rate_hz=8.0):
        self.stop_camera()
        stop = threading.Event()

        def run():
            while not stop.is_set():
                self.publish_frame()
                stop.wait(1.0 / rate_hz)
        self._camera = (stop, threading.Thread(target=run, daemon=True))
        self._camera[1].start()

    def stop_camera(self):
        if self._camera:
            self._camera[0].set()
            self._camera[1].join()
            self._camera = None

    def call(self, client, request, timeout_s=20.0):
        return call_service(client, request, timeout_s)

    def target(self, box, track_id=''):
        x, y, width, height = box
        return self.call(self.set_target, self.SetTarget.Request(x=x, y=y, width=width, height=height,
                                                                 track_id=track_id))

    def wait_for(self, store, predicate, timeout_s=20.0, after=None, what='message'):
        after = time.time() if after is None else after
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                found = [msg for at, msg in store if at >= after and predicate(msg)]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f'timed out waiting for a {what}')

    def close(self):
        self.stop_camera()
        self._stop.set()
        self._spinner.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def detection_centres(array) -> dict[str, tuple[float, float]]:
    return {d.id: (d.bbox.center.position.x, d.bbox.center.position.y) for d in array.detections}


@pytest.fixture()
def multi_node(tmp_path):
    """An in-process transt_tracker with max_targets 4 and a counted model; -> (probe, calls, node)."""
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from transt_ros.checkpoint import load_model
    from transt_ros.ros.model_handle import ModelHandle
    from transt_ros.ros.tracker_node import TrackerNode
    from transt_ros.tracking import prepare_model

    model = prepare_model(load_model(write_light_checkpoint(tmp_path / 'light.pth')))
    calls = []
    original = model.track

    def counted_track(template, search):
        calls.append(search.shape[0])
        return original(template, search)

    model.track = counted_track
    with ros_context():
        handle = ModelHandle()
        handle.load(model, 'cpu', 'fp32')
        handle.set_active(True)
        node = TrackerNode(handle, parameter_overrides=[
            Parameter('image_topic', value=TOPIC), Parameter('max_targets', value=4),
            Parameter('lost_frames', value=2), Parameter('diagnostics_period', value=0.3)])
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        probe = Probe()
        try:
            yield probe, calls, node
        finally:
            probe.close()
            executor.shutdown()
            node.destroy_node()


def test_several_tracks_by_service_and_topic_clear_by_id_refusal_and_lost(multi_node):
    from vision_msgs.msg import Detection2D, Detection2DArray

    probe, calls, _ = multi_node
    probe.start_camera()
    probe.wait_for(probe.statuses, lambda m: True, what='status (the node receives images)')
    # three tracks by service, one by topic
    ids = []
    for box in BOXES[:3]:
        reply = probe.target(box)
        assert reply.accepted and reply.reason == '', reply.reason
        ids.append(reply.track_id)
    assert len(set(ids)) == 3
    target = Detection2D()
    (target.bbox.center.position.x, target.bbox.center.position.y) = center_of(BOXES[3])
    target.bbox.size_x, target.bbox.size_y = BOXES[3][2], BOXES[3][3]
    probe.target_pub.publish(target)
    array = probe.wait_for(probe.arrays, lambda m: len(m.detections) == 4, what='4 detections')
    centres = detection_centres(array)
    assert set(ids) < set(centres)
    topic_id = (set(centres) - set(ids)).pop()
    for track_id, box in zip(ids + [topic_id], BOXES):
        assert centres[track_id] == pytest.approx(center_of(box), abs=0.01)
    assert all(d.results[0].hypothesis.score == pytest.approx(SCORE, abs=1e-4) for d in array.detections)
    assert all(d.header == array.header for d in array.detections)
    status = probe.wait_for(probe.statuses, lambda m: len(m.tracks) == 4)
    assert status.state == TRACKING and [t.track_id for t in status.tracks] == ids + [topic_id]
    assert all(t.state == TRACKING and t.score == pytest.approx(SCORE, abs=1e-4) for t in status.tracks)
    # ~/detection: one message per track and frame, with the array's header
    stamp = array.header.stamp
    probe.wait_for(probe.singles, lambda m: m.header.stamp == stamp, after=0.0)
    time.sleep(0.3)
    with probe.lock:
        same_frame = sorted(m.id for _, m in probe.singles if m.header.stamp == stamp)
    assert same_frame == sorted(ids + [topic_id])

    # refusal at max_targets, with the reason; nothing changes
    reply = probe.target((150.0, 100.0, 30.0, 30.0))
    assert not reply.accepted and 'max_targets 4' in reply.reason and reply.track_id == ''
    reply = probe.target((150.0, 100.0, 30.0, 30.0), track_id='nope')
    assert not reply.accepted and "no live track 'nope'" in reply.reason

    # exactly one forward per frame with 4 tracks: frames one at a time, each waited for
    probe.stop_camera()
    time.sleep(0.5)
    before = len(calls)
    for _ in range(4):
        after = time.time()
        published = probe.publish_frame()
        probe.wait_for(probe.statuses, lambda m, stamp=published: stamp_of(m) == stamp, after=after - 1.0,
                       what='the status of the published frame')
    assert calls[before:] == [4, 4, 4, 4]

    # clear one track by id: the others go on with their ids and boxes
    probe.start_camera()
    reply = probe.call(probe.clear_track, probe.ClearTrack.Request(track_id=ids[1]))
    assert reply.success and reply.reason == ''
    after = time.time() + 0.3
    array = probe.wait_for(probe.arrays, lambda m: len(m.detections) == 3, after=after, what='3 detections')
    centres = detection_centres(array)
    assert set(centres) == {ids[0], ids[2], topic_id}
    for track_id, box in ((ids[0], BOXES[0]), (ids[2], BOXES[2]), (topic_id, BOXES[3])):
        assert centres[track_id] == pytest.approx(center_of(box), abs=0.01)
    reply = probe.call(probe.clear_track, probe.ClearTrack.Request(track_id=ids[1]))
    assert not reply.success and f"no live track '{ids[1]}'" in reply.reason
    # re-initialise a track by id: new box, same id
    moved = (200.0, 40.0, 44.0, 44.0)
    reply = probe.target(moved, track_id=ids[2])
    assert reply.accepted and reply.track_id == ids[2]
    array = probe.wait_for(probe.arrays, lambda m: detection_centres(m).get(ids[2]) == pytest.approx(
        center_of(moved), abs=0.01), what='the re-initialised track')
    assert set(detection_centres(array)) == {ids[0], ids[2], topic_id}
    # a fourth track fits again
    reply = probe.target(BOXES[1])
    assert reply.accepted and reply.track_id not in ids + [topic_id]

    # LOST per track: every score (0.8) is low -> all LOST; then one re-initialised track is TRACKING
    # (lost_frames very large) while the others stay LOST; then the LOST ones are dropped after a timeout
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    params = probe.node.create_client(SetParameters, '/transt_tracker/set_parameters')

    def set_params(**values):
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()
                                                    for name, value in values.items()])
        return probe.call(params, request).results

    assert all(r.successful for r in set_params(recover_threshold=0.95, lost_threshold=0.9))
    status = probe.wait_for(probe.statuses, lambda m: len(m.tracks) == 4 and all(t.state == LOST for t in m.tracks),
                            what='all tracks LOST')
    assert status.state == LOST
    assert all(r.successful for r in set_params(lost_frames=10000))
    reply = probe.target(BOXES[0], track_id=ids[0])
    assert reply.accepted and reply.track_id == ids[0]
    status = probe.wait_for(probe.statuses, lambda m: any(t.track_id == ids[0] and t.state == TRACKING
                                                          for t in m.tracks), what='the re-initialised track TRACKING')
    states = {t.track_id: t.state for t in status.tracks}
    assert status.state == TRACKING and sorted(states.values()).count(LOST) == 3
    assert all(t.lost_s > 0 for t in status.tracks if t.state == LOST)
    assert all(r.successful for r in set_params(lost_track_timeout=0.5))
    status = probe.wait_for(probe.statuses, lambda m: [t.track_id for t in m.tracks] == [ids[0]],
                            what='the LOST tracks dropped')
    assert status.tracks[0].state == TRACKING
    # one forward per frame with one track too
    probe.stop_camera()
    time.sleep(0.5)
    before = len(calls)
    for _ in range(2):
        published = probe.publish_frame()
        probe.wait_for(probe.statuses, lambda m, stamp=published: stamp_of(m) == stamp, after=time.time() - 1.0)
    assert calls[before:] == [1, 1]

    # ~/targets sets several at once; a click starts another track
    from geometry_msgs.msg import Point

    assert all(r.successful for r in set_params(lost_track_timeout=0.0, lost_threshold=0.3, recover_threshold=0.5))
    assert probe.call(probe.clear_target, probe.Trigger.Request()).message == f'track {ids[0]} cleared'
    probe.start_camera()
    several = Detection2DArray()
    for box in BOXES[:2]:
        detection = Detection2D()
        (detection.bbox.center.position.x, detection.bbox.center.position.y) = center_of(box)
        detection.bbox.size_x, detection.bbox.size_y = box[2], box[3]
        several.detections.append(detection)
    probe.targets_pub.publish(several)
    probe.wait_for(probe.arrays, lambda m: len(m.detections) == 2, what='2 tracks from ~/targets')
    clicks = probe.node.create_publisher(Point, TOPIC + '_mouse_left', 10)
    time.sleep(0.5)
    clicks.publish(Point(x=250.0, y=60.0))
    array = probe.wait_for(probe.arrays, lambda m: len(m.detections) == 3, what='3 tracks after a click')
    assert (250.0, 60.0) in [pytest.approx(c, abs=0.01) for c in detection_centres(array).values()]
    reply = probe.call(probe.clear_target, probe.Trigger.Request())
    assert reply.success and reply.message.startswith('tracks ')
