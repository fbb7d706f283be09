"""The track engine under generated sequences (hypothesis, stateful): a :class:`TrackRegistry` stepped
through a :class:`Tracker` engine by random sequences of add, re-initialise, remove, clear, step (low or
high scores, time passing) and drop-after-lost, against a reference model: one fresh single
:class:`Tracker` per live track, initialised with the same box on the same frame and stepped on the
same frames. After every rule each live track's box and score must equal its reference's (this is what
catches a track searched with another track's template), ids are never reused, the registry never
holds more than ``max_targets`` tracks and the LOST / drop-after-lost bookkeeping follows the model.

Engines: the host path and the device step (``device_step.py``) on the CPU; the host path with
re-acquisition (LOST tracks searched wider in one more forward; references: single re-acquiring
trackers under the same hysteresis, so a track's LOST search state, its tile turns and colours never
leak into another track or into a track set again after a clear; the random model's boxes grow to the
frame, so no wider candidate is ever taken here: test_reacquire covers that with the demo model); the
CUDA graph step where CUDA is present (marked ``cuda``, skipped with the reason elsewhere).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from transt_ros.model import TransTConfig, build_transt
from transt_ros.tracking import Tracker, prepare_model
from transt_ros.tracking.reacquire import ReacquireParams
from transt_ros.tracking.track_registry import LOST, TRACKING, Hysteresis, Track, TrackRegistry

LIGHT = dict(backbone='resnet18', d_model=32, nhead=2, num_fusion_layers=1, dim_feedforward=64,
             template_size=64, search_size=128)
HEIGHT, WIDTH = 120, 160
MAX_TARGETS = 4
TIMEOUT_S = 1.0
STRICT = Hysteresis(lost_threshold=1.0, recover_threshold=1.0, lost_frames=1)  # every score is low: LOST
LENIENT = Hysteresis(lost_threshold=0.0, recover_threshold=0.0, lost_frames=1)  # every score recovers

CPU_SETTINGS = settings(max_examples=30, stateful_step_count=20, deadline=None, derandomize=True, database=None,
                        suppress_health_check=[HealthCheck.too_slow], print_blob=False)


def generated_frames(count: int = 4) -> list[np.ndarray]:
    """Random textures (fixed seed) with a red square moving right and down."""
    rng = np.random.default_rng(17)
    frames = []
    for index in range(count):
        frame = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        frame[30 + 6 * index:60 + 6 * index, 40 + 12 * index:70 + 12 * index] = (230, 30, 30)
        frames.append(frame)
    return frames


FRAMES = generated_frames()


@functools.cache
def prepared_model(device: str):
    torch.manual_seed(0)
    return prepare_model(build_transt(TransTConfig(**LIGHT)), device)


boxes = st.tuples(st.integers(0, WIDTH - 20), st.integers(0, HEIGHT - 20), st.integers(10, 60),
                  st.integers(10, 60)).map(lambda box: tuple(float(v) for v in box))
frame_indices = st.integers(0, len(FRAMES) - 1)
frame_steps = st.tuples(frame_indices, st.booleans(), st.sampled_from([0.0, 0.4, 1.0]))
"""One frame: which frame, low scores (every track LOST) or not (every track recovers), seconds elapsed."""
then_step = st.none() | frame_steps
"""A frame right after a change of the tracks, or none (changes then meet the next frame more often)."""


@dataclass
class Expected:
    """The reference model of one live track."""

    tracker: Tracker
    box: tuple
    score: float
    last_seq: int
    frame_count: int = 0
    state: int = TRACKING
    lost_since: float | None = None


class TrackEngineMachine(RuleBasedStateMachine):
    device = 'cpu'
    engine_kwargs: dict = {}
    reference_kwargs: dict = {}
    box_atol, score_atol = 1e-4, 1e-6

    def __init__(self):
        super().__init__()
        model = prepared_model(self.device)
        self.model = model
        self.engine = Tracker(model, device=self.device, prepared=True, **self.engine_kwargs)
        self.registry = TrackRegistry(max_targets=MAX_TARGETS)
        self.expected: dict[str, Expected] = {}
        self.issued: set[str] = set()
        self.seq, self.now = 0, 0.0

    def _new_id(self) -> str:
        track_id = self.registry.new_id()
        assert track_id not in self.issued, f'track id {track_id} reused'
        self.issued.add(track_id)
        return track_id

    def _set(self, track_id: str, frame: int, box: tuple, ahead: int) -> None:
        """Start or re-initialise ``track_id`` in the registry and in the reference model."""
        target = self.engine.new_target(FRAMES[frame], box)
        last_seq = self.seq + ahead  # ahead > 0: a track that caught up past the next frames
        self.registry.put(Track(track_id, target, 1, last_seq, box, 1.0))
        reference = Tracker(self.model, device=self.device, prepared=True, **self.reference_kwargs)
        reference.initialize(FRAMES[frame], box)
        self.expected[track_id] = Expected(reference, box, 1.0, last_seq)

    def _live_id(self, index: int) -> str:
        return list(self.expected)[index % len(self.expected)]

    def _then(self, step) -> None:
        if step is not None:
            self.step(*step)

    @rule(frame=frame_indices, box=boxes, ahead=st.integers(0, 2), then=then_step)
    def add(self, frame, box, ahead, then):
        track_id = self._new_id()
        if len(self.expected) >= MAX_TARGETS:
            target = self.engine.new_target(FRAMES[frame], box)
            with pytest.raises(ValueError, match='max_targets'):
                self.registry.put(Track(track_id, target, 1, self.seq, box, 1.0))
        else:
            self._set(track_id, frame, box, ahead)
        self._then(then)

    @precondition(lambda self: self.expected)
    @rule(index=st.integers(0, MAX_TARGETS - 1), frame=frame_indices, box=boxes, ahead=st.integers(0, 1),
          then=then_step)
    def reinitialise(self, index, frame, box, ahead, then):
        self._set(self._live_id(index), frame, box, ahead)
        self._then(then)

    @precondition(lambda self: self.expected)
    @rule(index=st.integers(0, MAX_TARGETS - 1), then=then_step)
    def remove(self, index, then):
        track_id = self._live_id(index)
        assert self.registry.remove(track_id).track_id == track_id
        assert self.registry.remove(track_id) is None
        del self.expected[track_id]
        self._then(then)

    @precondition(lambda self: self.expected)
    @rule(then=then_step)
    def clear(self, then):
        removed = self.registry.clear()
        assert [track.track_id for track in removed] == list(self.expected)
        self.expected.clear()
        self._then(then)

    @rule(step=frame_steps)
    def frame(self, step):
        self.step(*step)

    def step(self, frame, low, elapsed):
        self.seq += 1
        self.now += elapsed
        steps = self.registry.step(self.engine, FRAMES[frame], self.seq, self.now, STRICT if low else LENIENT)
        stepped = [track_id for track_id, expected in self.expected.items() if expected.last_seq < self.seq]
        assert [step.track.track_id for step in steps] == stepped
        assert all(step.finite for step in steps)
        for track_id in stepped:
            expected = self.expected[track_id]
            if expected.tracker.reacquire is not None:  # the step's hysteresis, as the registry's
                expected.tracker.reacquire = ReacquireParams(STRICT if low else LENIENT)
            result = expected.tracker.track(FRAMES[frame])
            expected.box, expected.score = tuple(result.box), result.score
            expected.last_seq, expected.frame_count = self.seq, expected.frame_count + 1
            if low:
                if expected.state != LOST:
                    expected.lost_since = self.now
                expected.state = LOST
            else:
                expected.state, expected.lost_since = TRACKING, None

    @precondition(lambda self: any(expected.state == LOST for expected in self.expected.values()))
    @rule(elapsed=st.sampled_from([0.0, 0.5, 1.0]))
    def drop_lost(self, elapsed):
        self.now += elapsed
        dropped = self.registry.drop_lost(self.now, TIMEOUT_S)
        due = [track_id for track_id, expected in self.expected.items()
               if expected.state == LOST and self.now - expected.lost_since >= TIMEOUT_S]
        assert [track.track_id for track in dropped] == due
        for track_id in due:
            del self.expected[track_id]

    @invariant()
    def tracks_equal_fresh_single_trackers(self):
        tracks = self.registry.tracks()
        assert len(self.registry) <= MAX_TARGETS
        assert [track.track_id for track in tracks] == list(self.expected)
        for track in tracks:
            expected = self.expected[track.track_id]
            assert np.allclose(track.box, expected.box, rtol=0, atol=self.box_atol), (track.box, expected.box)
            assert math.isclose(track.score, expected.score, rel_tol=0, abs_tol=self.score_atol)
            assert (track.state, track.lost_since) == (expected.state, expected.lost_since)
            assert (track.last_seq, track.frame_count) == (expected.last_seq, expected.frame_count)


class HostEngineMachine(TrackEngineMachine):
    """The host path: OpenCV crops, the network, post-processing in numpy."""


class DeviceStepMachine(TrackEngineMachine):
    """The device step (``device_step.py``) run eagerly on the CPU."""

    engine_kwargs = reference_kwargs = {'device_crop': True}


class ReacquireMachine(TrackEngineMachine):
    """The host path with re-acquisition: a track LOST after a low frame gets the wider search."""

    engine_kwargs = reference_kwargs = {'reacquire': True}


class CudaGraphMachine(TrackEngineMachine):
    """The CUDA graph step, batched; references: single trackers on the eager device step (the
    graphs' batch buckets run other kernels than batch 1, hence the looser tolerance)."""

    device = 'cuda'
    engine_kwargs = {'cuda_graph': True}
    reference_kwargs = {'device_crop': True}
    box_atol, score_atol = 1e-2, 1e-4


class TestHostEngine(HostEngineMachine.TestCase):
    settings = CPU_SETTINGS


class TestDeviceStepOnCpu(DeviceStepMachine.TestCase):
    settings = CPU_SETTINGS


class TestReacquireEngine(ReacquireMachine.TestCase):
    settings = CPU_SETTINGS


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device (none here)')
class TestCudaGraphEngine(CudaGraphMachine.TestCase):
    settings = settings(CPU_SETTINGS, max_examples=20)
