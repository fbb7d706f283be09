"""``transt-train``: train TransT from a YAML config, with ``--set key=value`` overrides."""
from __future__ import annotations

import argparse
import logging
import sys

import yaml

from .config import ConfigError, describe, load_config

EPILOG = """\
examples:
  transt-train config/train_tiny.yaml --set train.output_dir=runs/tiny
  transt-train config/train_transt.yaml --set data.datasets.0.root=/data/GOT-10k --set optim.lr=1e-4
  torchrun --nproc_per_node 4 -m transt_ros.training.cli config/train_transt.yaml   # DDP, one GPU each

Runs resume from the newest checkpoint in <train.output_dir>/checkpoints unless
checkpoint.resume=false. Logs: <output_dir>/log.csv and <output_dir>/tensorboard; final
weights (project checkpoint format, loadable by the tracker): <output_dir>/model.pth.

data.datasets is a list of {kind, root, weight, ...options}; kinds and their options:
  got10k       root=<GOT-10k dir>; split (train), sequence_list (file of names)
  lasot        root=<LaSOT dir>; classes (list), sequence_list (file of names)
  trackingnet  root=<TrackingNet dir>; sets (list of chunk numbers, default all TRAIN_k)
  coco         root=<COCO dir>; annotation_file (annotations/instances_train2017.json),
               image_dir (train2017), min_area (0)
  custom       root=<dir of <video>/frames/*.jpg|png + <video>/boxes.txt>; videos (list)
  synthetic    no root; num_videos, frames_per_video, frame_width, frame_height, seed,
               min_object_size, max_object_size, max_scale_change, max_distractors,
               occlusion_probability

config keys (type, default):
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='transt-train', formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Train the TransT tracker (Chen et al., CVPR 2021) with the authors\' recipe.',
        epilog=EPILOG + '\n'.join(describe()))
    parser.add_argument('config', nargs='?', help='YAML config file (defaults for every key left out)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE',
                        help='override a config key, e.g. --set optim.lr=1e-4 (value parsed as YAML; repeatable)')
    parser.add_argument('--print-config', action='store_true', help='print the resolved config and exit')
    parser.add_argument('--log-level', default='INFO', choices=['DEBUG', 'INFO', 'WARNING', 'ERROR'])
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as error:
        print(f'transt-train: error: {error}', file=sys.stderr)
        return 2
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end='')
        return 0
    from .trainer import Trainer

    logging.basicConfig(level=args.log_level, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        trainer = Trainer(config)
    except (FileNotFoundError, ValueError) as error:
        print(f'transt-train: error: {error}', file=sys.stderr)
        return 2
    try:
        trainer.train()
    except KeyboardInterrupt:
        return 130
    finally:
        trainer.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
