"""``transt-eval``: evaluate TransT on a tracking bag or on a benchmark data set.

    transt-eval bag BAG --checkpoint CKPT --out DIR [--mode offline|live] [--rate 1.0]
                [--record OUT_BAG] [--reference csrt,kcf] [--device cpu]
    transt-eval dataset KIND ROOT --checkpoint CKPT --out DIR [--workers N]
                [--devices cpu,cuda:0] [--sequences a,b] [--split test] [--reference csrt,kcf]

Both use one-pass evaluation (OTB / LaSOT OPE): one initialisation per sequence on its first
annotated frame, no re-initialisation after a failure. ``bag`` needs the ROS 2 Python
environment (``source scripts/env.sh``); ``dataset`` does not. Reports: ``metrics.json`` (every
figure, fps, latency percentiles, dropped frames), success / precision plots, ``comparison.md``,
per-sequence boxes under ``results/``; ``bag`` adds an overlay video, ``dataset`` writes GOT-10k /
TrackingNet server submissions under ``submission/`` for test splits (first box only).
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import time
from pathlib import Path

from .datasets import DATASET_READERS

LOGGER = logging.getLogger(__name__)


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or '').split(',') if name.strip()]


def build_transt_tracker(checkpoint: str, precision: str, device: str | None):
    """Tracker factory for :func:`run_dataset.evaluate_sequences` (module level: picklable)."""
    from .bag_replay import transt_tracker

    return transt_tracker(Path(checkpoint), device or 'cpu', precision)


def evaluate_dataset(kind: str, root: Path, checkpoint: Path, out_dir: Path, workers: int = 1,
                     devices: list[str] | None = None, names: list[str] | None = None, split: str | None = None,
                     references: list[str] | None = None, precision: str = 'fp32', progress: bool = True) -> dict:
    """Run TransT (and references) over a benchmark; write results, submissions and the report.

    Returns ``{'runs': {tracker: {sequence: SequenceRun}}, 'results': {tracker: DatasetMetrics}, 'paths': ...}``.
    """
    from .datasets import read_dataset, write_got10k_submission, write_results, write_trackingnet_submission
    from .reference_trackers import build_reference_tracker
    from .report import write_report
    from .run_dataset import evaluate_sequences, score_runs

    started = time.monotonic()
    sequences = read_dataset(kind, root, **({'split': split} if split else {}))
    if names:
        known = {sequence.name for sequence in sequences}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f'unknown sequence(s) {", ".join(unknown)} in {root}')
        sequences = [sequence for sequence in sequences if sequence.name in set(names)]
    if not sequences:
        raise ValueError(f'no sequence found in {root} ({kind})')
    factories = {'transt': functools.partial(build_transt_tracker, str(checkpoint), precision)}
    for reference in references or []:
        factories[reference] = functools.partial(build_reference_tracker, reference)
    runs = {}
    for name, factory in factories.items():
        LOGGER.info('%s on %d sequences of %s', name, len(sequences), kind)
        runs[name] = evaluate_sequences(factory, sequences, workers, devices if name == 'transt' else None, progress)
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    for name, tracker_runs in runs.items():
        for run in tracker_runs.values():
            write_results(out_dir / 'results' / name, run.name, run.boxes, run.latencies_s)
    test_sequences = [sequence for sequence in sequences if not sequence.fully_annotated]
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
    results = {}
    if any(sequence.fully_annotated for sequence in sequences):
        exclude_first = kind == 'got10k'
        results = {name: score_runs(tracker_runs, sequences, exclude_first) for name, tracker_runs in runs.items()}
        metadata = {'dataset': kind, 'root': str(root), 'split': split, 'checkpoint': str(checkpoint),
                    'precision': precision, 'devices': devices, 'workers': workers,
                    'protocol': 'one-pass evaluation (OPE); no re-initialisation',
                    'first_frame_excluded': exclude_first,
                    'sequences_scored': sum(s.fully_annotated for s in sequences),
                    'sequences_unannotated': len(test_sequences), 'wall_time_s': time.monotonic() - started}
        paths.update(write_report(out_dir, results, metadata))
    return {'runs': runs, 'results': results, 'paths': paths}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--checkpoint', type=Path, required=True, help='TransT checkpoint (.pth)')
    parser.add_argument('--out', type=Path, required=True, help='report directory')
    parser.add_argument('--reference', default='csrt,kcf',
                        help="comma-separated OpenCV baselines run on the same frames (csrt, kcf, mil); '' for none")
    parser.add_argument('--precision', default='fp32', choices=('fp32', 'fp16', 'bf16'))
    parser.add_argument('--quiet', action='store_true', help='no progress bars')


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='transt-eval', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    bag = commands.add_parser('bag', help='evaluate on a tracking bag (transt-make-bag)')
    bag.add_argument('bag', type=Path, help='bag directory, or its .mcap / .db3 file')
    _add_common(bag)
    bag.add_argument('--mode', choices=('offline', 'live'), default='offline',
                     help='offline: every frame in process; live: through the ROS nodes over DDS')
    bag.add_argument('--rate', type=float, default=1.0, help='live: playback rate factor (default 1.0)')
    bag.add_argument('--record', type=Path, help="live: also write the node's detections to this new bag")
    bag.add_argument('--device', default='cpu', help="torch device ('cpu', 'cuda', 'cuda:N')")
    bag.add_argument('--image-topic', help='default: the only Image / CompressedImage topic of the bag')
    bag.add_argument('--ground-truth-topic', default='/ground_truth')
    bag.add_argument('--domain-id', type=int, help='live: ROS domain of the replay (default: one of its own)')
    bag.add_argument('--no-offline-transt', action='store_true',
                     help='live: skip the offline TransT pass on the same frames')
    bag.add_argument('--no-video', action='store_true', help='no overlay video')
    dataset = commands.add_parser('dataset', help='evaluate on a benchmark data set')
    dataset.add_argument('kind', choices=sorted(DATASET_READERS))
    dataset.add_argument('root', type=Path)
    _add_common(dataset)
    dataset.add_argument('--workers', type=int, default=1, help='processes (default 1)')
    dataset.add_argument('--devices', default='cpu', help='comma-separated devices, worker i gets device i %% n')
    dataset.add_argument('--sequences', help='comma-separated sequence names (default: all)')
    dataset.add_argument('--split', help='got10k: train/val/test (default val); trackingnet: TEST, TRAIN_0 ...')
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')  # before torch is imported: see bag_replay.PASSIVE_OPENMP
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    references = _names(args.reference)
    try:
        if args.command == 'bag':
            from .bag_replay import evaluate_bag, format_summary

            evaluation = evaluate_bag(
                args.bag, args.checkpoint, args.out, mode=args.mode, rate=args.rate, record=args.record,
                references=references, device=args.device, precision=args.precision,
                offline_transt_in_live=not args.no_offline_transt, video=not args.no_video,
                image_topic=args.image_topic, ground_truth_topic=args.ground_truth_topic, domain_id=args.domain_id,
                progress=not args.quiet)
            print(format_summary(evaluation))
        else:
            outcome = evaluate_dataset(args.kind, args.root, args.checkpoint, args.out, args.workers,
                                       _names(args.devices), _names(args.sequences) or None, args.split, references,
                                       args.precision, not args.quiet)
            for name, path in outcome['paths'].items():
                print(f'{name}: {path}')
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f'transt-eval: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
