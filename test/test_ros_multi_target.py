"""Several targets in one transt_tracker, over real DDS on loopback.

The node runs in this process (so the test can count the calls of its model's ``track``: one
batched forward per frame whatever the number of tracks) on a ModelHandle loaded with the light
test checkpoint (constant heads: score 0.8, every square box kept, so positions are exact); the
client (:class:`~transt_ros.ros.client.TrackerClient`) is a separate node that talks to it only
through topics and services. Every test gets a node of its own, receiving a camera at 8 Hz.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from transt_ros.ros.targeting import LOST, TRACKING

from .ros_helpers import SCORE, ImageFeed, in_process_tracker, ros_context, write_light_checkpoint

pytestmark = pytest.mark.ros

TOPIC = '/multi_cam/image'
WIDTH, HEIGHT = 320, 240
BOXES = [(20.0, 30.0, 40.0, 40.0), (120.0, 40.0, 50.0, 50.0), (220.0, 150.0, 40.0, 40.0), (60.0, 150.0, 48.0, 48.0)]


def center_of(box):
    x, y, width, height = box
    return x + width / 2, y + height / 2


def detection_centres(array) -> dict[str, tuple[float, float]]:
    return {d.id: (d.bbox.center.position.x, d.bbox.center.position.y) for d in array.detections}


@dataclass
class MultiNode:
    client: object  # TrackerClient
    feed: ImageFeed
    calls: list[int]  # the batch size of every call of the model's track()

    def idle(self) -> None:
        """Stop the camera and wait until the node processed the last frame (then it calls nothing)."""
        self.feed.stop()
        self.client.status.wait_for_stamp(self.feed.newest_stamp())

    def forwards_of_frames(self, count: int) -> list[int]:
        """Publish ``count`` frames one at a time, each waited for; -> the model calls they made."""
        self.idle()
        before = len(self.calls)
        for _ in range(count):
            self.client.status.wait_for_stamp(self.feed.publish_next())
        return self.calls[before:]


@pytest.fixture()
def multi(tmp_path):
    """An in-process transt_tracker with max_targets 4 and a counted model, receiving a camera at 8 Hz."""
    from transt_ros.checkpoint import load_model
    from transt_ros.ros.model_handle import ModelHandle
    from transt_ros.tracking import prepare_model

    model = prepare_model(load_model(write_light_checkpoint(tmp_path / 'light.pth')))
    calls = []
    original = model.track

    def counted_track(template, search):
        calls.append(search.shape[0])
        return original(template, search)

    model.track = counted_track
    rgb = np.random.default_rng(1).integers(40, 120, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    with ros_context():
        handle = ModelHandle()
        handle.load(model, 'cpu', 'fp32')
        handle.set_active(True)
        with in_process_tracker(handle, TOPIC, rgb, 'multi_target_client', 8.0, 3, frame_id='multi_camera',
                                max_targets=4, lost_frames=2, diagnostics_period=0.3) as (client, feed):
            yield MultiNode(client, feed, calls)


def start_four_tracks(client) -> tuple[list[str], str, object]:
    """Three tracks by ~/set_target (BOXES[:3]) and one by ~/target (BOXES[3]);
    -> (the service's track ids, the topic's track id, the first array with the four)."""
    ids = []
    for box in BOXES[:3]:
        reply = client.set_target(*box)
        assert reply.accepted and reply.reason == '', reply.reason
        ids.append(reply.track_id)
    assert len(set(ids)) == 3
    client.publish_target(*BOXES[3])
    array = client.detections.wait_for(lambda m: len(m.detections) == 4, what='4 detections')
    topic_ids = set(detection_centres(array)) - set(ids)
    assert len(topic_ids) == 1, detection_centres(array)
    return ids, topic_ids.pop(), array


def test_tracks_by_service_and_topic_are_published_together(multi):
    from transt_ros.ros.client import stamp_of

    client = multi.client
    ids, topic_id, array = start_four_tracks(client)
    centres = detection_centres(array)
    for track_id, box in zip(ids + [topic_id], BOXES):
        assert centres[track_id] == pytest.approx(center_of(box), abs=0.01)
    assert all(d.results[0].hypothesis.score == pytest.approx(SCORE, abs=1e-4) for d in array.detections)
    assert all(d.header == array.header for d in array.detections)
    # a new track's entry says score 1.0 until its first frame (a status of the diagnostics tick may come first)
    status = client.status.wait_for(lambda m: len(m.tracks) == 4 and all(t.frame_count >= 1 for t in m.tracks),
                                    since=0.0)
    assert status.state == TRACKING and [t.track_id for t in status.tracks] == ids + [topic_id]
    assert all(t.state == TRACKING and t.score == pytest.approx(SCORE, abs=1e-4) for t in status.tracks)
    # ~/detection: one message per track and frame, with the array's header
    stamp, expected = stamp_of(array), sorted(ids + [topic_id])
    client.wait_until(lambda: set(d.id for d in client.detection.with_stamp(stamp)) >= set(expected),
                      what="the frame's ~/detection messages")
    client.status.wait_for(lambda m: stamp_of(m) > stamp, since=0.0, what='a later frame')
    singles = client.detection.with_stamp(stamp)
    assert sorted(d.id for d in singles) == expected
    assert all(d.header == array.header for d in singles)


def test_set_target_is_refused_at_max_targets_and_for_an_unknown_id(multi):
    client = multi.client
    ids, topic_id, _ = start_four_tracks(client)
    reply = client.set_target(150.0, 100.0, 30.0, 30.0)
    assert not reply.accepted and 'max_targets 4' in reply.reason and reply.track_id == ''
    reply = client.set_target(150.0, 100.0, 30.0, 30.0, track_id='nope')
    assert not reply.accepted and "no live track 'nope'" in reply.reason
    # nothing changed: the next frame still has the four tracks on their boxes
    centres = detection_centres(client.detections.wait_for(what='the next frame'))
    assert centres == {track_id: pytest.approx(center_of(box), abs=0.01)
                       for track_id, box in zip(ids + [topic_id], BOXES)}


def test_one_batched_forward_per_frame_whatever_the_number_of_tracks(multi):
    client = multi.client
    ids, topic_id, _ = start_four_tracks(client)
    assert multi.forwards_of_frames(4) == [4, 4, 4, 4]
    for track_id in ids[1:] + [topic_id]:
        assert client.clear_track(track_id).success
    assert multi.forwards_of_frames(2) == [1, 1]


def test_clear_track_by_id_keeps_the_others_and_reinitialises_by_id(multi):
    client = multi.client
    ids, topic_id, _ = start_four_tracks(client)
    reply = client.clear_track(ids[1])
    assert reply.success and reply.reason == ''
    cleared_at = time.monotonic()
    array = client.detections.wait_for(lambda m: len(m.detections) == 3, since=cleared_at, what='3 detections')
    centres = detection_centres(array)
    assert set(centres) == {ids[0], ids[2], topic_id}
    for track_id, box in ((ids[0], BOXES[0]), (ids[2], BOXES[2]), (topic_id, BOXES[3])):
        assert centres[track_id] == pytest.approx(center_of(box), abs=0.01)
    reply = client.clear_track(ids[1])
    assert not reply.success and f"no live track '{ids[1]}'" in reply.reason
    # re-initialise a track by id: new box, same id
    moved = (200.0, 40.0, 44.0, 44.0)
    reply = client.set_target(*moved, track_id=ids[2])
    assert reply.accepted and reply.track_id == ids[2]
    array = client.detections.wait_for(lambda m: detection_centres(m).get(ids[2]) == pytest.approx(
        center_of(moved), abs=0.01), what='the re-initialised track')
    assert set(detection_centres(array)) == {ids[0], ids[2], topic_id}
    # a fourth track fits again
    reply = client.set_target(*BOXES[1])
    assert reply.accepted and reply.track_id not in ids + [topic_id]


def test_lost_per_track_and_lost_tracks_dropped_after_a_timeout(multi):
    """Every score (0.8) is low -> all LOST; one re-initialised track is TRACKING (lost_frames very large)
    while the others stay LOST; then the LOST ones are dropped after lost_track_timeout."""
    client = multi.client
    ids, _, _ = start_four_tracks(client)
    assert all(r.successful for r in client.set_parameters('tracker', recover_threshold=0.95, lost_threshold=0.9))
    status = client.status.wait_for(lambda m: len(m.tracks) == 4 and all(t.state == LOST for t in m.tracks),
                                    what='all tracks LOST')
    assert status.state == LOST
    assert all(r.successful for r in client.set_parameters('tracker', lost_frames=10000))
    reply = client.set_target(*BOXES[0], track_id=ids[0])
    assert reply.accepted and reply.track_id == ids[0]
    status = client.status.wait_for(lambda m: any(t.track_id == ids[0] and t.state == TRACKING for t in m.tracks),
                                    what='the re-initialised track TRACKING')
    states = {t.track_id: t.state for t in status.tracks}
    assert status.state == TRACKING and sorted(states.values()).count(LOST) == 3
    assert all(t.lost_s > 0 for t in status.tracks if t.state == LOST)
    assert all(r.successful for r in client.set_parameters('tracker', lost_track_timeout=0.5))
    status = client.status.wait_for(lambda m: [t.track_id for t in m.tracks] == [ids[0]],
                                    what='the LOST tracks dropped')
    assert status.tracks[0].state == TRACKING


def test_targets_topic_and_a_click_start_tracks(multi):
    from geometry_msgs.msg import Point

    client = multi.client
    client.publish_targets(BOXES[:2])
    array = client.detections.wait_for(lambda m: len(m.detections) == 2, what='2 tracks from ~/targets')
    for got, box in zip(sorted(detection_centres(array).values()), sorted(BOXES[:2])):
        assert got == pytest.approx(center_of(box), abs=0.01)
    clicks = client.node.create_publisher(Point, TOPIC + '_mouse_left', 10)
    client.wait_for_subscriber(clicks)
    clicks.publish(Point(x=250.0, y=60.0))
    array = client.detections.wait_for(lambda m: len(m.detections) == 3, what='3 tracks after a click')
    assert (250.0, 60.0) in [pytest.approx(c, abs=0.01) for c in detection_centres(array).values()]
    reply = client.clear_target()
    assert reply.success and reply.message.startswith('tracks ')
