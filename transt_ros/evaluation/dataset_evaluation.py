"""Evaluate TransT (and OpenCV references) on a benchmark data set: runs, result files, submissions,
the report.

Results are written per sequence as it finishes: ``<out>/results/<tracker>/<seq>.txt`` and
``times/<seq>_time.txt`` (the OTB toolkit's layout), plus for GOT-10k the got10k toolkit's own
layout ``<out>/results/<tracker>/<seq>/<seq>_001.txt`` and ``<seq>_time.txt``, which
``ExperimentGOT10k.report`` reads. A later call with the same ``out_dir`` takes finished sequences
from there (``overwrite=True`` redoes them). GOT-10k is scored as its toolkit does: the first frame
and absent frames excluded, boxes clipped to the image, AO / SR over the frames of all sequences.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence as SequenceOf
from pathlib import Path

import numpy as np

from .datasets import (
    DATASET_READERS,
    Sequence,
    SequenceList,
    check_run_settings,
    no_sequence_hint,
    read_dataset,
    read_run_results,
    write_got10k_results,
    write_got10k_submission,
    write_results,
    write_trackingnet_submission,
)
from .offline_run import transt_tracker
from .reference_trackers import build_reference_tracker, check_reference_names
from .report import FPS_DEFINITION, write_report
from .run_dataset import SequenceRun, evaluate_sequences, first_valid_frame
from .scoring import score_runs

LOGGER = logging.getLogger(__name__)


def build_transt_tracker(checkpoint: str, precision: str, device: str | None, reacquire: bool = False,
                         backend: str = 'auto'):
    """Tracker factory for :func:`run_dataset.evaluate_sequences` (module level: picklable)."""
    return transt_tracker(Path(checkpoint), device or 'cpu', precision, reacquire=reacquire, backend=backend)


def check_dataset_arguments(kind: str, checkpoint: Path, workers: int, devices: SequenceOf[str] | None,
                            references: SequenceOf[str] | None) -> None:
    """Everything that can be checked before a frame is read; raises ValueError / FileNotFoundError."""
    if kind not in DATASET_READERS:
        raise ValueError(f'unknown dataset {kind!r}; known: {", ".join(sorted(DATASET_READERS))}')
    if workers < 1:
        raise ValueError(f'workers must be at least 1, got {workers}')
    if devices is not None and not devices:
        raise ValueError('no device given')
    check_reference_names(references or [])
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f'{checkpoint}: no such checkpoint file')


def _stored_run(directory: Path, sequence: Sequence) -> SequenceRun | None:
    stored = read_run_results(directory, sequence.name, len(sequence))
    if stored is None:
        return None
    boxes, times = stored
    return SequenceRun(sequence.name, boxes, np.full(len(sequence), np.nan), times, first_valid_frame(sequence))


def _selected_sequences(kind: str, root: Path, split: str | None, names: list[str] | None) -> SequenceList:
    """The data set's sequences (only ``names`` when given), with the folders the reader skipped;
    ValueError for an unknown name or when there is none."""
    sequences = read_dataset(kind, root, **({'split': split} if split else {}))
    if names:
        unknown = sorted(set(names) - {sequence.name for sequence in sequences})
        if unknown:
            raise ValueError(f'unknown sequence(s) {", ".join(unknown)} in {root}')
        sequences = SequenceList((sequence for sequence in sequences if sequence.name in set(names)),
                                 sequences.skipped)
    if not sequences:
        raise ValueError(no_sequence_hint(kind, root, split, sequences.skipped))
    return sequences


def _run_trackers(factories: dict, sequences: list[Sequence], kind: str, results_dir: Path, workers: int,
                  devices: list[str] | None, progress: bool, overwrite: bool
                  ) -> tuple[dict[str, dict[str, SequenceRun]], dict[str, int]]:
    """Every tracker of ``factories`` on every sequence, each run saved as it finishes; the runs already
    under ``results_dir`` are taken from there (not with ``overwrite``). Returns the runs
    ``{tracker: {sequence: run}}`` and how many were taken from disk per tracker."""
    runs: dict[str, dict[str, SequenceRun]] = {}
    resumed: dict[str, int] = {}
    for name, factory in factories.items():
        directory = results_dir / name
        done = {} if overwrite else {s.name: run for s in sequences
                                     if (run := _stored_run(directory, s)) is not None}
        todo = [s for s in sequences if s.name not in done]
        resumed[name] = len(done)
        LOGGER.info('%s on %d sequences of %s (%d already done)', name, len(todo), kind, len(done))

        def save(run: SequenceRun, directory: Path = directory) -> None:
            write_results(directory, run.name, run.boxes, run.latencies_s)
            if kind == 'got10k':
                write_got10k_results(directory, run.name, run.boxes, run.latencies_s)

        new = evaluate_sequences(factory, todo, workers, devices if name == 'transt' else None, progress, save,
                                 desc=name)
        runs[name] = {s.name: done.get(s.name) or new[s.name] for s in sequences}
    return runs, resumed


def _write_submissions(out_dir: Path, kind: str, runs: dict[str, dict[str, SequenceRun]],
                       test_sequences: list[Sequence]) -> dict[str, Path]:
    """The GOT-10k / TrackingNet server files of the sequences without ground truth; their folders by
    ``submission_<tracker>``."""
    paths = {}
    if test_sequences and kind in ('got10k', 'trackingnet'):
        for name, tracker_runs in runs.items():
            directory = out_dir / 'submission' / kind / name
            for sequence in test_sequences:
                run = tracker_runs[sequence.name]
                if kind == 'got10k':
                    write_got10k_submission(directory, run.name, run.boxes, run.latencies_s)
                else:
                    write_trackingnet_submission(directory, run.name, run.boxes)
            paths[f'submission_{name}'] = directory
    return paths


def evaluate_dataset(kind: str, root: Path, checkpoint: Path, out_dir: Path, workers: int = 1,
                     devices: list[str] | None = None, names: list[str] | None = None, split: str | None = None,
                     references: list[str] | None = None, precision: str = 'fp32', progress: bool = True,
                     overwrite: bool = False, reacquire: bool = False, backend: str = 'auto') -> dict:
    """Run TransT (and references) over a benchmark; write results, submissions and the report.
    ``reacquire``: TransT searches wider for a LOST target (default: the authors' tracker).

    Returns ``{'runs': {tracker: {sequence: SequenceRun}}, 'results': {tracker: DatasetMetrics}, 'paths': ...}``.
    """
    check_dataset_arguments(kind, checkpoint, workers, devices, references)
    started = time.monotonic()
    sequences = _selected_sequences(kind, root, split, names)
    factories = {'transt': functools.partial(build_transt_tracker, str(checkpoint), precision, reacquire=reacquire,
                                             backend=backend)}
    for reference in references or []:
        factories[reference] = functools.partial(build_reference_tracker, reference)
    out_dir = Path(out_dir)
    results_dir = out_dir / 'results'
    check_run_settings(results_dir, {'dataset': kind, 'root': str(Path(root).resolve()), 'split': split,
                                     'checkpoint': str(Path(checkpoint).resolve()), 'precision': precision,
                                     **({'reacquire': True} if reacquire else {}),  # older runs stay valid
                                     **({'backend': backend} if backend != 'auto' else {})},
                       overwrite)
    runs, resumed = _run_trackers(factories, sequences, kind, results_dir, workers, devices, progress, overwrite)
    test_sequences = [sequence for sequence in sequences if not sequence.fully_annotated]
    paths: dict[str, Path] = {'results': results_dir, **_write_submissions(out_dir, kind, runs, test_sequences)}
    results = {}
    if any(sequence.fully_annotated for sequence in sequences):
        got10k = kind == 'got10k'
        results = {name: score_runs(tracker_runs, sequences, got10k, got10k) for name, tracker_runs in runs.items()}
        metadata = {'dataset': kind, 'root': str(root), 'split': split, 'checkpoint': str(checkpoint),
                    'precision': precision, 'devices': devices, 'workers': workers, 'reacquire': reacquire,
                    'backend': backend,
                    'protocol': 'one-pass evaluation (OPE); no re-initialisation',
                    'first_frame_excluded': got10k, 'boxes_clipped_to_image': got10k,
                    'fps': FPS_DEFINITION,
                    'sequences_scored': sum(s.fully_annotated for s in sequences),
                    'sequences_unannotated': len(test_sequences),
                    'folders_skipped': [str(folder) for folder in sequences.skipped],
                    'sequences_resumed_from_disk': resumed, 'wall_time_s': time.monotonic() - started}
        paths.update(write_report(out_dir, results, metadata))
    return {'runs': runs, 'results': results, 'paths': paths}
