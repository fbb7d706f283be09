"""Offline run over a tracking bag: every image, in order, through in-process trackers (TransT and
the OpenCV references), one pass for all of them: frame-accurate, no frame is ever skipped;
latency = ``initialize()`` / ``track()`` time. Runs of (tracker, sequence) pairs already on disk
(``finished``) are not redone.

Multi-object bags (:attr:`TrackingBag.frame_tracks`): every track gets its own tracker (a fresh one
of each kind, TransT ones sharing the loaded model), stepped on every image the track belongs to.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..checkpoint import load_model
from ..model.precision import PRECISIONS
from ..tracking import Tracker
from ..tracking.warmup import warm_up as warm_up_tracker
from .reference_trackers import OpenCVTracker
from .run_dataset import SequenceRun, one_pass_step
from .tracking_bag import BagSequence, TrackingBag


def empty_run(sequence: BagSequence, device: str | None = None) -> SequenceRun:
    count = len(sequence)
    return SequenceRun(sequence.name, np.full((count, 4), np.nan), np.full(count, np.nan), np.full(count, np.nan),
                       sequence.init_frame, device)


def _trackers_to_step(sequence: BagSequence, frame_index: int, trackers: dict[str, object],
                      todo: dict[str, set[str]]) -> list[str]:
    """The trackers that still run ``sequence`` and have a frame to track at ``frame_index``."""
    if sequence.init_frame < 0 or frame_index < sequence.init_frame:
        return []
    return [name for name in trackers if sequence.name in todo[name]]


def _step(run: SequenceRun, tracker, sequence: BagSequence, frame_index: int, rgb) -> None:
    """One frame of ``run``: initialise on the sequence's first annotated frame, else track."""
    init_box = sequence.ground_truth[sequence.init_frame] if frame_index == sequence.init_frame else None
    run.boxes[frame_index], run.scores[frame_index], run.latencies_s[frame_index] = one_pass_step(
        tracker, rgb, init_box)


def run_offline(bag: TrackingBag, trackers: dict[str, object], progress: bool = True,
                devices: dict[str, str] | None = None,
                finished: dict[str, dict[str, SequenceRun]] | None = None,
                on_sequence_done: Callable[[str, SequenceRun], None] | None = None
                ) -> dict[str, dict[str, SequenceRun]]:
    """One pass over the bag's frames, every tracker on every frame (OPE); ``{tracker: {sequence: run}}``.

    ``finished``: runs already done (``{tracker: {sequence: run}}``), taken as they are.
    ``on_sequence_done(tracker, run)`` is called as soon as a sequence's run is complete (to save it).
    """
    devices = devices or {}
    finished = finished or {}
    if bag.multi_object:
        return _run_offline_tracks(bag, trackers, progress, devices, finished, on_sequence_done)
    runs = {name: {s.name: finished.get(name, {}).get(s.name) or empty_run(s, devices.get(name))
                   for s in bag.sequences} for name in trackers}
    todo = {name: {s.name for s in bag.sequences if s.name not in finished.get(name, {})} for name in trackers}
    frames = tqdm(bag.frames(), total=bag.n_frames, unit='frame', disable=not progress,
                  desc=f"offline ({', '.join(trackers)})")

    def sequence_done(sequence: BagSequence) -> None:
        for name in trackers:
            if sequence.name in todo[name] and on_sequence_done is not None:
                on_sequence_done(name, runs[name][sequence.name])

    previous = None
    for sequence_index, frame_index, rgb in frames:
        sequence = bag.sequences[sequence_index]
        if previous is not None and previous is not sequence:
            sequence_done(previous)
        previous = sequence
        for name in _trackers_to_step(sequence, frame_index, trackers, todo):
            _step(runs[name][sequence.name], trackers[name], sequence, frame_index, rgb)
    if previous is not None:
        sequence_done(previous)
    return runs


def fresh_tracker(tracker):
    """A new tracker of the same kind and settings as ``tracker`` (TransT: sharing its prepared model)."""
    if isinstance(tracker, Tracker):
        precision = next(name for name, dtype in PRECISIONS.items() if dtype == tracker.dtype)
        return Tracker(tracker.model, device=tracker.device, precision=precision, path=tracker.path, prepared=True,
                       device_crop=tracker.device_crop, reacquire=tracker.reacquire or False,
                       **dataclasses.asdict(tracker.params))
    if isinstance(tracker, OpenCVTracker):
        return OpenCVTracker(tracker.name)
    raise TypeError(f'cannot make another tracker like {type(tracker).__name__} for a multi-object bag')


def _run_offline_tracks(bag: TrackingBag, trackers: dict[str, object], progress: bool, devices: dict[str, str],
                        finished: dict[str, dict[str, SequenceRun]],
                        on_sequence_done: Callable[[str, SequenceRun], None] | None
                        ) -> dict[str, dict[str, SequenceRun]]:
    """``run_offline`` for a multi-object bag: one tracker per (kind, track), each image decoded once."""
    runs = {name: {s.name: finished.get(name, {}).get(s.name) or empty_run(s, devices.get(name))
                   for s in bag.sequences} for name in trackers}
    todo = {name: {s.name for s in bag.sequences if s.name not in finished.get(name, {})} for name in trackers}
    instances: dict[tuple[str, str], object] = {}
    images = tqdm(bag.images(), total=bag.n_frames, unit='frame', disable=not progress,
                  desc=f"offline, {len(bag.sequences)} tracks ({', '.join(trackers)})")
    for image_index, rgb in images:
        for sequence_index, frame_index in bag.tracks_of(image_index):
            sequence = bag.sequences[sequence_index]
            for name in _trackers_to_step(sequence, frame_index, trackers, todo):
                key = (name, sequence.name)
                if frame_index == sequence.init_frame:
                    instances[key] = fresh_tracker(trackers[name])
                run = runs[name][sequence.name]
                _step(run, instances[key], sequence, frame_index, rgb)
                if frame_index == len(sequence) - 1:
                    instances.pop(key, None)
                    if on_sequence_done is not None:
                        on_sequence_done(name, run)
    return runs


def transt_tracker(checkpoint: Path, device: str = 'cpu', precision: str = 'fp32', warm_up: bool = True,
                   reacquire: bool = False, backend: str = 'auto') -> Tracker:
    """An in-process TransT tracker from a checkpoint, warmed up (one dummy initialise + track, as
    the model manager node does) so that the first timed frames do not pay for allocations;
    ``reacquire``: search wider for a LOST target (``tracking/reacquire.py``, default params); ``backend``:
    the inference runtime (``runtimes/backends.py``; int8 is calibrated first when the cache lacks it)."""
    model = load_model(checkpoint, device=device)
    if precision == 'int8':
        from ..deploy.calibration import ensure_int8  # generated scenes: only when int8 is asked for
        ensure_int8(model)
    tracker = Tracker(model, device=device, precision=precision, reacquire=reacquire, backend=backend)
    if warm_up:
        warm_up_tracker(tracker)
    return tracker
