"""transt_ros.tracking.track_registry without ROS: ids, one batched forward per frame, templates stacked
once per change, per-track LOST hysteresis, drop-after-lost, non-finite answers, the fair model lock."""
from __future__ import annotations

import gc
import math
import threading
import time
import weakref

import numpy as np
import pytest
import torch

from transt_ros.common.fifo_lock import FifoLock
from transt_ros.model import TemplateFeatures, TransTConfig, build_transt
from transt_ros.tracking import Tracker
from transt_ros.tracking.track_registry import (
    LOST,
    TRACKING,
    Hysteresis,
    Track,
    TrackRegistry,
    next_state,
    track_one,
)
from transt_ros.tracking.tracker import TargetState

LIGHT = dict(backbone='resnet18', d_model=32, nhead=2, num_fusion_layers=1, dim_feedforward=64,
             template_size=64, search_size=128)


@pytest.fixture(scope='module')
def engine():
    torch.manual_seed(0)
    return Tracker(build_transt(TransTConfig(**LIGHT)))


@pytest.fixture()
def counted(engine):
    """The engine with its model's ``track`` counted (calls, batch size of each)."""
    batches = []
    original = engine.model.track

    def track(template, search):
        batches.append(search.shape[0])
        return original(template, search)

    engine.model.track = track
    yield engine, batches
    del engine.model.track


def frame(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (160, 200, 3), dtype=np.uint8)


def add(registry, engine, box, seq=0):
    target = engine.new_target(frame(), box)
    track = Track(registry.new_id(), target, 1, seq, box, 1.0)
    registry.put(track)
    return track


def test_ids_order_and_room(engine):
    registry = TrackRegistry(max_targets=3)
    ids = [add(registry, engine, (20 + 30 * i, 40, 30, 30)).track_id for i in range(3)]
    assert ids == ['1', '2', '3'] and registry.full and registry.latest().track_id == '3'
    with pytest.raises(ValueError, match='max_targets 3'):
        add(registry, engine, (10, 10, 20, 20))
    registry.remove('2')
    assert [t.track_id for t in registry.tracks()] == ['1', '3'] and not registry.full
    assert add(registry, engine, (10, 10, 20, 20)).track_id == '5'  # ids are never reused ('4' was refused)
    with pytest.raises(ValueError, match='1..64'):
        TrackRegistry(max_targets=65)


def test_one_forward_per_frame_and_one_stack_per_change(counted):
    engine, batches = counted
    registry = TrackRegistry(max_targets=8)
    for i in range(4):
        add(registry, engine, (10 + 40 * i, 50, 30, 30))
    for seq in range(1, 4):
        steps = registry.step(engine, frame(seq), seq, time.monotonic(), Hysteresis())
        assert len(steps) == 4 and all(step.finite for step in steps)
    assert batches == [4, 4, 4] and registry.stack_count == 1
    registry.remove('2')
    registry.step(engine, frame(4), 4, time.monotonic(), Hysteresis())
    registry.step(engine, frame(5), 5, time.monotonic(), Hysteresis())
    assert batches[-2:] == [3, 3] and registry.stack_count == 2
    # a track that caught up past a frame skips it; the others are still stepped together
    late = add(registry, engine, (150, 100, 30, 30), seq=7)
    registry.step(engine, frame(6), 6, time.monotonic(), Hysteresis())
    assert batches[-1] == 3 and late.frame_count == 0
    registry.step(engine, frame(8), 8, time.monotonic(), Hysteresis())
    assert batches[-1] == 4 and late.frame_count == 1
    assert [t.frame_count for t in registry.tracks()] == [7, 7, 7, 1]


def test_batched_step_equals_single_steps(engine):
    registry = TrackRegistry(max_targets=4)
    boxes = [(20, 30, 40, 40), (100, 60, 30, 50)]
    singles = [engine.new_target(frame(), box) for box in boxes]
    for box in boxes:
        add(registry, engine, box)
    for seq in (1, 2):
        steps = registry.step(engine, frame(seq), seq, 0.0, Hysteresis())
        for step, single in zip(steps, singles):
            box, score, finite = track_one(engine, single, frame(seq))
            assert finite and np.allclose(step.track.box, box, atol=1e-3) and math.isclose(
                step.track.score, score, abs_tol=1e-5)


def test_lost_per_track_and_drop_after_lost(engine):
    registry = TrackRegistry(max_targets=4)
    first, second = add(registry, engine, (20, 30, 40, 40)), add(registry, engine, (100, 60, 30, 50))
    first.low_count = 1  # one low frame already: reaches lost_frames=2 one frame earlier
    strict = Hysteresis(lost_threshold=1.0, recover_threshold=1.0, lost_frames=2)  # every score is low
    registry.step(engine, frame(1), 1, 10.0, strict)
    assert (first.state, second.state) == (LOST, TRACKING) and first.lost_since == 10.0
    registry.step(engine, frame(2), 2, 11.0, strict)
    assert (first.state, second.state) == (LOST, LOST) and first.lost_for(12.0) == 2.0
    assert registry.drop_lost(12.0, 0.0) == []  # 0: never
    assert [t.track_id for t in registry.drop_lost(12.5, 2.5)] == ['1']
    assert [t.track_id for t in registry.tracks()] == ['2']
    lenient = Hysteresis(lost_threshold=0.0, recover_threshold=0.0, lost_frames=2)
    registry.step(engine, frame(3), 3, 13.0, lenient)
    assert second.state == TRACKING and second.lost_since is None


def test_non_finite_answer_is_lost_at_once_and_keeps_the_last_box(engine):
    registry = TrackRegistry(max_targets=2)
    track = add(registry, engine, (20, 30, 40, 40))
    center = track.target.center.copy()
    original = engine.model.track

    def broken(template, search):
        outputs = original(template, search)
        return {key: value * math.nan for key, value in outputs.items()}

    engine.model.track = broken
    try:
        (step,) = registry.step(engine, frame(1), 1, 5.0, Hysteresis())
    finally:
        del engine.model.track
    assert not step.finite and track.state == LOST and track.score == 0.0
    assert np.array_equal(track.target.center, center) and track.box == (20, 30, 40, 40)


def test_stacked_templates_not_reused_for_a_new_template_at_a_freed_address(engine):
    """Regression (issue 17): the stack cache was keyed by ``id()``s of templates it did not keep
    alive; after ``clear`` a new target's template allocated at the freed address of the old one
    was searched with the old template."""
    registry = TrackRegistry(max_targets=1)
    old_box, new_box = (20, 30, 40, 40), (120, 80, 40, 50)
    add(registry, engine, old_box)
    registry.step(engine, frame(1), 1, 0.0, Hysteresis())  # stacks (and caches) the old template
    new = engine.new_target(frame(), new_box)
    parts = (new.template.tokens, new.template.pos, new.template.attended)
    old_address = id(registry.tracks()[0].target.template)
    registry.clear()  # the old track, its target and its template are freed here
    # New templates until one lands on the freed address (CPython reuses it at once or within a
    # few allocations of the same size); keep them all alive so each gets its own address.
    candidates = [TemplateFeatures(*parts) for _ in range(1000)]
    reused = next((template for template in candidates if id(template) == old_address), None)
    assert reused is not None, 'the freed address was not reused: the construction no longer provokes the bug'
    del candidates
    target = TargetState(new.center.copy(), new.size.copy(), new.pad_value, reused)
    registry.put(Track(registry.new_id(), target, 1, 1, new_box, 1.0))
    (step,) = registry.step(engine, frame(2), 2, 0.0, Hysteresis())
    fresh = Tracker(engine.model, prepared=True)
    fresh.initialize(frame(), new_box)
    expected = fresh.track(frame(2))
    assert np.allclose(step.track.box, expected.box, atol=1e-4) and math.isclose(
        step.track.score, expected.score, abs_tol=1e-6)


def test_stacked_templates_follow_300_clear_and_new_target_cycles(engine):
    """Regression (issue 17), the node's sequence: clear, set a new target, step. With the id()-keyed
    cache about one cycle in four (after the first ~70) returned the previous target's stack here."""
    registry = TrackRegistry(max_targets=1)
    image = frame()
    for cycle in range(300):
        registry.clear()
        box = (10 + cycle % 100, 20 + cycle % 80, 30, 30)
        registry.put(Track(registry.new_id(), engine.new_target(image, box), 1, 0, box, 1.0))
        (track,) = registry.tracks()
        stacked = registry.stacked_templates([track])
        assert torch.equal(stacked.tokens, track.target.template.tokens), f'cycle {cycle}: stale stack'
        del track, stacked  # the registry alone holds the track: clear() frees its template


def test_stack_cache_releases_the_templates_of_tracks_that_go(engine):
    """The cache holds its key templates (so none can be freed and its address reused while cached),
    and lets them go with their tracks: remove, clear, drop_lost and a re-initialising put."""
    strict = Hysteresis(lost_threshold=1.0, recover_threshold=1.0, lost_frames=1)

    def cached_registry():
        registry = TrackRegistry(max_targets=4)
        for box in [(20, 30, 40, 40), (100, 60, 30, 50)]:
            add(registry, engine, box)
        registry.step(engine, frame(1), 1, 10.0, strict)  # stacked and cached; both LOST since 10 s
        return registry, [weakref.ref(track.target.template) for track in registry.tracks()]

    def released(refs):
        gc.collect()
        return [ref() is None for ref in refs]

    registry, refs = cached_registry()
    registry.remove('1')
    assert released(refs) == [True, False]
    registry, refs = cached_registry()
    registry.clear()
    assert released(refs) == [True, True]
    registry, refs = cached_registry()
    registry.drop_lost(11.0, 1.0)
    assert released(refs) == [True, True]
    registry, refs = cached_registry()
    registry.put(Track('2', engine.new_target(frame(), (60, 60, 30, 30)), 2, 1, (60, 60, 30, 30), 1.0))
    assert released(refs) == [False, True]


def test_next_state():
    assert next_state(TRACKING, 0.1, 0, 0.3, 0.5, 2) == (TRACKING, 1)
    assert next_state(TRACKING, 0.1, 1, 0.3, 0.5, 2) == (LOST, 2)
    assert next_state(LOST, 0.4, 2, 0.3, 0.5, 2) == (LOST, 0)
    assert next_state(LOST, 0.5, 0, 0.3, 0.5, 2) == (TRACKING, 0)


def test_fifo_lock_serves_in_order():
    lock, order = FifoLock(), []
    with lock:
        threads = []
        for index in range(4):
            thread = threading.Thread(target=lambda i=index: (lock.__enter__(), order.append(i), lock.__exit__()))
            thread.start()
            threads.append(thread)
            time.sleep(0.05)  # each asks after the previous one
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2, 3]
