"""Evaluate trackers on a tracking bag (see :mod:`.make_bag`), offline or live, and write the report.

* **offline** (:mod:`.offline_run`): every image through in-process trackers; frame-accurate.
* **live** (:mod:`.live_run`): the real ROS pipeline over DDS at the bag's rate.

Protocol (both modes): one-pass evaluation (OPE, as OTB / LaSOT): each sequence is initialised
once, on its first frame with a ground-truth box; there is **no re-initialisation** after a
failure: a lost target stays lost. The initial frame holds the ground-truth box and counts in the
metrics, as in the OTB toolkit.

Runs are kept: each (tracker, sequence) run is written under ``<out>/results/<tracker>/`` as soon
as it is finished, and a later call with the same ``out_dir`` takes finished runs from there
instead of running them again (``overwrite=True`` redoes everything). Every argument is checked
before anything runs.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2

from ..common.files import atomic_write_text
from .datasets import check_run_settings, read_run_results, write_results
from .live_run import LiveSettings, run_live
from .metrics import DatasetMetrics
from .offline_run import empty_run, run_offline, transt_tracker
from .reference_trackers import OpenCVTracker, check_reference_names
from .report import FPS_DEFINITION, draw_evaluation_overlay, write_report, write_video
from .run_dataset import SequenceRun
from .scoring import score_runs
from .tracking_bag import GROUND_TRUTH_TOPIC, TrackingBag, read_tracking_bag

PROTOCOL = ('one-pass evaluation (OTB/LaSOT OPE): each sequence is initialised once on its first frame with a '
            'ground-truth box, through SetTarget with that frame\'s stamp in live mode; no re-initialisation '
            'after failure; frames without a detection count as failures (IoU 0)')
MODES = ('offline', 'live')
LIVE_STATS_FILE = 'live_stats.json'


def _multi_object_overlay_frames(bag: TrackingBag, runs: dict[str, SequenceRun]) -> list:
    """Every image with the ground truth (green) and the run's box (red) of each of its tracks."""
    frames = []
    for image_index, rgb in bag.images():
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for sequence_index, frame_index in bag.tracks_of(image_index):
            sequence = bag.sequences[sequence_index]
            run = runs.get(sequence.name)
            image = draw_evaluation_overlay(image, frame_index, run.boxes[frame_index] if run is not None else None,
                                 sequence.ground_truth[frame_index])
        frames.append(image)
    return frames


def write_bag_overlay_video(path: Path, bag: TrackingBag, runs: dict[str, SequenceRun], fps: float) -> Path:
    """Every frame with the ground truth (green) and ``runs``' box (red); MP4, else GIF."""
    frames = _multi_object_overlay_frames(bag, runs) if bag.multi_object else []
    for sequence_index, frame_index, rgb in ([] if bag.multi_object else bag.frames()):
        sequence = bag.sequences[sequence_index]
        run = runs.get(sequence.name)
        predicted = run.boxes[frame_index] if run is not None else None
        score = float(run.scores[frame_index]) if run is not None else None
        image = draw_evaluation_overlay(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), frame_index, predicted,
                             sequence.ground_truth[frame_index], score)
        cv2.putText(image, sequence.name, (4, image.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
        frames.append(image)
    if not frames:
        raise ValueError(f'{bag.path}: no frame to draw')
    return write_video(path, frames, fps)


def _save_run(directory: Path, run: SequenceRun) -> None:
    write_results(directory, run.name, run.boxes, run.latencies_s)


def finished_runs(directory: Path, bag: TrackingBag, device: str | None = None) -> dict[str, SequenceRun]:
    """The runs of ``bag``'s sequences already under ``directory`` (``<out>/results/<tracker>``)."""
    runs = {}
    for sequence in bag.sequences:
        stored = read_run_results(directory, sequence.name, len(sequence))
        if stored is not None:
            run = empty_run(sequence, device)
            run.boxes, run.latencies_s = stored
            runs[sequence.name] = run
    return runs


@dataclass
class BagEvaluation:
    results: dict[str, DatasetMetrics]
    metadata: dict
    paths: dict[str, Path]
    live: dict | None = None


def _check_arguments(bag_path: Path, checkpoint: Path, mode: str, rate: float, references: Sequence[str],
                     stamp_tolerance_s: float | None, ground_truth_file: Path | None) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
    if not rate > 0:
        raise ValueError(f'rate must be positive, got {rate}')
    if stamp_tolerance_s is not None and stamp_tolerance_s < 0:
        raise ValueError(f'the stamp tolerance must not be negative, got {stamp_tolerance_s}')
    check_reference_names(references)
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f'{checkpoint}: no such checkpoint file')
    if not Path(bag_path).exists():
        raise FileNotFoundError(f'{bag_path}: no such bag (a bag directory or its .mcap / .db3 file)')
    if ground_truth_file is not None and not Path(ground_truth_file).is_file():
        raise FileNotFoundError(f'{ground_truth_file}: no such ground-truth file')


def _live_transt_run(bag: TrackingBag, results_dir: Path, settings: LiveSettings, overwrite: bool, progress: bool
                     ) -> tuple[dict[str, SequenceRun], dict, bool]:
    """``(runs, live stats, taken from disk)`` of TransT through the ROS pipeline: the stored ones when
    every sequence is there at the same rate (not with ``overwrite``), else a new live run, saved."""
    live_dir = results_dir / 'transt-live'
    stored = {} if overwrite else finished_runs(live_dir, bag, 'live')
    stats_file = live_dir / LIVE_STATS_FILE
    stored_stats = json.loads(stats_file.read_text()) if stored and stats_file.is_file() else {}
    if len(stored) == len(bag.sequences) and stored_stats.get('rate') == settings.rate:
        return stored, stored_stats, True
    live = run_live(bag, settings, progress)
    for run in live.runs.values():
        _save_run(live_dir, run)
    atomic_write_text(stats_file, json.dumps(live.stats, indent=2, default=str))
    return live.runs, live.stats, False


def _offline_runs(bag: TrackingBag, results_dir: Path, names: list[str], checkpoint: Path, device: str,
                  precision: str, overwrite: bool, progress: bool, reacquire: bool = False, backend: str = 'auto'
                  ) -> tuple[dict[str, dict[str, SequenceRun]], list[str]]:
    """``({tracker: {sequence: run}}, trackers with runs taken from disk)`` of the in-process trackers
    ``names`` (TransT ones on ``device``, OpenCV ones on the CPU); each new run is saved as it finishes."""
    devices = {name: (device if name.startswith('transt') else 'cpu') for name in names}
    finished = {} if overwrite else {name: finished_runs(results_dir / name, bag, devices[name]) for name in names}
    todo = [name for name in names if len(finished.get(name, {})) < len(bag.sequences)]
    trackers = {name: (transt_tracker(checkpoint, device, precision, reacquire=reacquire, backend=backend)
                       if name.startswith('transt') else OpenCVTracker(name)) for name in todo}
    runs: dict[str, dict[str, SequenceRun]] = {}
    if trackers:
        runs.update(run_offline(bag, trackers, progress, devices, finished,
                                lambda name, run: _save_run(results_dir / name, run)))
    resumed = []
    for name in names:
        if name not in trackers:
            runs[name] = finished[name]
        if finished.get(name):
            resumed.append(name)
    return runs, resumed


def _bag_metadata(bag: TrackingBag, bag_path: Path, mode: str, rate: float, checkpoint: Path, device: str,
                  precision: str, references: Sequence[str], resumed: list[str], reacquire: bool = False,
                  backend: str = 'auto') -> dict:
    return {
        'bag': str(Path(bag_path)), 'mode': mode, 'rate': rate if mode == 'live' else None,
        'checkpoint': str(checkpoint), 'device': device, 'precision': precision, 'protocol': PROTOCOL,
        'reacquire': reacquire, 'backend': backend,
        're_initialisation': 'none',
        'latency': ('transt-live: image published -> detection received (end to end); offline trackers: '
                    'initialize()/track() call time'),
        'fps': FPS_DEFINITION,
        'image_topic': bag.image_topic, 'ground_truth_topic': bag.ground_truth_topic,
        'ground_truth': bag.matching_summary(),
        'frame_period_s': bag.frame_period_s, 'n_frames': bag.n_frames,
        'sequences': [{'name': s.name, 'frames': len(s), 'init_frame': s.init_frame} for s in bag.sequences],
        'multi_object': {'tracks': len(bag.sequences), 'max_tracks_per_image': bag.max_tracks_per_image,
                         'scored': 'every track as a sequence; the aggregate is the mean over tracks'}
        if bag.multi_object else None,
        'references': list(references),
        'resumed_from_disk': sorted(resumed),
    }


def evaluate_bag(bag_path: Path, checkpoint: Path, out_dir: Path, mode: str = 'offline', rate: float = 1.0,
                 record: Path | None = None, references: Sequence[str] = ('csrt', 'kcf'), device: str = 'cpu',
                 precision: str = 'fp32', offline_transt_in_live: bool = True, video: bool = True,
                 image_topic: str | None = None, ground_truth_topic: str = GROUND_TRUTH_TOPIC,
                 domain_id: int | None = None, progress: bool = True, print_table: bool = True,
                 ground_truth_file: Path | None = None, stamp_tolerance_s: float | None = None,
                 overwrite: bool = False, reacquire: bool = False, backend: str = 'auto') -> BagEvaluation:
    """Evaluate TransT (and the OpenCV ``references``, offline, on the same frames) on a bag and
    write the report under ``out_dir``: metrics.json, plots, comparison.md, overlay video,
    per-sequence boxes under ``results/`` (see the module docstring for resuming). ``reacquire``:
    TransT (offline and the node) searches wider for a LOST target (default: the authors' tracker)."""
    _check_arguments(bag_path, checkpoint, mode, rate, references, stamp_tolerance_s, ground_truth_file)
    out_dir = Path(out_dir)
    started = time.monotonic()
    bag = read_tracking_bag(bag_path, image_topic, ground_truth_topic, ground_truth_file, stamp_tolerance_s)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_dir = out_dir / 'results'
    check_run_settings(results_dir, {
        'bag': str(Path(bag_path).resolve()), 'bag_frames': bag.n_frames, 'checkpoint': str(Path(checkpoint).resolve()),
        'precision': precision, 'image_topic': bag.image_topic, 'ground_truth': bag.ground_truth_source,
        'stamp_tolerance_ns': bag.stamp_tolerance_ns,
        **({'reacquire': True} if reacquire else {}),  # runs stored without it stay valid
        **({'backend': backend} if backend != 'auto' else {})}, overwrite)
    all_runs: dict[str, dict[str, SequenceRun]] = {}
    live_stats = None
    resumed: list[str] = []
    if mode == 'live':
        settings = LiveSettings(checkpoint, device=device, precision=precision, rate=rate, domain_id=domain_id,
                                record=record, log_path=out_dir / 'bringup.log', reacquire=reacquire,
                                backend=backend)
        all_runs['transt-live'], live_stats, from_disk = _live_transt_run(bag, results_dir, settings, overwrite,
                                                                          progress)
        if from_disk:
            resumed.append('transt-live')
    names = list(references)
    if mode == 'offline' or offline_transt_in_live:
        names.insert(0, 'transt' if mode == 'offline' else 'transt-offline')
    offline, offline_resumed = _offline_runs(bag, results_dir, names, checkpoint, device, precision, overwrite,
                                             progress, reacquire, backend)
    all_runs.update(offline)
    resumed += offline_resumed
    results = {name: score_runs(runs, bag.sequences) for name, runs in all_runs.items()}
    metadata = _bag_metadata(bag, bag_path, mode, rate, checkpoint, device, precision, references, resumed,
                             reacquire, backend)
    if live_stats is not None:
        metadata['live'] = live_stats
    paths = dict(write_report(out_dir, results, metadata, print_table=print_table))
    if video:
        shown = 'transt-live' if 'transt-live' in all_runs else 'transt'
        if shown in all_runs:
            paths['video'] = write_bag_overlay_video(out_dir / f'overlay_{shown}.mp4', bag, all_runs[shown],
                                                     1.0 / bag.frame_period_s if bag.frame_period_s > 0 else 30.0)
    metadata['wall_time_s'] = time.monotonic() - started
    return BagEvaluation(results, metadata, paths, live_stats)


def format_summary(evaluation: BagEvaluation) -> str:
    """A few lines: AUC and fps per tracker, dropped frames, where the report is."""
    lines = []
    for name, metrics in sorted(evaluation.results.items(), key=lambda item: -item[1].success_auc):
        lines.append(f'  {name:<15} AUC {metrics.success_auc:.3f}  precision@20px {metrics.precision_at_20px:.3f}  '
                     f'{metrics.speed_fps:6.1f} fps  dropped {metrics.n_dropped}')
    if evaluation.metadata.get('multi_object'):
        for name in ('transt-live', 'transt', 'transt-offline'):
            if name in evaluation.results:
                metrics = evaluation.results[name]
                lines.append(f'  {name}, per track (the AUC above is their mean):')
                lines.extend(f'    {s.name:<28} AUC {s.success_auc:.3f}  precision@20px {s.precision_at_20px:.3f}'
                             for s in metrics.sequences)
    if evaluation.live:
        live = evaluation.live
        latency = live['end_to_end_latency']
        lines.append(f"  live: {live['frames_tracked']}/{live['frames_to_track']} frames tracked, "
                     f"{live['frames_dropped']} dropped ({100 * live['drop_rate']:.0f} %), "
                     f"throughput {live['throughput_fps']:.1f} fps at rate x{live['rate']:g}, "
                     f"latency p50 {latency['p50_ms']:.0f} / p95 {latency['p95_ms']:.0f} ms")
    lines.append(f'  fps: {FPS_DEFINITION}')
    lines.append(f"  report: {evaluation.paths['json'].parent}")
    return '\n'.join(lines)
