"""The tracker node's parts without ROS: the request order (send time, not arrival), the frame buffer,
the track engine (paused LOST clocks, model changes, catch-up checks), the processing figures and the
typed settings. They must import no rclpy (checked in a fresh interpreter)."""
from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from transt_ros.model import TransTConfig, build_transt
from transt_ros.ros.frame_buffer import FrameBuffer
from transt_ros.ros.model_handle import ModelHandle
from transt_ros.ros.processing_stats import FrameTimings, ProcessingStats
from transt_ros.ros.request_order import RequestOrder
from transt_ros.ros.track_engine import ModelChanged, TrackEngine
from transt_ros.ros.tracker_settings import TrackerSettings
from transt_ros.tracking import prepare_model
from transt_ros.tracking.track_registry import LOST, Track

ROS_FREE_PARTS = ('frame_buffer', 'request_order', 'track_engine', 'processing_stats', 'tracker_settings',
                  'model_handle')
LIGHT = dict(backbone='resnet18', d_model=32, nhead=2, num_fusion_layers=1, dim_feedforward=64,
             template_size=64, search_size=128)


def test_the_parts_import_no_rclpy():
    imports = '; '.join(f'import transt_ros.ros.{name}' for name in ROS_FREE_PARTS)
    code = f"import sys; {imports}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'rclpy'))"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          check=True).stdout.strip() == '[]'


# ------------------------------------------------------------------------ request order

def test_tickets_order_by_send_time_not_by_arrival():
    order = RequestOrder()
    later = order.take(2_000, 'set B')      # arrives first, sent second
    earlier = order.take(1_000, 'clear')    # arrives second, sent first
    assert earlier < later


def test_a_request_sent_later_and_applied_first_overtakes_an_earlier_one():
    order = RequestOrder()
    earlier, later = order.take(1_000, 'set A'), order.take(2_000, 'set B')
    order.record_change(later, '1')
    assert order.overtaking(earlier, '', one_target=True) == later
    assert order.overtaking(later, '', one_target=True) is None
    # above one target a new track yields only to a clear_target; a re-initialisation to its own track's changes
    assert order.overtaking(earlier, '', one_target=False) is None
    assert order.overtaking(earlier, '1', one_target=False) == later
    assert order.overtaking(earlier, '2', one_target=False) is None


def test_a_clear_sent_before_an_applied_set_does_not_overtake_it():
    order = RequestOrder()
    clear, new = order.take(1_000, '~/clear_target'), order.take(2_000, 'set')
    order.record_change(new, '3')
    assert order.last_change_of('3') > clear  # clear_all keeps track 3
    order.record_clear_all(clear, [])
    assert order.overtaking(new, '3', one_target=False) is None


def test_a_clear_sent_after_an_in_flight_set_overtakes_it_and_counts_it():
    order = RequestOrder()
    set_ticket = order.take(1_000, 'set')
    clear = order.take(2_000, '~/clear_target')
    order.record_clear_all(clear, ['1'])
    order.done(clear)
    assert order.overtaking(set_ticket, '', one_target=False) == clear
    assert order.earlier_in_progress(clear) == 1
    order.done(set_ticket)
    assert order.earlier_in_progress(clear) == 0


def test_unknown_send_times_fall_back_to_arrival():
    order = RequestOrder()
    first, second = order.take(0, 'a'), order.take(0, 'b')
    assert first < second


# ------------------------------------------------------------------------ frame buffer

def test_the_frame_buffer_keeps_the_newest_and_counts_skipped_frames():
    frames = FrameBuffer(capacity=3)
    for index in range(5):
        frames.put(f'msg{index}', stamp_ns=index, received_ns=index, frame_id='cam')
    assert frames.counts().received == 5 and frames.counts().skipped == 4
    newest = frames.take_newest()
    assert newest.msg == 'msg4' and newest.seq == 5 and frames.take_newest() is None
    assert [frame.seq for frame in frames.frames()] == [3, 4, 5] and frames.camera_frame == 'cam'


def test_the_frame_buffer_is_safe_across_threads():
    frames = FrameBuffer(capacity=1000)

    def put_many():
        for index in range(500):
            frames.put(index, index, index, 'cam')
    threads = [threading.Thread(target=put_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert frames.counts().received == 2000
    assert sorted(frame.seq for frame in frames.frames()) == list(range(1001, 2001))


# ------------------------------------------------------------------------ processing stats

def test_processing_stats_report_means_per_period():
    stats = ProcessingStats()
    stats.record_frame(FrameTimings(wait=1.0, convert=2.0, track=10.0, publish=0.5, latency=None, receive=None))
    stats.record_frame(FrameTimings(wait=3.0, convert=2.0, track=20.0, publish=0.5, latency=40.0, receive=1.0))
    means = stats.take_period().means_ms()
    assert means == {'latency_ms': '40.00', 'receive_ms': '1.00', 'wait_ms': '2.00', 'convert_ms': '2.00',
                     'track_ms': '15.00', 'publish_ms': '0.50', 'reacquire_ms': 'n/a'}
    assert stats.take_period().means_ms()['track_ms'] == 'n/a' and stats.counts().processed == 2


# ------------------------------------------------------------------------ settings

def test_settings_change_as_one_value_and_check_the_thresholds():
    values = dict(label='target', lost_threshold=0.3, recover_threshold=0.5, lost_frames=5, window_influence=0.49,
                  reacquire=True, reacquire_max_tiles=9, click_box_size=64, double_click_timeout=1.0,
                  max_image_pixels=100, input_timeout=2.0,
                  catch_up_timeout=2.0, lost_track_timeout=0.0, depth_stamp_tolerance=0.02, depth_min_range=0.1,
                  depth_max_range=20.0, depth_min_valid_fraction=0.2, unrelated='ignored')
    settings = TrackerSettings.from_values(values)
    changed = settings.with_changes({'lost_threshold': 0.7, 'image_topic': 'not dynamic'})
    assert settings.lost_threshold == 0.3 and changed.lost_threshold == 0.7
    assert 'must not exceed' in changed.problem() and settings.problem() is None
    assert changed.hysteresis().lost_threshold == 0.7 and settings.input().max_image_pixels == 100
    assert settings.reacquire_params().max_tiles == 9
    assert settings.with_changes({'reacquire_max_tiles': 1}).reacquire_params().max_tiles == 1
    assert settings.with_changes({'reacquire': False}).reacquire_params() is None


# ------------------------------------------------------------------------ track engine

@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return prepare_model(build_transt(TransTConfig(**LIGHT)))


def loaded_handle(model) -> ModelHandle:
    handle = ModelHandle()
    handle.load(model, 'cpu', 'fp32')
    handle.set_active(True)
    return handle


def lost_track(engine: TrackEngine, handle: ModelHandle, lost_since: float) -> Track:
    tracker, generation = engine.tracker(0.49)
    target = tracker.new_target(np.zeros((96, 96, 3), np.uint8), (30, 30, 20, 20))
    track = Track('1', target, generation, 0, (30, 30, 20, 20), 0.1, state=LOST, lost_since=lost_since)
    engine.registry.put(track)
    return track


def test_time_inactive_does_not_count_as_lost_time(model, monkeypatch):
    handle = loaded_handle(model)
    engine = TrackEngine(handle, 1)
    handle.add_activity_listener(engine.on_activity_changed)
    clock = iter([100.0, 105.0])
    monkeypatch.setattr('transt_ros.ros.track_engine.time.monotonic', lambda: next(clock))
    track = lost_track(engine, handle, lost_since=99.5)
    handle.set_active(False)  # at 100.0, LOST for 0.5 s
    handle.set_active(True)   # at 105.0: 5 s paused
    assert track.lost_for(105.0) == pytest.approx(0.5)
    assert not engine.registry.drop_lost(105.0, 3.0)


def test_a_model_change_clears_the_tracks_and_the_tracker(model):
    handle = loaded_handle(model)
    engine = TrackEngine(handle, 2)
    handle.add_listener(engine.on_model_changed)
    first, generation = engine.tracker(0.49)
    lost_track(engine, handle, lost_since=1.0)
    handle.load(model, 'cpu', 'fp32')
    handle.set_active(True)
    assert not engine.tracks()
    second, new_generation = engine.tracker(0.49)
    assert second is not first and new_generation != generation
    with pytest.raises(ModelChanged, match='reloaded or released'):
        engine.check_model(generation)


def test_a_catch_up_check_names_deactivation(model):
    handle = loaded_handle(model)
    engine = TrackEngine(handle, 1)
    _, generation = engine.tracker(0.49)
    engine.check_model(generation)
    handle.set_active(False)
    with pytest.raises(ModelChanged, match='deactivated'):
        engine.check_model(generation)
