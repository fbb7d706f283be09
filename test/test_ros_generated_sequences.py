"""Generated sequences over real DDS (hypothesis, stateful in spirit: one program per example): start
order (camera publisher before or after the bringup; 320x240, 640x480, 1280x720; reliable or best
effort), SetTarget (new, by id), ``clear_target``, ``clear_track``, ``~/target``, clicks, lifecycle
deactivate / activate and cleanup / configure, and a checkpoint change between configures.

After every step one frame is published and the published ``~/detections`` must equal what fresh
single trackers give for the targets that should be live (none after a clear). The camera runs in lock
step (the next frame after the tracker published about the last one), so which frames each target saw
is known exactly. The checkpoints keep random heads, so a wrong template gives other boxes.
Shrunk failures become named tests in test_ros_robot_orders.py.
"""
from __future__ import annotations

import itertools
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .robot_orders_helpers import (
    ReferenceTracks,
    assert_same_boxes,
    detected_boxes,
    lockstep_feed,
    publish_until_processed,
    random_checkpoint,
)
from .ros_helpers import ImageFeed, ros_context, running_bringup

pytestmark = pytest.mark.ros

TOPIC = '/sequence_cam/image'
BOXES = ((100, 80, 60, 60), (20, 30, 50, 40), (150, 120, 70, 50), (-20, 10, 60, 60))
CLICKS = ((120, 100), (40, 50), (300, 200))
CLICK_BOX = 48
ACTIONS = st.one_of(
    st.tuples(st.just('set'), st.sampled_from(BOXES)),
    st.tuples(st.just('reinit'), st.sampled_from(BOXES)),
    st.tuples(st.just('clear_target')),
    st.tuples(st.just('clear_track')),
    st.tuples(st.just('topic_target'), st.sampled_from(BOXES)),
    st.tuples(st.just('click'), st.sampled_from(CLICKS)),
    st.tuples(st.just('pause')),
    st.tuples(st.just('reconfigure'), st.booleans()),
)
CAMERAS = st.sampled_from([(320, 240, 'reliable'), (640, 480, 'reliable'), (1280, 720, 'reliable'),
                           (320, 240, 'best_effort')])


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('sequences')
    return [random_checkpoint(folder / 'a.pth', d_model=64, seed=11),
            random_checkpoint(folder / 'b.pth', d_model=32, seed=12)]


class Sequence:
    """One generated program against one bringup, with the expected live targets."""

    def __init__(self, bringup, camera: ImageFeed, checkpoints, max_targets: int):
        self.bringup, self.client, self.camera = bringup, bringup.client, camera
        self.checkpoints, self.checkpoint = checkpoints, 0
        self.max_targets = max_targets
        self.reference = ReferenceTracks(checkpoints[0])
        self.last_stamp = 0
        self.step_count = 0

    @property
    def live(self) -> list[str]:
        return list(self.reference.tracks)

    def newest_rgb(self):
        return self.camera.published[self.last_stamp]

    def frame(self) -> None:
        """Publish one frame; the tracker's boxes must equal the fresh trackers'."""
        stamp = self.camera.publish_next()
        array = self.client.detections.wait_for_stamp(stamp, timeout_s=30.0, check=self.bringup.check_alive)
        self.last_stamp = stamp
        self.step_count += 1
        assert_same_boxes(detected_boxes(array), self.reference.step(self.camera.published[stamp]),
                          f'step {self.step_count}')

    def expect_new(self, track_id: str, box) -> None:
        if self.max_targets == 1:
            self.reference.tracks.clear()
        self.reference.set(track_id, self.newest_rgb(), box)

    def set(self, box) -> None:
        reply = self.client.set_target(*box)
        if len(self.live) >= self.max_targets > 1:
            assert not reply.accepted and 'tracks exist' in reply.reason, reply
            return
        assert reply.accepted, reply.reason
        self.expect_new(reply.track_id, box)

    def reinit(self, box) -> None:
        if not self.live:
            return self.set(box)
        track_id = self.live[0]
        reply = self.client.set_target(*box, track_id=track_id)
        assert reply.accepted and reply.track_id == track_id, reply
        self.reference.set(track_id, self.newest_rgb(), box)

    def clear_target(self) -> None:
        assert self.client.clear_target().success
        self.reference.tracks.clear()

    def clear_track(self) -> None:
        if not self.live:
            assert not self.client.clear_track('1').success
            return
        track_id = self.live[0]
        assert self.client.clear_track(track_id).success
        del self.reference.tracks[track_id]

    def _applied_topic_target(self, publish, box) -> None:
        """A target sent on a topic (no answer): wait until ~/status shows the new track."""
        if len(self.live) >= self.max_targets > 1:
            return  # refused (logged): nothing changes
        before = set(self.live)
        since = time.monotonic()
        publish()
        status = self.client.status.wait_for(
            lambda msg: any(track.track_id not in before for track in msg.tracks), since=since, timeout_s=30.0,
            check=self.bringup.check_alive)
        new_id = next(track.track_id for track in status.tracks if track.track_id not in before)
        self.expect_new(new_id, box)

    def topic_target(self, box) -> None:
        self._applied_topic_target(lambda: self.client.publish_target(*box), box)

    def click(self, point) -> None:
        from geometry_msgs.msg import Point

        from transt_ros.ros.targeting import centred_box

        publisher = self.click_publisher()
        u, v = point
        height, width = self.newest_rgb().shape[:2]
        if not (0 <= u < width and 0 <= v < height):
            return
        self._applied_topic_target(lambda: publisher.publish(Point(x=float(u), y=float(v))),
                                   centred_box(u, v, CLICK_BOX))

    def click_publisher(self):
        if not hasattr(self, '_click_publisher'):
            from geometry_msgs.msg import Point
            self._click_publisher = self.client.node.create_publisher(Point, TOPIC + '_mouse_left', 10)
            self.client.wait_for_subscriber(self._click_publisher, check=self.bringup.check_alive)
        return self._click_publisher

    def pause(self) -> None:
        """Deactivate and activate: the tracks stay, and go on from where they were."""
        self.bringup.transition('deactivate')
        assert not self.client.set_target(*BOXES[0]).accepted  # refused while inactive
        self.bringup.transition('activate')

    def reconfigure(self, swap: bool) -> None:
        """Deactivate, cleanup, (another checkpoint), configure, activate: every track is cleared."""
        self.bringup.transition('deactivate')
        self.bringup.transition('cleanup')
        if swap:
            self.checkpoint = 1 - self.checkpoint
            checkpoint = str(self.checkpoints[self.checkpoint])
            assert self.client.set_parameters('manager', checkpoint=checkpoint)[0].successful
        self.bringup.transition('configure')
        self.bringup.transition('activate')
        self.reference.use(self.checkpoints[self.checkpoint])

    def run(self, action) -> None:
        name, *arguments = action
        getattr(self, name)(*arguments)
        self.frame()


EXAMPLE_NUMBERS = itertools.count()


@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(camera_first=st.booleans(), camera=CAMERAS, max_targets=st.sampled_from([1, 2]),
       actions=st.lists(ACTIONS, min_size=3, max_size=9))
def test_generated_sequences_publish_what_fresh_trackers_give(checkpoints, tmp_path, camera_first, camera,
                                                              max_targets, actions):
    from transt_ros.ros.client import TrackerClient

    width, height, reliability = camera
    print(f'\nexample: camera {width}x{height} {reliability}, {"before" if camera_first else "after"} the node, '
          f'max_targets {max_targets}: {[action[0] for action in actions]}')
    directory = tmp_path / f'bringup_{next(EXAMPLE_NUMBERS)}'
    values = (f'checkpoint:={checkpoints[0]}', f'image_topic:={TOPIC}', f'max_targets:={max_targets}',
              'double_click_timeout:=0.0', f'click_box_size:={CLICK_BOX}', 'diagnostics_period:=0.2')
    ros_args = [item for value in values for item in ('-p', value)]
    with ros_context(), TrackerClient('sequence_probe', depth=1000) as client:
        feed = lockstep_feed(client, TOPIC, width, height, reliability) if camera_first else None
        if camera_first:
            feed.publish_next()  # the camera is up (and publishing) before the tracker
        with running_bringup(directory, *ros_args, client=client) as bringup:
            client.wait_for_services(check=bringup.check_alive)
            feed = feed or lockstep_feed(client, TOPIC, width, height, reliability)
            sequence = Sequence(bringup, feed, checkpoints, max_targets)
            sequence.last_stamp = publish_until_processed(feed, check=bringup.check_alive)
            for action in actions:
                sequence.run(action)
            log = bringup.log()  # the node's own failures (not rmw warnings of a loaded machine)
            assert not re.search(r'\] (frame \S+|target from .*) failed', log), log[-3000:]
