"""Several targets in one tracker: track ids, per-track state, LOST hysteresis, drop-after-lost, one batched step.

ROS-free (the tracker node keeps one :class:`TrackRegistry`). Every live track holds its own
:class:`~transt_ros.tracking.tracker.TargetState`; :meth:`TrackRegistry.step` runs **one** batched
forward for all tracks of a frame through a :class:`~transt_ros.tracking.Tracker` (the engine, as
``MultiTracker`` does) with the templates stacked once per change of the set of tracks, not per
frame. Adding or removing a track only edits the registry (no forward); the next frame restacks.

Boxes are ``(x, y, w, h)`` in pixels, top-left corner. Times are ``time.monotonic()`` seconds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..model import TemplateFeatures
from .box_limits import finite_result
from .lost_state import (  # noqa: F401 (the hysteresis and states, re-exported: users import them from here)
    IDLE,
    INACTIVE,
    LOST,
    STATE_NAMES,
    TRACKING,
    Hysteresis,
    next_state,
)
from .tracker import TargetState, TemplateStack, Tracker

MAX_TARGETS_LIMIT = 64


@dataclass
class Track:
    """One live track. ``last_seq``: the frame (node sequence number) it was last tracked on;
    ``lost_since``: when it became LOST (None while TRACKING); ``searching``: LOST and stepped by a
    re-acquiring engine (``Tracker.reacquire``): its frames search wider, ``target.search.steps`` of
    them so far (the overlay shows it)."""

    track_id: str
    target: TargetState
    generation: int
    last_seq: int
    box: tuple[float, float, float, float]
    score: float
    frame_count: int = 0
    state: int = TRACKING
    low_count: int = 0
    lost_since: float | None = None
    searching: bool = False

    def lost_for(self, now: float) -> float:
        return 0.0 if self.lost_since is None else max(0.0, now - self.lost_since)

    def set_state(self, state: int, now: float) -> None:
        if state == LOST and self.lost_since is None:
            self.lost_since = now
        elif state != LOST:
            self.lost_since = None
        self.state = state


@dataclass
class StepResult:
    """What one frame did to one track: ``finite`` False when the model answered NaN/Inf (the
    track is then LOST at once and searched around its last good box); ``reacquired``: the wider
    search of a LOST track moved it (``Tracker.track_lost``)."""

    track: Track
    finite: bool
    reacquired: bool = False


def track_one(engine: Tracker, target: TargetState, frame: np.ndarray) -> tuple[tuple, float, bool]:
    """One step of a single target (a catch-up frame) -> (box, score, finite); a non-finite
    answer keeps the previous centre and size."""
    previous = (target.center.copy(), target.size.copy())
    result = engine.track_states([target], [frame], target.template)[0]
    if not finite_result(result.box, result.score):
        target.center, target.size = previous
        return result.box, 0.0, False
    return tuple(result.box), float(result.score), True


class TrackRegistry:
    """The live tracks in the order they were started; ids are a counter ('1', '2', ...), never reused.

    Not thread-safe: the owner serialises calls (the node holds its track lock around them).
    """

    def __init__(self, max_targets: int = 1):
        if not 1 <= max_targets <= MAX_TARGETS_LIMIT:
            raise ValueError(f'max_targets must be in 1..{MAX_TARGETS_LIMIT}, got {max_targets}')
        self.max_targets = max_targets
        self._tracks: dict[str, Track] = {}
        self._counter = 0
        # The stacked templates of the last stepped tracks, keyed by the template objects themselves
        # (held, compared with ``is``: see TemplateStack), so it cannot go stale; also dropped when
        # tracks go or are replaced (put, remove, clear, drop_lost), which releases their templates.
        self._stack = TemplateStack()
        self.latest_id = ''
        """The most recently set (started or re-initialised) track."""
        self.reacquire_s = 0.0
        """Seconds the last :meth:`step` spent in the wider search of LOST tracks (0: none was LOST)."""

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, track_id: str) -> bool:
        return track_id in self._tracks

    @property
    def stack_count(self) -> int:
        """How many times templates were stacked (once per change of the set of tracks)."""
        return self._stack.count

    @property
    def full(self) -> bool:
        return len(self._tracks) >= self.max_targets

    def tracks(self) -> list[Track]:
        return list(self._tracks.values())

    def get(self, track_id: str) -> Track | None:
        return self._tracks.get(track_id)

    def latest(self) -> Track | None:
        """The most recently set live track (else the newest one), None when there is none."""
        track = self._tracks.get(self.latest_id)
        if track is None and self._tracks:
            track = next(reversed(self._tracks.values()))
        return track

    def new_id(self) -> str:
        self._counter += 1
        return str(self._counter)

    def put(self, track: Track) -> None:
        """Add ``track``, or replace the live track with its id (a re-initialisation keeps the id and
        the track's place in the order)."""
        if track.track_id not in self._tracks and self.full:
            raise ValueError(f'{len(self._tracks)} tracks exist (max_targets {self.max_targets})')
        self._tracks[track.track_id] = track
        self.latest_id = track.track_id
        self._stack.clear()

    def remove(self, track_id: str) -> Track | None:
        track = self._tracks.pop(track_id, None)
        if track is not None:
            self._stack.clear()
        return track

    def clear(self) -> list[Track]:
        removed, self._tracks = list(self._tracks.values()), {}
        self._stack.clear()
        return removed

    def stacked_templates(self, tracks: list[Track]) -> TemplateFeatures:
        """The templates of ``tracks`` stacked along the batch; cached until the set changes
        (keyed by the template objects, held: a new template never passes for a freed one)."""
        return self._stack.get([track.target.template for track in tracks])

    def step(self, engine: Tracker, frame: np.ndarray, seq: int, now: float, hysteresis: Hysteresis
             ) -> list[StepResult]:
        """Track every live track not yet tracked on frame ``seq`` (a track that caught up past it
        skips it) with one batched forward on ``frame``; update scores, boxes and states.

        With ``engine.reacquire``, the LOST tracks get the wider search instead (``Tracker.track_lost``,
        one more forward for all of them, accepting at ``hysteresis.recover_threshold``; its time is
        :attr:`reacquire_s`); the others keep the one batched forward."""
        tracks = [track for track in self._tracks.values() if seq > track.last_seq]
        self.reacquire_s = 0.0
        if not tracks:
            return []
        previous = [(track.target.center.copy(), track.target.size.copy()) for track in tracks]
        if engine.reacquire is not None:  # the colours a re-acquired candidate must match, once per track
            for track in tracks:
                track.target.search.remember_colour(frame, track.target.center, track.target.size)
        searched = [engine.reacquire is not None and track.state == LOST for track in tracks]
        results = self._local_step(engine, frame, [track for track, wide in zip(tracks, searched) if not wide])
        lost = [track for track, wide in zip(tracks, searched) if wide]
        if lost:
            start = time.perf_counter()
            lost_results = iter(engine.track_lost([track.target for track in lost], [frame] * len(lost),
                                                  hysteresis.recover_threshold))
            self.reacquire_s = time.perf_counter() - start
            local_results = iter(results)
            results = [next(lost_results) if wide else next(local_results) for wide in searched]
        steps = []
        for track, result, (center, size) in zip(tracks, results, previous):
            track.last_seq = seq
            track.frame_count += 1
            finite = finite_result(result.box, result.score)
            if finite:
                track.box, track.score = tuple(result.box), float(result.score)
                state, track.low_count = next_state(track.state, track.score, track.low_count,
                                                    hysteresis.lost_threshold, hysteresis.recover_threshold,
                                                    hysteresis.lost_frames)
            else:  # a non-finite answer is a failure: LOST at once, search around the last good box
                track.target.center, track.target.size = center, size
                track.score, state, track.low_count = 0.0, LOST, track.low_count + 1
            track.set_state(state, now)
            track.target.search.update(state == LOST, track.score, track.target.size, hysteresis.lost_threshold)
            track.searching = engine.reacquire is not None and state == LOST
            steps.append(StepResult(track, finite, result.reacquired))
        return steps

    def _local_step(self, engine: Tracker, frame: np.ndarray, tracks: list[Track]) -> list:
        """The authors' step of ``tracks`` on ``frame``: one batched forward (none for no track)."""
        if not tracks:
            return []
        return engine.track_states([track.target for track in tracks], [frame] * len(tracks),
                                   self.stacked_templates(tracks))

    def drop_lost(self, now: float, timeout_s: float) -> list[Track]:
        """Remove and return the tracks LOST for at least ``timeout_s`` (0: never)."""
        if timeout_s <= 0:
            return []
        expired = [track for track in self._tracks.values() if track.state == LOST
                   and track.lost_for(now) >= timeout_s]
        for track in expired:
            del self._tracks[track.track_id]
        if expired:
            self._stack.clear()
        return expired
