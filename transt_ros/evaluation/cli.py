"""``transt-eval``: evaluate TransT on a tracking bag or on a benchmark data set.

    transt-eval bag BAG --checkpoint CKPT --out DIR [--mode offline|live] [--rate 1.0]
                [--record OUT_BAG] [--reference csrt,kcf] [--device cpu] [--domain-id N]
                [--ground-truth FILE] [--stamp-tolerance S] [--overwrite]
    transt-eval dataset KIND ROOT --checkpoint CKPT --out DIR [--workers N]
                [--devices cpu,cuda:0] [--sequences a,b] [--split test] [--reference csrt,kcf] [--overwrite]
    transt-eval convert-vot OUT (--dataset KIND ROOT | --synthetic N)   (sequences in the VOT toolkit's layout)

Both use one-pass evaluation (OTB / LaSOT OPE): one initialisation per sequence on its first
annotated frame, no re-initialisation after a failure. ``bag`` needs the ROS 2 Python
environment (``source scripts/env.sh``); ``dataset`` does not. Reports: ``metrics.json`` (every
figure, fps, latency percentiles, dropped frames), success / precision plots, ``comparison.md``,
per-sequence boxes under ``results/``; ``bag`` adds an overlay video, ``dataset`` writes GOT-10k /
TrackingNet server submissions under ``submission/`` for test splits (first box only).

Results are written per sequence as it finishes and a rerun into the same ``--out`` skips the
finished ones (``--overwrite`` redoes them); every argument is checked before anything runs.
FPS everywhere: the toolkits' definition, mean over timed frames of 1 / per-frame time.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..common.ros_environment import passive_openmp_env
from ..runtimes.backends import add_backend_arguments
from .datasets import DATASET_READERS
from .reference_trackers import check_reference_names
from .vot_convert import add_convert_parser, run_convert

LOGGER = logging.getLogger(__name__)


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or '').split(',') if name.strip()]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--checkpoint', type=Path, required=True, help='TransT checkpoint (.pth)')
    parser.add_argument('--out', type=Path, required=True, help='report directory')
    parser.add_argument('--reference', default='csrt,kcf',
                        help="comma-separated OpenCV baselines run on the same frames (csrt, kcf, mil); '' for none")
    add_backend_arguments(parser)
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    parser.add_argument('--overwrite', action='store_true',
                        help='run every sequence again (default: keep the results already in --out)')
    parser.add_argument('--reacquire', action=argparse.BooleanOptionalAction, default=False,
                        help='search wider (growing window, then the whole frame in tiles) for a LOST target '
                             "(default: off, the authors' tracker); see docs/ros.md, Re-acquisition")


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
    bag.add_argument('--ground-truth', type=Path, metavar='FILE',
                     help='box file (one x,y,w,h line per image, in bag order) for a bag without a ground-truth '
                          'topic (default: groundtruth.txt / groundtruth_rect.txt beside the bag, if any)')
    bag.add_argument('--stamp-tolerance', type=float, metavar='SECONDS',
                     help='largest header-stamp difference between an image and its ground truth '
                          '(default: half the median frame period)')
    bag.add_argument('--domain-id', type=int,
                     help='live: ROS domain of the replay (default: $ROS_DOMAIN_ID, else one from the process id)')
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
    add_convert_parser(commands)
    return parser


def _check(parser: argparse.ArgumentParser, args) -> None:
    """Argument errors, before anything runs (usage message and exit code 2, as argparse's own)."""
    try:
        check_reference_names(_names(args.reference))
    except ValueError as error:
        parser.error(str(error))
    if not args.checkpoint.is_file():
        parser.error(f'--checkpoint {args.checkpoint}: no such file')
    if args.command == 'bag':
        if not args.rate > 0:
            parser.error(f'--rate must be positive, got {args.rate:g}')
        if args.stamp_tolerance is not None and args.stamp_tolerance < 0:
            parser.error(f'--stamp-tolerance must not be negative, got {args.stamp_tolerance:g}')
        if not args.bag.exists():
            parser.error(f'{args.bag}: no such bag (a bag directory or its .mcap / .db3 file)')
        if args.ground_truth is not None and not args.ground_truth.is_file():
            parser.error(f'--ground-truth {args.ground_truth}: no such file')
        if args.domain_id is not None and not 0 <= args.domain_id <= 232:
            parser.error(f'--domain-id must be in 0..232, got {args.domain_id}')
    else:
        if args.workers < 1:
            parser.error(f'--workers must be at least 1, got {args.workers}')
        if not _names(args.devices):
            parser.error('--devices names no device')
        if not args.root.is_dir():
            parser.error(f'{args.root}: no such directory')


def main(argv: list[str] | None = None) -> int:
    passive_openmp_env(os.environ)  # before torch is imported
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == 'convert-vot':
        logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
        return run_convert(parser, args)
    _check(parser, args)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    references = _names(args.reference)
    try:
        if args.command == 'bag':
            from ..bags import BagError
            from .bag_evaluation import evaluate_bag, format_summary

            try:
                evaluation = evaluate_bag(
                    args.bag, args.checkpoint, args.out, mode=args.mode, rate=args.rate, record=args.record,
                    references=references, device=args.device, precision=args.precision,
                    offline_transt_in_live=not args.no_offline_transt, video=not args.no_video,
                    image_topic=args.image_topic, ground_truth_topic=args.ground_truth_topic,
                    domain_id=args.domain_id, progress=not args.quiet, ground_truth_file=args.ground_truth,
                    stamp_tolerance_s=args.stamp_tolerance, overwrite=args.overwrite, reacquire=args.reacquire,
                    backend=args.backend)
            except BagError as error:
                raise ValueError(str(error)) from None
            print(format_summary(evaluation))
        else:
            from .dataset_evaluation import evaluate_dataset

            outcome = evaluate_dataset(args.kind, args.root, args.checkpoint, args.out, args.workers,
                                       _names(args.devices), _names(args.sequences) or None, args.split, references,
                                       args.precision, not args.quiet, args.overwrite, reacquire=args.reacquire,
                                       backend=args.backend)
            for name, path in outcome['paths'].items():
                print(f'{name}: {path}')
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f'transt-eval: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
