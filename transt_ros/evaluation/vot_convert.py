"""``transt-eval convert-vot``: benchmark sequences or generated scenes -> the VOT toolkit's layout.

    transt-eval convert-vot OUT --dataset KIND ROOT [--sequences a,b] [--split val]
    transt-eval convert-vot OUT --synthetic N [--frames 120] [--width 320] [--height 240] [--preset default]

Writes ``OUT/list.txt`` and per sequence ``OUT/<seq>/color/00000001.<ext>``, ``groundtruth.txt``
(rectangles; ``nan,nan,nan,nan`` where the target is absent or not annotated) and the ``sequence``
file (:mod:`.vot_layout`): a workspace's ``sequences/`` folder for ``vot evaluate``, and what
``transt-eval dataset vot OUT`` reads. A benchmark's frame files are copied as they are (no
re-encoding); generated scenes are written as PNG (lossless) or JPEG (``--image-format``).
"""
from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Sequence as SequenceOf
from pathlib import Path

import numpy as np

from .datasets import Sequence, read_dataset
from .vot_layout import write_frame, write_list_file, write_sequence_files

LOGGER = logging.getLogger(__name__)
FRAME_NAME = '%08d'


def _boxes_with_absent_as_nan(sequence: Sequence) -> np.ndarray:
    boxes = np.array(sequence.ground_truth, dtype=float)
    if sequence.absent is not None:
        boxes[np.asarray(sequence.absent, dtype=bool)] = np.nan
    return boxes


def copy_sequence(sequence: Sequence, root: Path, fps: float = 30.0) -> Path:
    """One benchmark sequence into ``root/<name>``, its frame files copied; FileNotFoundError names a
    missing frame (the toolkit needs every frame)."""
    if sequence.missing_frames:
        raise FileNotFoundError(f'{sequence.name}: frame {sequence.frame_paths[sequence.missing_frames[0]]} is '
                                f'missing ({len(sequence.missing_frames)} missing); the VOT layout needs every frame')
    directory = Path(root) / sequence.name
    suffix = sequence.frame_paths[0].suffix.lower() if sequence.frame_paths else '.jpg'
    (directory / 'color').mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(sequence.frame_paths, start=1):
        shutil.copyfile(path, directory / 'color' / f'{FRAME_NAME % number}{path.suffix.lower()}')
    write_sequence_files(directory, _boxes_with_absent_as_nan(sequence), f'color/{FRAME_NAME}{suffix}', fps)
    return directory


def write_generated_sequence(source, root: Path, image_format: str = 'png', fps: float = 30.0) -> Path:
    """One :class:`~transt_ros.evaluation.make_bag.SequenceSource` (a generated scene) into ``root/<name>``."""
    directory = Path(root) / source.name
    for index in range(len(source)):
        write_frame(directory / 'color' / f'{FRAME_NAME % (index + 1)}.{image_format}', source.frame(index))
    write_sequence_files(directory, source.boxes, f'color/{FRAME_NAME}.{image_format}', fps)
    return directory


def convert_dataset(kind: str, root: Path, out: Path, names: SequenceOf[str] | None = None,
                    split: str | None = None) -> list[str]:
    """The sequences of a benchmark (:func:`~.datasets.read_dataset` kinds) into ``out``; their names."""
    sequences = read_dataset(kind, root, **({'split': split} if split else {}))
    if names:
        unknown = sorted(set(names) - {sequence.name for sequence in sequences})
        if unknown:
            raise ValueError(f'unknown sequence(s) {", ".join(unknown)} in {root}')
        sequences = [sequence for sequence in sequences if sequence.name in set(names)]
    if not sequences:
        raise ValueError(f'no sequence found in {root} ({kind})')
    for sequence in sequences:
        copy_sequence(sequence, out)
    write_list_file(out, [sequence.name for sequence in sequences])
    return [sequence.name for sequence in sequences]


def convert_scenes(sources, out: Path, image_format: str = 'png') -> list[str]:
    """Generated scenes (:func:`~transt_ros.evaluation.make_bag.synthetic_sources`) into ``out``; their names."""
    for source in sources:
        write_generated_sequence(source, out, image_format)
    write_list_file(out, [source.name for source in sources])
    return [source.name for source in sources]


def add_convert_parser(commands) -> None:
    """The ``convert-vot`` subcommand of ``transt-eval``."""
    from .make_bag import add_scene_arguments

    parser = commands.add_parser('convert-vot', help="write sequences in the VOT toolkit's layout",
                                 description=__doc__.split('\n')[0], epilog=__doc__)
    parser.add_argument('out', type=Path, help='output folder (a VOT workspace\'s sequences/)')
    parser.add_argument('--dataset', nargs=2, metavar=('KIND', 'ROOT'), help='a benchmark read by transt-eval dataset')
    parser.add_argument('--synthetic', type=int, metavar='N', help='N generated scenes')
    parser.add_argument('--sequences', help='--dataset: comma-separated sequence names (default: all)')
    parser.add_argument('--split', help='--dataset: got10k / trackingnet split')
    parser.add_argument('--image-format', choices=('png', 'jpg'), default='png', help='--synthetic: frame files')
    add_scene_arguments(parser)


def run_convert(parser, args) -> int:
    """``transt-eval convert-vot``: exit status 0, or 1 with the cause on stderr."""
    if (args.dataset is None) == (args.synthetic is None):
        parser.error('convert-vot: give exactly one source, --dataset KIND ROOT or --synthetic N')
    if args.synthetic is not None and args.synthetic < 1:
        parser.error(f'--synthetic must be at least 1, got {args.synthetic}')
    try:
        if args.dataset:
            names = [name for name in (args.sequences or '').split(',') if name]
            written = convert_dataset(args.dataset[0], Path(args.dataset[1]), args.out, names or None, args.split)
        else:
            from .make_bag import synthetic_sources

            sources = synthetic_sources(args.synthetic, args.frames, args.width, args.height, args.seed, args.preset)
            written = convert_scenes(sources, args.out, args.image_format)
    except (ValueError, OSError) as error:
        print(f'transt-eval: {error}', file=sys.stderr)
        return 1
    print(f'wrote {len(written)} sequence(s) in the VOT layout to {args.out}')
    return 0
