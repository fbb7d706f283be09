"""``transt-demo`` (``bash scripts/demo.sh``): the whole ROS pipeline on generated scenes, no download.

1. Writes the demo bag ``<out>/demo.mcap`` (rosbag2 MCAP, ``metadata.yaml`` next to it) unless an
   identical one exists: generated scenes (:class:`~transt_ros.training.synthetic.SyntheticVideos`,
   ``--preset default`` or ``hard``, each with its own held-out seed; the training set uses seed 0),
   rgb8 images, camera info and the ground truth as vision_msgs/Detection2D (an empty box where the
   target is absent: fully occluded or out of view, frames the metrics skip).
2. Starts the real pipeline (``transt_ros.ros.bringup``: lifecycle manager + tracker node) in a
   subprocess on the ROS domain ``--domain-id``, else ``$ROS_DOMAIN_ID``, else one from the process
   id (loopback discovery), configures and activates it through the lifecycle
   services, replays the bag at its recorded rate (x ``--rate``), sets each sequence's target
   through ``~/set_target`` and records the detections (``<out>/detections``, a bag).
3. Writes the report (``<out>/report``: metrics.json, plots, overlay video, comparison.md with
   TransT offline and the OpenCV CSRT / KCF trackers on the same frames) and prints a summary.

The checkpoint defaults to the bundled demo model ``transt_ros/data/demo_model.pth``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from .common.ros_environment import passive_openmp_env
from .common.seeds import HARD_DEMO_SEED, HELD_OUT_DEMO_SEED
from .runtimes.backends import add_backend_arguments

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / 'data' / 'demo_model.pth'
DEMO_KEY = 'transt_ros.demo'


def _parse_args(argv):
    from .evaluation.make_bag import add_scene_arguments  # imports torch: after passive_openmp_env (main)

    parser = argparse.ArgumentParser(prog='transt-demo', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--checkpoint', type=Path, default=DEFAULT_CHECKPOINT,
                        help='TransT checkpoint (default: the bundled demo model)')
    parser.add_argument('--out', type=Path,
                        help='output directory (default out/demo, with --preset hard out/demo-hard)')
    parser.add_argument('--sequences', type=int, default=3, help='generated scenes (default 3)')
    add_scene_arguments(parser)
    parser.add_argument('--fps', type=float, default=30.0, help='frame rate of the bag (default 30)')
    parser.add_argument('--rate', type=float, default=1.0, help='playback rate factor (default 1.0)')
    parser.add_argument('--domain-id', type=int,
                        help='ROS domain of the live replay (default: $ROS_DOMAIN_ID, else one from the process id)')
    parser.add_argument('--overwrite', action='store_true',
                        help='run everything again (default: keep the runs already under --out/report)')
    parser.add_argument('--device', default='cpu', help="torch device of the tracker node ('cpu', 'cuda:0' ...)")
    parser.add_argument('--reference', default='csrt,kcf', help="OpenCV baselines, comma-separated ('' for none)")
    parser.add_argument('--offline', action='store_true', help='skip the ROS pipeline: evaluate in process only')
    parser.add_argument('--no-video', action='store_true', help='no overlay video')
    parser.add_argument('--regenerate', action='store_true', help='write the demo bag even if it exists')
    parser.add_argument('--quiet', action='store_true', help='no progress bars')
    add_backend_arguments(parser)
    parser.add_argument('--reacquire', action=argparse.BooleanOptionalAction, default=False,
                        help="search wider for a LOST target, offline and in the node (default: off, the authors' "
                             'tracker, as the README tables)')
    args = parser.parse_args(argv)
    for name in ('sequences', 'frames', 'width', 'height'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be at least 1, got {getattr(args, name)}')
    if not args.fps > 0 or not args.rate > 0:
        parser.error('--fps and --rate must be positive')
    if args.domain_id is not None and not 0 <= args.domain_id <= 232:
        parser.error(f'--domain-id must be in 0..232, got {args.domain_id}')
    if args.seed is None:
        args.seed = HARD_DEMO_SEED if args.preset == 'hard' else HELD_OUT_DEMO_SEED
    if args.out is None:
        args.out = Path('out/demo-hard' if args.preset == 'hard' else 'out/demo')
    return args


def _scene_config(args) -> dict:
    config = {'sequences': args.sequences, 'frames': args.frames, 'width': args.width, 'height': args.height,
              'seed': args.seed, 'fps': args.fps}
    preset = getattr(args, 'preset', 'default')
    if preset != 'default':  # bags written before presets existed stay valid
        config['preset'] = preset
    return config


def ensure_demo_bag(args) -> Path:
    """``<out>/demo.mcap``: reused when it was written with the same scene settings."""
    from .bags.rosbag2 import read_metadata_yaml
    from .evaluation.make_bag import synthetic_sources, write_sequences_bag

    bag_file = args.out / 'demo.mcap'
    config = json.dumps(_scene_config(args), sort_keys=True)
    if bag_file.is_file() and not args.regenerate:
        summary = read_metadata_yaml(args.out)
        if summary is not None and summary.custom_data.get(DEMO_KEY) == config:
            print(f'demo bag: {bag_file} (exists)')
            return bag_file
    preset = getattr(args, 'preset', 'default')
    print(f'demo bag: writing {args.sequences} generated scenes x {args.frames} frames '
          f'({args.width}x{args.height}, preset {preset}, seed {args.seed}) to {bag_file}')
    sources = synthetic_sources(args.sequences, args.frames, args.width, args.height, args.seed, preset)
    write_sequences_bag(bag_file, sources, args.fps, overwrite=True, compression='zstd',
                        custom_data={DEMO_KEY: config})
    return bag_file


def main(argv: list[str] | None = None) -> int:
    passive_openmp_env(os.environ)  # before torch is imported
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    if not args.checkpoint.is_file():
        print(f'transt-demo: no checkpoint at {args.checkpoint}. Pass --checkpoint (any TransT checkpoint, '
              "e.g. the authors' transt.pth, or one trained with transt-train).", file=sys.stderr)
        return 1
    from .bags import BagError
    from .evaluation.bag_evaluation import evaluate_bag, format_summary
    from .evaluation.reference_trackers import check_reference_names

    references = [name.strip() for name in args.reference.split(',') if name.strip()]
    try:
        check_reference_names(references)
    except ValueError as error:
        print(f'transt-demo: --reference: {error}', file=sys.stderr)
        return 2

    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        previous = (args.out / 'demo.mcap').stat().st_mtime_ns if (args.out / 'demo.mcap').is_file() else None
        bag_file = ensure_demo_bag(args)
        rewritten = bag_file.stat().st_mtime_ns != previous  # new scenes: earlier runs do not apply
        mode = 'offline' if args.offline else 'live'
        if mode == 'live':
            print(f'live replay: bringup (lifecycle manager + tracker node) on {args.device}, '
                  f'bag at x{args.rate:g} of {args.fps:g} fps ...')
        evaluation = evaluate_bag(
            bag_file, args.checkpoint, args.out / 'report', mode=mode, rate=args.rate,
            record=None if args.offline else args.out / 'detections',
            references=references, device=args.device, domain_id=args.domain_id, overwrite=args.overwrite or rewritten,
            video=not args.no_video, progress=not args.quiet, print_table=False, reacquire=args.reacquire,
            backend=args.backend, precision=args.precision)
    except (BagError, RuntimeError, ValueError, OSError) as error:
        print(f'transt-demo: {error}', file=sys.stderr)
        return 1
    print(f'\nTransT demo ({mode}, {evaluation.metadata["n_frames"]} frames, '
          f'{len(evaluation.metadata["sequences"])} sequence(s)) in {time.monotonic() - started:.0f} s:')
    print(format_summary(evaluation))
    print(f"  table: {evaluation.paths['table']}")
    if 'video' in evaluation.paths:
        print(f"  video: {evaluation.paths['video']}")
    if not args.offline:
        print(f"  detections bag: {args.out / 'detections'}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
