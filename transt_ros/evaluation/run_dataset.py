"""One-pass evaluation (OPE): initialise on the first valid box, track every later frame.

A tracker is anything with ``initialize(frame_rgb, box_xywh)`` and ``track(frame_rgb)``
returning an object with ``.box`` (``x, y, w, h``) and ``.score``; frames are RGB ``uint8``
``(H, W, 3)``. ``tracker_factory(device)`` builds one; with ``workers > 1`` it must be
picklable (a module-level function or a ``functools.partial`` of one), since each worker
process builds its own tracker.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from collections.abc import Sequence as SequenceOf
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..common.images import ImageReadError, read_image_rgb
from .datasets import Sequence
from .metrics import valid_frame_mask

LOGGER = logging.getLogger(__name__)
LONG_SEQUENCE_FRAMES = 300
"""Sequences at least this long get a progress bar of their own frames (LaSOT: 1,000 - 11,000 frames)."""


@dataclass
class SequenceRun:
    """Raw output of one tracker on one sequence, one row per frame.

    ``boxes`` ``(N, 4)`` pixels and ``scores`` ``(N,)`` are NaN where no box was produced
    (before ``init_frame``, missing or unreadable frames); the init frame holds the
    ground-truth box and score 1. ``latencies_s`` ``(N,)`` is the wall time of
    ``initialize`` (at ``init_frame``) or ``track`` in seconds, frame decoding excluded.
    ``init_frame`` is -1 when the sequence has no usable box.
    """

    name: str
    boxes: np.ndarray
    scores: np.ndarray
    latencies_s: np.ndarray
    init_frame: int
    device: str | None = None

    @property
    def tracking_latencies_s(self) -> np.ndarray:
        """Latencies of ``track`` calls only (the init frame is NaN)."""
        latencies = self.latencies_s.copy()
        if self.init_frame >= 0:
            latencies[self.init_frame] = np.nan
        return latencies


def read_rgb(path) -> np.ndarray | None:
    """RGB ``uint8`` ``(H, W, 3)`` image, or None when the file is missing or unreadable."""
    try:
        return read_image_rgb(path)
    except ImageReadError:
        return None


def first_valid_frame(sequence: Sequence) -> int:
    """Index of the first frame with a usable, visible box and a frame file on disk, or -1."""
    usable = valid_frame_mask(sequence.ground_truth, sequence.visible)
    usable[list(sequence.missing_frames)] = False
    indices = np.flatnonzero(usable)
    return int(indices[0]) if len(indices) else -1


def one_pass_step(tracker, frame, init_box=None) -> tuple[np.ndarray, float, float]:
    """Initialise on ``init_box`` (the answer is then the box itself, score 1) or track one
    frame; returns (box x,y,w,h, score, seconds the tracker took)."""
    start = time.perf_counter()
    if init_box is not None:
        tracker.initialize(frame, np.array(init_box, dtype=float))
        box, score = init_box, 1.0
    else:
        result = tracker.track(frame)
        box, score = result.box, result.score
    return np.asarray(box, dtype=float), float(score), time.perf_counter() - start


def run_sequence(tracker, sequence: Sequence, device: str | None = None, progress: bool = False) -> SequenceRun:
    """Run ``tracker`` over ``sequence`` once (OPE) and record boxes, scores and timings; with
    ``progress``, sequences of :data:`LONG_SEQUENCE_FRAMES` frames or more show a bar per frame."""
    n_frames = len(sequence)
    boxes = np.full((n_frames, 4), np.nan)
    scores = np.full(n_frames, np.nan)
    latencies = np.full(n_frames, np.nan)
    init_frame = first_valid_frame(sequence)
    run = SequenceRun(sequence.name, boxes, scores, latencies, init_frame, device)
    if init_frame < 0:
        LOGGER.warning('sequence %s has no usable initial box; skipped', sequence.name)
        return run
    missing = set(sequence.missing_frames)
    frames = range(init_frame, n_frames)
    if progress and n_frames >= LONG_SEQUENCE_FRAMES:
        frames = tqdm(frames, unit='frame', desc=sequence.name, leave=False)
    for index in frames:
        frame = None if index in missing else read_rgb(sequence.frame_paths[index])
        if frame is None:
            if index == init_frame:
                raise FileNotFoundError(f'cannot read initial frame {sequence.frame_paths[index]}')
            continue
        boxes[index], scores[index], latencies[index] = one_pass_step(
            tracker, frame, sequence.ground_truth[init_frame] if index == init_frame else None)
    return run


_worker_tracker = None
_worker_device: str | None = None


def _start_worker(tracker_factory: Callable, device_queue) -> None:
    """Process-pool initialiser: take the next device and build this process's tracker."""
    global _worker_tracker, _worker_device
    _worker_device = device_queue.get() if device_queue is not None else None
    _worker_tracker = tracker_factory(_worker_device)


def _run_in_worker(sequence: Sequence) -> SequenceRun:
    return run_sequence(_worker_tracker, sequence, _worker_device)


def _update_progress(bar: tqdm, run: SequenceRun) -> None:
    latencies = run.tracking_latencies_s
    total = np.nansum(latencies)
    fps = f'{np.isfinite(latencies).sum() / total:.1f}' if total > 0 else '-'
    bar.set_postfix(sequence=run.name, fps=fps)
    bar.update(1)


def evaluate_sequences(tracker_factory: Callable, sequences: SequenceOf[Sequence], workers: int = 1,
                       device_list: SequenceOf[str] | None = None, progress: bool = True,
                       on_done: Callable[[SequenceRun], None] | None = None,
                       desc: str = 'evaluating') -> dict[str, SequenceRun]:
    """Run OPE on every sequence; returns ``{sequence name: SequenceRun}`` in input order.

    ``workers > 1`` spreads sequences over that many spawned processes
    (``torch.multiprocessing``), worker ``i`` getting ``device_list[i % len(device_list)]``;
    ``device_list`` None passes ``device=None`` to the factory. ``on_done(run)`` is called as each
    sequence finishes (to write its results at once).
    """
    runs: dict[str, SequenceRun] = {}
    if not sequences:
        return runs
    with tqdm(total=len(sequences), unit='seq', disable=not progress, desc=desc) as bar:
        if workers <= 1:
            device = device_list[0] if device_list else None
            tracker = tracker_factory(device)
            for sequence in sequences:
                runs[sequence.name] = run_sequence(tracker, sequence, device, progress)
                if on_done is not None:
                    on_done(runs[sequence.name])
                _update_progress(bar, runs[sequence.name])
        else:
            import torch.multiprocessing as torch_multiprocessing

            context = torch_multiprocessing.get_context('spawn')
            device_queue = None
            if device_list:
                device_queue = context.Queue()
                for worker_index in range(workers):
                    device_queue.put(device_list[worker_index % len(device_list)])
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                     initargs=(tracker_factory, device_queue)) as pool:
                futures = [pool.submit(_run_in_worker, sequence) for sequence in sequences]
                for future in as_completed(futures):
                    if on_done is not None:
                        on_done(future.result())
                    _update_progress(bar, future.result())
                finished = [future.result() for future in futures]
            runs = {run.name: run for run in finished}
    return runs
