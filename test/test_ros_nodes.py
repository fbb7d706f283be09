"""The ROS nodes over real DDS on loopback: ``transt-ros`` (bringup) runs as a subprocess, the test
process publishes camera images and talks to it through topics, services and the lifecycle services.

The checkpoint is a small random-weight model (resnet18, d_model 64) written with save_checkpoint and
read back by the node. Its heads' last layers are constant (score 0.8, box = the previous box for a
square target), so the published geometry is exact and checkable; the network still runs in full.

The tests share one bringup process and run in file order (each states the state it expects).
"""
from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from transt_ros.ros.parameters import sibling_topic
from transt_ros.ros.service_calls import call_service
from transt_ros.ros.targeting import IDLE, INACTIVE, LOST, TRACKING

from .ros_helpers import SCORE, ros_context, ros_env, write_light_checkpoint

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
IMAGE_TOPIC = '/test_cam/image'
CAMERA_FRAME = 'test_camera'
WIDTH, HEIGHT = 320, 240
SQUARE = 40


# ------------------------------------------------------------------------------------ pure helpers

def test_state_constants_match_the_message():
    from transt_ros.msg import TrackerStatus

    assert (IDLE, TRACKING, LOST, INACTIVE) == (TrackerStatus.IDLE, TrackerStatus.TRACKING,
                                                TrackerStatus.LOST, TrackerStatus.INACTIVE)


def test_sibling_topic():
    assert sibling_topic('/cam/image_raw', 'camera_info') == '/cam/camera_info'
    assert sibling_topic('image', 'camera_info') == 'camera_info'
    assert sibling_topic('/image', 'camera_info') == '/camera_info'


# ------------------------------------------------------------------------------------ the system

def make_frame(index: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A textured background with a textured square moving right and back; -> (rgb, square box)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(40, 120, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    x = 60 + abs((index * 2) % 200 - 100)
    y = 100
    checker = (np.indices((SQUARE, SQUARE)).sum(axis=0) // 5 % 2).astype(np.uint8)
    frame[y:y + SQUARE, x:x + SQUARE] = np.stack([200 * checker + 40, 180 - 100 * checker, 60 + 0 * checker], -1)
    return frame, (float(x), float(y), float(SQUARE), float(SQUARE))


class Probe:
    """The test's side: camera publisher, recorders of the node's outputs, service clients."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import Point, PointStamped
        from lifecycle_msgs.srv import ChangeState, GetState
        from rcl_interfaces.srv import SetParameters
        from rclpy.executors import MultiThreadedExecutor
        from sensor_msgs.msg import CameraInfo, Image
        from std_srvs.srv import Trigger
        from transt_ros.msg import TrackerStatus
        from transt_ros.srv import SetTarget
        from vision_msgs.msg import Detection2D, Detection2DArray

        self.node = node = rclpy.create_node('transt_test_probe')
        self.lock = threading.Lock()
        self.records: dict[str, list] = {name: [] for name in ('detection', 'detections', 'status', 'diagnostics',
                                                               'overlay')}
        for name, msg_type, topic in (('detection', Detection2D, '/transt_tracker/detection'),
                                      ('detections', Detection2DArray, '/transt_tracker/detections'),
                                      ('status', TrackerStatus, '/transt_tracker/status'),
                                      ('diagnostics', DiagnosticArray, '/diagnostics')):
            node.create_subscription(msg_type, topic, self._recorder(name), 50)
        self.Image = Image
        self.image_pub = node.create_publisher(Image, IMAGE_TOPIC, 10)
        self.info_pub = node.create_publisher(CameraInfo, '/test_cam/camera_info', 10)
        self.mouse_pub = node.create_publisher(Point, IMAGE_TOPIC + '_mouse_left', 10)
        self.clicked_pub = node.create_publisher(PointStamped, '/clicked_point', 10)
        self.target_pub = node.create_publisher(Detection2D, '/transt_tracker/target', 10)
        self.set_target = node.create_client(SetTarget, '/transt_tracker/set_target')
        self.clear_target = node.create_client(Trigger, '/transt_tracker/clear_target')
        self.change_state = node.create_client(ChangeState, '/transt_model_manager/change_state')
        self.get_state = node.create_client(GetState, '/transt_model_manager/get_state')
        self.manager_params = node.create_client(SetParameters, '/transt_model_manager/set_parameters')
        self.tracker_params = node.create_client(SetParameters, '/transt_tracker/set_parameters')
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()
        self.published: dict[int, tuple | None] = {}  # stamp ns -> the square's box (None: malformed)
        self.frame_index = 0
        self._camera: threading.Thread | None = None
        self._camera_stop = threading.Event()
        self.rate_hz = 0.0

    def _recorder(self, name):
        def record(msg):
            with self.lock:
                self.records[name].append((time.time(), msg))
        return record

    def received(self, name) -> list:
        with self.lock:
            return list(self.records[name])

    # -- images
    def image(self, index: int):
        rgb, box = make_frame(index)
        msg = self.Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3, data=rgb.tobytes())
        msg.header.frame_id = CAMERA_FRAME
        return msg, box

    def publish_image(self, msg, box=None) -> int:
        msg.header.stamp = self.node.get_clock().now().to_msg()
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        with self.lock:
            self.published[stamp] = box
        self.image_pub.publish(msg)
        return stamp

    def start_camera(self, rate_hz: float) -> None:
        self.stop_camera()
        self.rate_hz = rate_hz
        self._camera_stop.clear()
        period = 1.0 / rate_hz
        frames = [self.image(index) for index in range(100)]  # prepared: publishing stays cheap

        def run():
            next_time = time.perf_counter()
            while not self._camera_stop.is_set():
                msg, box = frames[self.frame_index % len(frames)]
                self.frame_index += 1
                self.publish_image(msg, box)
                next_time += period
                self._camera_stop.wait(max(0.0, next_time - time.perf_counter()))

        self._camera = threading.Thread(target=run, daemon=True)
        self._camera.start()

    def stop_camera(self) -> None:
        if self._camera is not None:
            self._camera_stop.set()
            self._camera.join()
            self._camera = None

    def last_published(self, back: int = 0) -> tuple[int, tuple]:
        """(stamp ns, square box) of the newest good frame published, or of the one ``back`` before it."""
        with self.lock:
            stamps = sorted(stamp for stamp, box in self.published.items() if box is not None)
        return stamps[-1 - back], self.published[stamps[-1 - back]]

    # -- calls
    def wait_until_answering(self, timeout_s: float = 90.0) -> None:
        """Until the bringup answers get_state. wait_for_service alone can be fooled by a node of an
        earlier test still in the graph cache, and a request sent before the server matched is lost."""
        from lifecycle_msgs.srv import GetState

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.get_state.wait_for_service(timeout_sec=2.0):
                future = self.get_state.call_async(GetState.Request())
                answer_by = time.monotonic() + 2.0
                while not future.done() and time.monotonic() < answer_by:
                    time.sleep(0.02)
                if future.done():
                    return
                self.get_state.remove_pending_request(future)
        raise AssertionError('the bringup does not answer /transt_model_manager/get_state')

    def call(self, client, request, timeout_s: float = 20.0):
        return call_service(client, request, timeout_s)

    def target(self, x, y, width, height, stamp_ns: int = 0):
        from transt_ros.srv import SetTarget

        request = SetTarget.Request(x=float(x), y=float(y), width=float(width), height=float(height))
        request.stamp.sec, request.stamp.nanosec = divmod(stamp_ns, 10**9)
        return self.call(self.set_target, request)

    def clear(self):
        from std_srvs.srv import Trigger

        return self.call(self.clear_target, Trigger.Request())

    def transition(self, transition_id: int) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        return self.call(self.change_state, ChangeState.Request(transition=Transition(id=transition_id)),
                         timeout_s=60.0).success

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        return self.call(self.get_state, GetState.Request()).current_state.label

    def set_params(self, client, **values):
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()
                                                    for name, value in values.items()])
        return self.call(client, request).results

    def wait_for(self, predicate, timeout_s: float = 15.0, what: str = 'condition'):
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, f'timed out waiting for {what}'
            time.sleep(0.02)

    def next_message(self, name: str, predicate=lambda msg: True, timeout_s: float = 15.0, after: float = None):
        after = time.time() if after is None else after

        def find():
            for received_at, msg in self.received(name):
                if received_at >= after and predicate(msg):
                    return msg
            return None
        return self.wait_for(find, timeout_s, f'a matching message on {name}')

    def diagnostics_values(self) -> dict[str, str]:
        """The key/values of the tracker's next /diagnostics status."""
        msg = self.next_message('diagnostics', lambda m: any(s.name.startswith('transt_tracker') for s in m.status))
        status = next(s for s in msg.status if s.name.startswith('transt_tracker'))
        return {kv.key: kv.value for kv in status.values}

    def diagnostics_value(self, key: str) -> str:
        return self.diagnostics_values()[key]

    def close(self) -> None:
        self.stop_camera()
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture(scope='module')
def system(tmp_path_factory):
    directory = tmp_path_factory.mktemp('transt_ros_nodes')
    good = write_light_checkpoint(directory / 'light.pth')
    corrupt = directory / 'corrupt.pth'
    corrupt.write_bytes(b'\x80\x02 this is not a checkpoint' * 40)
    log_path = directory / 'bringup.log'
    with ros_context():
        env = ros_env()
        env['PYTHONUNBUFFERED'] = '1'
        command = [sys.executable, '-m', 'transt_ros.ros.bringup', '--ros-args',
                   '-p', f'image_topic:={IMAGE_TOPIC}', '-p', f'checkpoint:={corrupt}', '-p', 'lost_frames:=3',
                   '-p', 'autostart:=false',
                   '-p', 'diagnostics_period:=0.5']
        with open(log_path, 'w') as log:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        probe = Probe()
        probe.process, probe.log_path, probe.good_checkpoint = process, log_path, good
        probe.wait_until_answering()
        try:
            yield probe
        finally:
            probe.close()
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if os.environ.get('TRANST_TEST_SHOW_LOG'):
                print(log_path.read_text())


def bringup_log(system) -> str:
    return system.log_path.read_text()


def center(detection) -> tuple[float, float]:
    return detection.bbox.center.position.x, detection.bbox.center.position.y


# ------------------------------------------------------------------------------------ the tests

def test_bad_checkpoint_leaves_the_manager_unconfigured(system):
    from lifecycle_msgs.msg import Transition

    assert system.state() == 'unconfigured'
    assert not system.transition(Transition.TRANSITION_CONFIGURE)
    assert system.state() == 'unconfigured'
    assert system.process.poll() is None, 'bringup died on a corrupt checkpoint'
    assert 'configure failed' in bringup_log(system) and 'corrupt.pth' in bringup_log(system)
    # device and precision are checked when they are set, with the reason
    (refused,) = system.set_params(system.manager_params, precision='fp64')
    assert not refused.successful and 'precision must be one of' in refused.reason
    (refused,) = system.set_params(system.manager_params, cuda_graph='yes')
    assert not refused.successful
    assert all(r.successful for r in system.set_params(system.manager_params, cuda_graph=False, allow_tf32=False))
    (refused,) = system.set_params(system.manager_params, device='tpu:0')
    assert not refused.successful and 'device' in refused.reason
    if not torch.cuda.is_available():
        (refused,) = system.set_params(system.manager_params, device='cuda')
        assert not refused.successful and 'is not available' in refused.reason
    results = system.set_params(system.manager_params, checkpoint=str(system.good_checkpoint), device='cpu')
    assert all(result.successful for result in results)
    assert system.transition(Transition.TRANSITION_CONFIGURE)
    assert system.state() == 'inactive'


def test_rejections_change_nothing(system):
    from lifecycle_msgs.msg import Transition

    reply = system.target(10, 10, 40, 40)
    assert not reply.accepted and 'not active' in reply.reason and reply.track_id == ''
    assert system.transition(Transition.TRANSITION_ACTIVATE)
    assert system.state() == 'active'
    reply = system.target(10, 10, 40, 40)
    assert not reply.accepted and 'no image received yet' in reply.reason

    system.start_camera(10.0)
    system.next_message('status', lambda m: m.state == IDLE, timeout_s=20.0)
    for box, reason in (((400, 300, 40, 40), 'outside'), ((-100, 10, 50, 50), 'outside'),
                        ((10, 10, 0, 40), 'positive width')):
        reply = system.target(*box)
        assert not reply.accepted and reason in reply.reason, reply.reason
    reply = system.target(10, 10, 40, 40, stamp_ns=12 * 10**9 + 345)
    assert not reply.accepted and 'no buffered frame with stamp 12.000000345' in reply.reason
    assert system.next_message('status').state == IDLE
    assert system.next_message('detections').detections == []
    assert system.received('detection') == []


def test_set_target_on_the_newest_frame(system):
    _, square = system.last_published()
    reply = system.target(*square)
    assert reply.accepted and reply.reason == '' and reply.track_id
    detection = system.next_message('detection', lambda m: m.id == reply.track_id)
    # header = the image's header: one of the published frames
    assert detection.header.frame_id == CAMERA_FRAME
    assert detection.header.stamp.sec * 10**9 + detection.header.stamp.nanosec in system.published
    x, y, width, height = square
    assert center(detection) == pytest.approx((x + width / 2, y + height / 2), abs=0.01)
    assert (detection.bbox.size_x, detection.bbox.size_y) == pytest.approx((width, height), abs=0.01)
    hypothesis = detection.results[0].hypothesis
    assert hypothesis.class_id == 'target' and hypothesis.score == pytest.approx(SCORE, abs=1e-4)
    array = system.next_message('detections', lambda m: m.detections and m.header == detection.header, after=0.0)
    assert array.detections[0].id == reply.track_id
    status = system.next_message('status', lambda m: m.track_id == reply.track_id)
    assert status.state == TRACKING and status.score == pytest.approx(SCORE, abs=1e-4)
    assert status.latency_ms > 0 and status.track_ms > 0
    assert [(t.track_id, t.state) for t in status.tracks] == [(reply.track_id, TRACKING)]


def test_set_target_with_a_stamp_catches_up(system):
    time.sleep(1.0)
    # a frame the node certainly received (its status carries the frame's header), ~0.8 s old
    old = [msg for received_at, msg in system.received('status') if received_at < time.time() - 0.8]
    stamp = old[-1].header.stamp.sec * 10**9 + old[-1].header.stamp.nanosec
    reply = system.target(*system.published[stamp], stamp_ns=stamp)
    assert reply.accepted, reply.reason
    match = re.search(rf'track {reply.track_id} from ~/set_target: .* caught up (\d+) buffered frames',
                      system.wait_for(lambda: f'track {reply.track_id} from' in bringup_log(system)
                                      and bringup_log(system), what='the log line'))
    caught_up = int(match.group(1))
    assert caught_up >= 1  # the frames after the stamped one were tracked before the reply
    status = system.next_message('status', lambda m: m.track_id == reply.track_id)
    assert status.frame_count >= caught_up


def test_target_topic(system):
    from vision_msgs.msg import Detection2D

    target = Detection2D()
    target.bbox.center.position.x, target.bbox.center.position.y = 160.0, 120.0
    target.bbox.size_x = target.bbox.size_y = 50.0
    system.target_pub.publish(target)
    detection = system.next_message('detection', lambda m: center(m) == pytest.approx((160.0, 120.0), abs=0.01))
    assert detection.bbox.size_x == pytest.approx(50.0, abs=0.01)


def test_one_target_by_id(system):
    """max_targets 1 (the default): an existing id re-initialises the target keeping its id; any other
    id replaces it, like an empty one; ~/clear_track clears it by id."""
    from transt_ros.srv import ClearTrack, SetTarget

    x, y, width, height = system.last_published()[1]
    first = system.target(x, y, width, height)
    assert first.accepted
    request = SetTarget.Request(x=x + 10.0, y=y, width=width, height=height, track_id=first.track_id)
    again = system.call(system.set_target, request)
    assert again.accepted and again.track_id == first.track_id
    system.next_message('detection', lambda m: m.id == first.track_id and center(m)[0] == pytest.approx(
        x + 10.0 + width / 2, abs=0.01))
    request.track_id = 'no-such-track'
    replaced = system.call(system.set_target, request)
    assert replaced.accepted and replaced.track_id not in ('', first.track_id)
    clear_track = system.node.create_client(ClearTrack, '/transt_tracker/clear_track')
    try:
        reply = system.call(clear_track, ClearTrack.Request(track_id=first.track_id))
        assert not reply.success and f"no live track '{first.track_id}'" in reply.reason
        reply = system.call(clear_track, ClearTrack.Request(track_id=replaced.track_id))
        assert reply.success and reply.reason == ''
    finally:
        system.node.destroy_client(clear_track)
    status = system.next_message('status', after=time.time() + 0.2)
    assert status.state == IDLE and status.tracks == []


def test_clicks_rqt_and_rviz(system):
    from geometry_msgs.msg import Point, PointStamped
    from sensor_msgs.msg import CameraInfo

    assert all(r.successful for r in system.set_params(system.tracker_params, click_box_size=48))
    assert system.clear().success
    # rqt_image_view: one click -> a click_box_size box centred on it
    system.mouse_pub.publish(Point(x=100.0, y=90.0))
    detection = system.next_message('detection', lambda m: center(m) == pytest.approx((100.0, 90.0), abs=0.01))
    assert (detection.bbox.size_x, detection.bbox.size_y) == pytest.approx((48.0, 48.0), abs=0.01)
    # two clicks within double_click_timeout -> the box with these corners (centre kept by the model)
    assert system.clear().success  # (also forgets the pending click above)
    system.mouse_pub.publish(Point(x=60.0, y=50.0))
    system.mouse_pub.publish(Point(x=140.0, y=110.0))
    system.next_message('detection', lambda m: center(m) == pytest.approx((100.0, 80.0), abs=0.01))
    assert 'image click (corners)' in bringup_log(system)

    # RViz: a 3D point in the camera's optical frame, projected with CameraInfo's K
    info = CameraInfo(width=WIDTH, height=HEIGHT, k=[200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0])
    info.header.frame_id = CAMERA_FRAME
    system.wait_for(lambda: system.info_pub.get_subscription_count() > 0, what='CameraInfo subscriber')
    system.info_pub.publish(info)
    time.sleep(0.3)
    assert system.clear().success
    wrong = PointStamped()
    wrong.header.frame_id = 'map'
    wrong.point.x, wrong.point.y, wrong.point.z = 1.0, 1.0, 1.0
    system.clicked_pub.publish(wrong)
    system.wait_for(lambda: "clicked point in frame 'map'" in bringup_log(system), what='warning')
    assert system.next_message('status').state == IDLE
    click = PointStamped()
    click.header.frame_id = CAMERA_FRAME
    click.point.x, click.point.y, click.point.z = 0.5, -0.25, 2.0
    system.clicked_pub.publish(click)
    detection = system.next_message('detection', lambda m: center(m) == pytest.approx((210.0, 95.0), abs=0.01))
    assert detection.bbox.size_x == pytest.approx(48.0, abs=0.01)


def test_clear_target(system):
    reply = system.clear()
    assert reply.success and reply.message.startswith('track')
    after = time.time()
    assert system.next_message('status', after=after + 0.2).state == IDLE
    assert system.next_message('detections', after=after + 0.2).detections == []
    count = len(system.received('detection'))
    time.sleep(0.5)
    assert len(system.received('detection')) == count
    assert system.clear().message == 'no target was set'


def test_lost_hysteresis_and_dynamic_parameters(system):
    params = system.tracker_params
    _, square = system.last_published()
    reply = system.target(*square)
    assert reply.accepted
    system.next_message('status', lambda m: m.track_id == reply.track_id and m.state == TRACKING)
    # the constant score 0.8 becomes "low": LOST after lost_frames=3 frames, detections go on
    assert all(r.successful for r in system.set_params(params, recover_threshold=0.95, lost_threshold=0.9))
    status = system.next_message('status', lambda m: m.state == LOST)
    assert status.frame_count >= 3 and status.track_id == reply.track_id
    after = time.time()
    detection = system.next_message('detection', after=after)
    assert detection.id == reply.track_id and detection.results[0].hypothesis.score == pytest.approx(SCORE, abs=1e-4)
    assert all(r.successful for r in system.set_params(params, lost_threshold=0.3, recover_threshold=0.5))
    system.next_message('status', lambda m: m.state == TRACKING and m.track_id == reply.track_id)
    # invalid values are refused with a reason
    (refused,) = system.set_params(params, lost_threshold=0.7)
    assert not refused.successful and 'recover_threshold' in refused.reason
    (refused,) = system.set_params(params, window_influence=1.5)
    assert not refused.successful
    (refused,) = system.set_params(params, image_topic='/other')
    assert not refused.successful and 'read-only' in refused.reason.lower()
    (accepted,) = system.set_params(params, label='ball')
    assert accepted.successful
    detection = system.next_message('detection', after=time.time() + 0.1)
    assert detection.results[0].hypothesis.class_id == 'ball'


def test_malformed_images_are_dropped(system):
    system.stop_camera()
    time.sleep(0.3)
    dropped_before = int(system.diagnostics_value('frames_dropped'))
    bad = []
    for change in ({'step': WIDTH * 3 - 1}, {'encoding': 'foo'}, {'data': b''}, {'encoding': '16UC1'}):
        msg, _ = system.image(0)
        for key, value in change.items():
            setattr(msg, key, value)
        bad.append(msg)
    for msg in bad:
        system.publish_image(msg)
        time.sleep(0.25)  # one at a time, so none is skipped as "not the newest"
    after = time.time()
    dropped = system.wait_for(
        lambda: (value := int(system.diagnostics_value('frames_dropped'))) >= dropped_before + len(bad) and value,
        what='dropped frames in /diagnostics')
    assert dropped == dropped_before + len(bad)
    system.start_camera(10.0)
    system.next_message('detection', after=after)
    assert system.process.poll() is None
    log = bringup_log(system)  # a throttled warning: the first of the burst is logged
    assert 'dropped an image' in log and 'step 959 is smaller than' in log


def test_overlay_only_while_subscribed(system):
    from sensor_msgs.msg import Image

    def drawn_and_processed():
        values = system.diagnostics_values()
        return int(values['overlays_published']), int(values['frames_processed'])

    # nobody subscribes: frames are processed, nothing is drawn
    drawn_before, processed_before = drawn_and_processed()
    time.sleep(1.0)
    drawn, processed = drawn_and_processed()
    assert processed > processed_before + 3 and drawn == drawn_before
    overlays = []
    subscription = system.node.create_subscription(Image, '/transt_tracker/overlay', overlays.append, 5)
    try:
        system.wait_for(lambda: overlays, what='an overlay image')
        overlay = overlays[-1]
        assert (overlay.encoding, overlay.width, overlay.height) == ('rgb8', WIDTH, HEIGHT)
        assert overlay.header.frame_id == CAMERA_FRAME
        assert drawn_and_processed()[0] > drawn
    finally:
        system.node.destroy_subscription(subscription)
    time.sleep(0.5)  # the node notices the subscriber is gone
    drawn_after_unsubscribing = drawn_and_processed()[0]
    time.sleep(1.0)
    assert drawn_and_processed()[0] == drawn_after_unsubscribing


def _latency_phase(system, rate_hz: float, seconds: float) -> dict:
    system.start_camera(rate_hz)
    time.sleep(1.0)  # settle
    before = system.diagnostics_values()
    start, published_before = time.time(), system.frame_index
    time.sleep(seconds)
    end, published = time.time(), system.frame_index - published_before
    system.stop_camera()
    time.sleep(0.3)
    after = system.diagnostics_values()
    skipped = int(after['frames_skipped']) - int(before['frames_skipped'])
    received = int(after['frames_received']) - int(before['frames_received'])
    times, latencies = [], []
    for received_at, msg in system.received('detection'):
        if start <= received_at <= end:
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            times.append(received_at - start)
            latencies.append((received_at - stamp) * 1000.0)
    quarter = max(1, len(latencies) // 4)
    slope = float(np.polyfit(times, latencies, 1)[0]) if len(times) > 2 else 0.0
    return {'rate_hz': round(rate_hz, 1), 'published_hz': round(published / seconds, 1),
            'published': published, 'received': received, 'detections': len(latencies), 'skipped': skipped,
            'growth_ms_per_s': round(slope, 1),
            'median_ms': round(statistics.median(latencies), 1), 'max_ms': round(max(latencies), 1),
            'first_quarter_ms': round(statistics.median(latencies[:quarter]), 1),
            'last_quarter_ms': round(statistics.median(latencies[-quarter:]), 1)}


def test_latency_stays_bounded_at_4x_the_tracker_rate(system):
    """The tracker's rate is measured with a saturating camera; then 1x and 4x that rate."""
    _, square = system.last_published()
    reply = system.target(*square)
    assert reply.accepted, reply.reason

    def tracked():
        statuses = [s for _, s in system.received('status') if s.track_id == reply.track_id]
        return len(statuses) >= 10 and statuses
    track_ms = statistics.median(s.track_ms for s in system.wait_for(tracked, what='10 tracked frames'))
    saturated = _latency_phase(system, min(2000.0 / track_ms, 100.0), 2.0)
    tracker_rate = saturated['detections'] / 2.0
    one = _latency_phase(system, tracker_rate, 4.0)
    four = _latency_phase(system, 4 * tracker_rate, 5.0)
    system.start_camera(10.0)
    print(f'\nlatency, image stamp -> detection received [ms]; track_ms {track_ms:.1f}, '
          f'tracker rate {tracker_rate:.1f} Hz:\n  1x: {one}\n  4x: {four}')
    assert four['skipped'] > 0 and four['detections'] < four['published']
    # Newest frame only: no backlog, so the latency does not grow over the run. A queue would add
    # about 750 ms per second at 4x (3 s by the last quarter); the margins absorb CPU contention.
    assert four['growth_ms_per_s'] < 150.0, four
    assert four['last_quarter_ms'] <= four['first_quarter_ms'] + 250.0, four
    assert four['max_ms'] < 1500.0, four


def test_lifecycle_pause_resume_cleanup_and_shutdown(system):
    from lifecycle_msgs.msg import Transition

    _, square = system.last_published()
    reply = system.target(*square)
    assert reply.accepted
    assert system.transition(Transition.TRANSITION_DEACTIVATE)
    system.next_message('status', lambda m: m.state == INACTIVE)
    count = len(system.received('detection'))
    time.sleep(0.5)
    assert len(system.received('detection')) <= count + 1
    assert not system.target(*square).accepted
    assert system.transition(Transition.TRANSITION_ACTIVATE)  # paused, not forgotten
    system.next_message('detection', lambda m: m.id == reply.track_id)
    assert system.transition(Transition.TRANSITION_DEACTIVATE)
    assert system.transition(Transition.TRANSITION_CLEANUP)
    assert system.state() == 'unconfigured'
    assert 'model freed' in bringup_log(system)
    assert system.transition(Transition.TRANSITION_CONFIGURE)
    assert system.transition(Transition.TRANSITION_ACTIVATE)
    system.next_message('status', lambda m: m.state == IDLE)  # the cleanup dropped the target
    system.stop_camera()
    system.process.send_signal(signal.SIGINT)
    assert system.process.wait(timeout=15) == 0
