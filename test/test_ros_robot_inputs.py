"""Robot-shaped inputs over real DDS (issue 14): camera sizes and QoS, request order, huge boxes,
broken checkpoints, parameters checked when set, the finalized manager.

One bringup (light model with constant heads, autostart) runs as a process group; cameras are
separate processes (``python -m test.ros_helpers camera``) as on a robot. The ``robot`` fixture hands
it to each test with no target and the start-up parameters; the tests that reconfigure or shut down
the manager start a bringup of their own (in a namespace of their own), so the tests pass in any order.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from transt_ros.ros.targeting import IDLE

from .ros_helpers import (
    LARGE_FRAMES_PROFILE,
    ROOT,
    Bringup,
    camera_command,
    peak_rss_mb,
    reset_peak_rss,
    ros_context,
    ros_env,
    rss_mb,
    running_bringup,
    write_light_checkpoint,
)

pytestmark = pytest.mark.ros

TOPIC = '/robot_cam/image'


@pytest.fixture(scope='module')
def ros():
    with ros_context():
        yield


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return write_light_checkpoint(tmp_path_factory.mktemp('robot_model') / 'light.pth')


@pytest.fixture(scope='module')
def shared(ros, checkpoint, tmp_path_factory):
    with running_bringup(tmp_path_factory.mktemp('robot_inputs'), '-p', f'image_topic:={TOPIC}',
                         '-p', f'checkpoint:={checkpoint}', '-p', 'diagnostics_period:=0.5',
                         '-p', 'frame_buffer_size:=90', '-p', 'input_timeout:=1.0',
                         client_name='transt_robot_client') as bringup:
        client = bringup.client
        client.wait_until(lambda: client.manager_state() == 'active', 60.0, 'autostart', bringup.check_alive)
        yield bringup


@pytest.fixture()
def robot(shared):
    """The shared bringup (active, no camera running) with no target; its parameters set back after the test."""
    client = shared.client
    assert client.manager_state() == 'active'
    assert client.clear_target().success
    startup = client.get_parameters('tracker', ('catch_up_timeout', 'label'))
    try:
        yield shared
    finally:
        assert all(result.successful for result in client.set_parameters('tracker', **startup))


def start_camera(width, height, rate_hz, seconds, reliability, large_frames_profile=False) -> subprocess.Popen:
    env = ros_env()
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if large_frames_profile:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(LARGE_FRAMES_PROFILE)
    return subprocess.Popen(camera_command(TOPIC, width, height, rate_hz, seconds, reliability), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)


def camera_result(camera: subprocess.Popen) -> dict:
    """The camera's ``{"published": N, "stamps": [...]}`` once it is done."""
    stdout, _ = camera.communicate(timeout=90)
    assert camera.returncode == 0
    return json.loads(stdout.strip().splitlines()[-1])


def settled_diagnostics(client):
    """The tracker's counters once they stop changing (two /diagnostics in a row with the same counts of
    received and lost frames): every frame of a camera that is done has been counted."""
    previous = [client.next_diagnostics()]

    def settled():
        current = client.next_diagnostics()
        done = (current.frames_received, current.frames_lost) == (previous[0].frames_received,
                                                                  previous[0].frames_lost)
        previous[0] = current
        return done and current
    return client.wait_until(settled, 30.0, 'the frame counters to settle')


# ------------------------------------------------------------------------------------ item 1: cameras

@pytest.mark.parametrize('width, height, reliability, profile', [
    (640, 480, 'reliable', False), (1280, 720, 'reliable', False),
    (640, 480, 'best_effort', True), (1280, 720, 'best_effort', True)])
def test_camera_frames_arrive_and_are_tracked(robot, width, height, reliability, profile):
    client = robot.client
    before = client.next_diagnostics()
    camera = start_camera(width, height, 15.0, 3.0, reliability, profile)
    client.wait_until(lambda: client.next_diagnostics().frames_received > before.frames_received, 30.0,
                      'frames at the node')
    reply = client.set_target(20, height // 2 - 40, 80, 80)
    assert reply.accepted, reply.reason
    during = client.next_diagnostics()
    result = camera_result(camera)
    # the newest frame is always tracked: the node kept up with the camera to its last frame
    client.status.wait_for_stamp(result['stamps'][-1], timeout_s=30.0)
    after = settled_diagnostics(client)
    published = result['published']
    received = after.frames_received - before.frames_received
    lost = after.frames_lost - before.frames_lost
    detections = [msg for msg in client.detection.messages() if msg.id == reply.track_id]
    print(f'\n{width}x{height} {reliability}{" + large-frames profile" if profile else ""}: published {published}, '
          f'received {received}, lost {lost}, detections {len(detections)}, '
          f'subscription {during.image_qos_reliability}')
    # The subscription keeps the newest frame only (depth 1): frames the busy node has not taken yet are
    # replaced in its queue, so how many are received depends on the machine's load. What does not:
    # every frame is counted once, none is lost in transport, and tracking goes on to the last frame.
    assert during.image_qos_reliability == reliability  # auto: what the camera offers
    assert 0 < received <= published, (received, published)
    assert lost == 0
    assert len(detections) >= 5
    assert {msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec for msg in detections} <= set(result['stamps'])


def test_best_effort_loss_is_reported(robot):
    """A best-effort VGA camera with Fast DDS's defaults: the frames are lost in transport (a known DDS
    behaviour for fragmented best-effort samples); the node says so in the log and in /diagnostics."""
    client = robot.client
    before = client.next_diagnostics()
    camera = start_camera(640, 480, 30.0, 3.0, 'best_effort')
    published = camera_result(camera)['published']
    after = settled_diagnostics(client)
    received = after.frames_received - before.frames_received
    lost = after.frames_lost - before.frames_lost
    print(f'\n640x480 best_effort, default transport: published {published}, received {received}, lost {lost}')
    assert received < published, ('the premise of this test is gone: Fast DDS delivered every fragmented '
                                  f'best-effort frame ({received} of {published}), so no loss is reported')
    assert lost > 0  # the loss is reported ...
    assert received + lost <= published  # ... and not over-counted
    log = robot.log()
    assert 'lost in transport' in log and 'fastdds_large_frames.xml' in log


# ------------------------------------------------------------------------------------ item 2: order

CATCH_UP_AGE_S = 1.5
"""How far back the stamped requests reach: ~45 frames of catch-up (slow enough to be overtaken), and
well inside the 3 s ring buffer even when the node's latency adds to the age under load."""
ROUNDS = 12
"""Most rounds of a race the test needs to see a number of times (each round that is not the race
still checks the order; a round is the race in most of them)."""


def buffered_stamp(client, age_s: float) -> int:
    """A frame the node processed ``age_s`` ago (its status carries the frame's header): in the buffer."""
    old = client.wait_until(lambda: [item for item in client.status.received()
                                     if item.monotonic_s < time.monotonic() - age_s],
                            what=f'a status {age_s} s old')
    return old[-1].stamp_ns


def stamped_request(client):
    """A SetTarget on a frame CATCH_UP_AGE_S back, not waited for: its catch-up takes a while."""
    return client.set_target_async(20.0, 80.0, 80.0, 80.0, stamp_ns=buffered_stamp(client, CATCH_UP_AGE_S))


@pytest.fixture()
def camera_30hz(robot):
    """A 320x240 camera at 30 Hz, tracked for long enough that the ring buffer is full (90 frames)."""
    started_ns = time.time_ns()
    camera = start_camera(320, 240, 30.0, 60.0, 'reliable')
    try:
        client = robot.client

        def seconds_of_frames() -> float:
            stamps = [item.stamp_ns for item in client.status.received() if item.stamp_ns > started_ns]
            return (stamps[-1] - stamps[0]) / 1e9 if stamps else 0.0
        client.wait_until(lambda: seconds_of_frames() > 3.0, 40.0, '3 s of frames in the ring buffer')
        yield camera
    finally:
        camera.kill()
        camera.wait()


def test_clear_target_is_never_undone_by_an_earlier_slow_set_target(robot, camera_30hz):
    """A stamped SetTarget (a slow catch-up) and a clear_target sent right after it: the clear wins every
    time. Either the SetTarget finished first (accepted, then cleared), or it is answered as overtaken
    (always when the clear says it met it in progress); the node stays IDLE. Rounds go on until the
    race (overtaken) was seen 3 times."""
    client = robot.client
    overtaken = 0
    for _ in range(ROUNDS):
        slow = stamped_request(client)
        cleared = client.clear_target()
        answer = client.answer(slow, 30.0)
        assert cleared.success
        if 'will not be applied' in cleared.message:  # the clear met the SetTarget in its catch-up
            assert not answer.accepted, answer
        if not answer.accepted:
            assert 'overtaken' in answer.reason and '~/clear_target' in answer.reason, answer.reason
            overtaken += 1
        else:
            assert answer.track_id in cleared.message, (answer, cleared)
        statuses = client.status.wait_for_count(10)
        assert {status.state for status in statuses} == {IDLE}  # the stop is never undone
        if overtaken == 3:
            break
    assert overtaken == 3, f'the clear_target overtook a stamped SetTarget in only {overtaken} of {ROUNDS} rounds'


def test_a_newer_set_target_wins_over_an_earlier_slow_one(robot, camera_30hz):
    """A stamped SetTarget (a slow catch-up) and a SetTarget on the newest frame sent right after it:
    the newer one's track is the one tracked, every time; the slow one is either overtaken or was done
    before the newer one came. Rounds go on until the race (overtaken) was seen twice."""
    client = robot.client
    overtaken = 0
    for _ in range(ROUNDS):
        slow = stamped_request(client)
        newer = client.set_target(100, 80, 60, 60)
        assert newer.accepted, newer.reason
        answer = client.answer(slow, 30.0)
        if not answer.accepted:
            assert 'overtaken' in answer.reason, answer.reason
            overtaken += 1
        client.detection.wait_for(lambda m, n=newer: m.id == n.track_id)
        since = time.monotonic()
        client.status.wait_for_count(10, since=since)
        ids = {msg.id for msg in client.detection.messages(since)}
        assert ids == {newer.track_id}, (ids, answer)
        if overtaken == 2:
            break
    assert overtaken == 2, f'a newer SetTarget overtook a stamped one in only {overtaken} of {ROUNDS} rounds'


def test_catch_up_is_bounded_and_the_reply_says_it_was_cut_short(robot, camera_30hz):
    """item 9: catch_up_timeout ends a long catch-up; the target is still set."""
    client = robot.client
    (result,) = client.set_parameters('tracker', catch_up_timeout=0.1)
    assert result.successful
    answer = client.answer(client.set_target_async(20.0, 80.0, 80.0, 80.0, stamp_ns=buffered_stamp(client, 2.5)),
                           30.0)
    assert answer.accepted and 'cut short after 0.1 s (catch_up_timeout)' in answer.reason, answer.reason
    client.detection.wait_for(lambda m: m.id == answer.track_id)


# ------------------------------------------------------------------------------------ item 3: huge boxes

def test_huge_boxes_are_clamped_and_memory_stays_bounded(robot):
    client = robot.client
    before = client.next_diagnostics().frames_received
    camera = start_camera(640, 480, 15.0, 15.0, 'reliable')
    try:
        client.wait_until(lambda: client.next_diagnostics().frames_received > before + 2, 30.0, '640x480 frames')
        first = client.set_target(10, 10, 40, 40)
        assert first.accepted
        client.detection.wait_for(lambda m: m.id == first.track_id)
        pid = robot.process.pid
        baseline = rss_mb(pid)
        reset_peak_rss(pid)
        for box in ((10, 10, 3000, 3000), (10, 10, 6000, 6000), (0, 0, 1e10, 1e10), (5, 5, 1e300, 1e300)):
            reply = client.set_target(*box)
            assert reply.accepted and 'box clamped to the 640x480 image' in reply.reason, reply.reason
            detection = client.detection.wait_for(lambda m, r=reply: m.id == r.track_id, since=0.0)
            assert detection.bbox.size_x <= 640 and detection.bbox.size_y <= 480
        client.publish_target(-2680.0, -2760.0, 6000.0, 6000.0)
        client.wait_until(lambda: 'from ~/target: box (-2680.0, -2760.0, 6000.0, 6000.0)' in (log := robot.log())
                          and 'box clamped to the 640x480 image: (0.0, 0.0, 640.0, 480.0)' in log,
                          what='the clamped ~/target box')
        growth = peak_rss_mb(pid) - baseline
        print(f'\nhuge boxes on 640x480: peak memory {growth:+.0f} MB over the {baseline:.0f} MB before '
              '(issue: 6000x6000 took +830 MB)')
        assert growth < 150.0
        assert 'OverflowError' not in robot.log()
    finally:
        camera.kill()
        camera.wait()


# ------------------------------------------------------------------------------------ items 5, 6, 8, 10

def test_parameters_are_checked_when_set(robot):
    client = robot.client
    (refused,) = client.set_parameters('manager', precision='fp64')
    assert not refused.successful and 'precision must be one of' in refused.reason
    (refused,) = client.set_parameters('manager', device='gpu7')
    assert not refused.successful and 'device' in refused.reason
    (refused,) = client.set_parameters('tracker', label='x' * 100_000)
    assert not refused.successful and 'at most 256 characters' in refused.reason
    (accepted,) = client.set_parameters('tracker', label='a' * 256)
    assert accepted.successful
    assert client.get_parameters('tracker', ['label']) == {'label': 'a' * 256}
    assert client.get_parameters('manager', ['precision', 'device']) == {'precision': 'fp32', 'device': 'cpu'}


@pytest.fixture()
def own_bringup(ros, checkpoint, tmp_path, request) -> Bringup:
    """A bringup of the test's own (namespace = the test's name), active: for tests that leave it changed."""
    with running_bringup(tmp_path, '-p', 'image_topic:=/own_cam/image', '-p', f'checkpoint:={checkpoint}',
                         namespace=request.node.name[:40], client_name=f'{request.node.name[:40]}_client') as bringup:
        client = bringup.client
        client.wait_until(lambda: client.manager_state() == 'active', 60.0, 'autostart', bringup.check_alive)
        yield bringup


def test_nan_checkpoint_and_hostile_config_are_refused_at_configure(own_bringup, checkpoint):
    import torch
    from lifecycle_msgs.msg import Transition

    client = own_bringup.client
    nan = write_light_checkpoint(own_bringup.directory / 'nan.pth', fill=float('nan'))
    stored = torch.load(checkpoint, weights_only=False)
    stored['config']['search_size'] = 4096
    hostile = own_bringup.directory / 'hostile.pth'
    torch.save(stored, hostile)
    assert client.change_state(Transition.TRANSITION_DEACTIVATE)
    assert client.change_state(Transition.TRANSITION_CLEANUP)
    for path, cause in ((nan, 'warm-up output is not finite'), (hostile, 'search_size must be an integer')):
        (result,) = client.set_parameters('manager', checkpoint=str(path))
        assert result.successful
        start = time.monotonic()
        assert not client.change_state(Transition.TRANSITION_CONFIGURE)
        assert time.monotonic() - start < 20.0
        assert client.manager_state() == 'unconfigured'
        log = own_bringup.log()
        assert cause in log and 'configure failed' in log
    assert 'error while in' not in own_bringup.log()
    (result,) = client.set_parameters('manager', checkpoint=str(checkpoint))
    assert result.successful
    assert client.change_state(Transition.TRANSITION_CONFIGURE)
    assert client.change_state(Transition.TRANSITION_ACTIVATE)


def test_after_shutdown_the_tracker_says_finalized(own_bringup):
    from lifecycle_msgs.msg import Transition

    client = own_bringup.client
    assert client.change_state(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert client.manager_state() == 'finalized'
    reply = client.set_target(10, 10, 40, 40)
    assert not reply.accepted and 'finalized' in reply.reason, reply.reason
    assert 'not configured' not in reply.reason
