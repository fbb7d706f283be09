"""The tracker node's tracks and the model they run on. ROS-free (the model comes from the shared
:class:`~transt_ros.ros.model_handle.ModelHandle`).

Owns the :class:`~transt_ros.tracking.track_registry.TrackRegistry` (guarded by :attr:`TrackEngine.lock`),
the batched :class:`~transt_ros.tracking.Tracker` of all tracks, and the fair model lock
(:attr:`TrackEngine.model_calls`: frame steps and catch-ups take turns, one model call at a time, all on one
thread on CUDA: ``device_calls.py``).

Model changes: a replaced or released model clears every track (no template made by one model ever
reaches another: the batched tracker is cached under the model's generation, which is never reused).
Deactivation pauses the tracks: time spent inactive does not count towards ``lost_track_timeout``.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..tracking import Tracker
from ..tracking.reacquire import ReacquireParams, reacquire_params
from ..tracking.track_registry import Hysteresis, StepResult, Track, TrackRegistry
from .model_handle import ModelHandle, ModelUnavailable


class ModelChanged(RuntimeError):
    """The model was deactivated, released or replaced while a target was being set."""


@dataclass
class FrameStep:
    """What one frame did: the tracks stepped (``finite`` False: the model answered NaN/Inf), the tracks
    dropped after ``lost_track_timeout``, the live tracks after it, and the time spent in the model (seconds)."""

    steps: list[StepResult]
    dropped: list[Track]
    tracks: list[Track]
    track_s: float
    now: float
    reacquire_s: float = 0.0
    """The part of ``track_s`` spent searching wider for LOST tracks (0: none was LOST or ``reacquire`` off)."""

    @property
    def detected(self) -> list[Track]:
        """The live tracks with a usable box on this frame."""
        live = {id(track) for track in self.tracks}
        return [step.track for step in self.steps if step.finite and id(step.track) in live]

    @property
    def failed_ids(self) -> list[str]:
        return [step.track.track_id for step in self.steps if not step.finite]


class TrackEngine:
    def __init__(self, handle: ModelHandle, max_targets: int):
        self.handle = handle
        self.max_targets = max_targets
        self.registry = TrackRegistry(max_targets)
        self.lock = threading.Lock()
        """Guards :attr:`registry`: hold it to read or change the tracks."""
        self.model_calls = handle.calls
        """One model call at a time, granted in the order asked (frame steps and catch-up steps alternate),
        on the device thread on CUDA: the handle's :class:`~transt_ros.ros.device_calls.DeviceCalls`."""
        self._tracker: Tracker | None = None
        self._tracker_key: tuple[int, float, bool] | None = None
        self._tracker_lock = threading.Lock()
        self._paused_since: float | None = None

    @property
    def one_target(self) -> bool:
        return self.max_targets == 1

    def tracker(self, window_influence: float, reacquire: bool | ReacquireParams | None = None
                ) -> tuple[Tracker, int]:
        """The batched tracker on the active model, and the model generation it belongs to;
        ``reacquire``: LOST tracks are searched wider (``tracking/reacquire.py``; True: default bounds).

        Cached under (model generation, window_influence, reacquire): the generation changes with every
        load or release and is never reused, and the device step bakes the window into constants, so a
        cached tracker never outlives its model, its window or its search. Raises ModelUnavailable."""
        reacquire = reacquire_params(reacquire)
        with self._tracker_lock:
            key = (self.handle.generation, window_influence, reacquire)
            if self._tracker is None or self._tracker_key != key:
                self._tracker, generation = self.handle.new_tracker(window_influence=window_influence,
                                                                    reacquire=reacquire)
                self._tracker_key = (generation, window_influence, reacquire)
            return self._tracker, self._tracker_key[0]

    def check_model(self, generation: int) -> None:
        """Raise ModelChanged unless the model of ``generation`` is still loaded and active."""
        if generation != self.handle.generation:
            raise ModelChanged('the model was reloaded or released while the target was being set; try again '
                               f'({self.handle.describe()})')
        if not self.handle.active:
            raise ModelChanged(f'the model was deactivated while the target was being set ({self.handle.describe()})')

    def step(self, rgb: np.ndarray, seq: int, window_influence: float, hysteresis: Hysteresis,
             lost_track_timeout: float, publish: Callable[[FrameStep], None],
             reacquire: bool | ReacquireParams | None = None) -> FrameStep | None:
        """Track every live track on frame ``seq`` (one batched forward; with ``reacquire`` one more for
        the LOST tracks' wider search), drop the expired ones and call ``publish`` with the outcome while
        the tracks are still locked (a clear cannot slip in between). None when every track already
        caught up past this frame."""
        with self.lock:
            registry = self.registry
            if len(registry) and all(seq <= track.last_seq for track in registry.tracks()):
                return None
            now = time.monotonic()
            start = time.perf_counter()
            steps = []
            if len(registry):
                tracker, _ = self.tracker(window_influence, reacquire)
                steps = self.model_calls.run(registry.step, tracker, rgb, seq, now, hysteresis)
            track_s = time.perf_counter() - start
            dropped = registry.drop_lost(now, lost_track_timeout)
            outcome = FrameStep(steps, dropped, registry.tracks(), track_s, now,
                                registry.reacquire_s if steps else 0.0)
            publish(outcome)
            return outcome

    def tracks(self) -> list[Track]:
        with self.lock:
            return self.registry.tracks()

    def latest(self) -> Track | None:
        with self.lock:
            return self.registry.latest()

    def on_model_changed(self) -> list[Track]:
        """The model was replaced or released: clear every track, forget the tracker."""
        with self.lock:
            cleared = self.registry.clear()
        with self._tracker_lock:
            self._tracker = self._tracker_key = None
        return cleared

    def on_activity_changed(self, active: bool) -> None:
        """Deactivation pauses the tracks; on activation their LOST clocks move on by the pause."""
        now = time.monotonic()
        with self.lock:
            if not active:
                self._paused_since = self._paused_since or now
                return
            paused, self._paused_since = self._paused_since, None
            if paused is None:
                return
            for track in self.registry.tracks():
                if track.lost_since is not None:
                    track.lost_since += now - paused


__all__ = ['FrameStep', 'ModelChanged', 'ModelUnavailable', 'TrackEngine']
