"""``transt-make-bag``: tracking sequences -> a rosbag2 bag a tracker node can be replayed from.

Per frame, all stamped ``start + index / fps`` (sequences follow each other with a gap):

* ``/camera/image_raw`` sensor_msgs/Image ``rgb8``, or with ``--compressed jpeg|png``
  ``/camera/image_raw/compressed`` sensor_msgs/CompressedImage (image_transport's naming);
* ``/camera/camera_info`` sensor_msgs/CameraInfo: an undistorted pinhole camera of the image size;
* ``/ground_truth`` vision_msgs/Detection2D with the image's header, the box, and the sequence
  name in ``id``; where the target is absent (no valid box) the box is empty (``0, 0, 0, 0``,
  LaSOT's convention), so every image has its ground-truth message and its sequence.

The bag's ``custom_data`` lists the sequence names in order (``transt_ros.sequences``, JSON).
Sources: an image folder plus a boxes file (one ``x,y,w,h`` row per frame, files in name order;
the sequence is named after the folder, or after its parent when the folder is ``img`` /
``images`` / ``frames`` as in OTB and LaSOT), a sequence of a benchmark read by
:func:`transt_ros.evaluation.datasets.read_dataset`, or generated scenes
(:class:`transt_ros.training.synthetic.SyntheticVideos`, preset ``default`` or ``hard``; the
training set uses :data:`~transt_ros.common.seeds.TRAINING_SCENE_SEED`, evaluation bags the
held-out seed of their preset).
``--synthetic N --objects K`` writes N scenes with K targets each (:mod:`.multi_object_scenes`:
``/ground_truth`` is then a Detection2DArray, one Detection2D per target with its track name in ``id``).
``--compression message|file`` compresses the bag as ``ros2 bag record --compression-mode ...
--compression-format zstd`` does.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bags import BagError
from ..bags.messages import stamped_detection
from ..common.box_files import read_box_file
from ..common.images import read_image_rgb
from ..common.seeds import HARD_DEMO_SEED, HELD_OUT_DEMO_SEED, MULTI_OBJECT_SEED, TRAINING_SCENE_SEED
from ..training.synthetic import SyntheticVideos
from .datasets import read_dataset
from .multi_object_scenes import generate_scenes, write_multi_object_bag
from .scene_bag import (  # noqa: F401 (the bag layout, re-exported for users of make_bag)
    CAMERA_INFO_TOPIC,
    DEFAULT_START_NS,
    FRAME_ID,
    GROUND_TRUTH_TOPIC,
    IMAGE_TOPIC,
    SEQUENCES_KEY,
    write_scene_bag,
)

LOGGER = logging.getLogger(__name__)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
FRAME_FOLDER_NAMES = ('img', 'imgs', 'image', 'images', 'frames', 'color')
"""Folder names that hold a sequence's frames rather than name it (OTB, LaSOT: ``<seq>/img``)."""


@dataclass
class SequenceSource:
    """A sequence to write: ``boxes`` ``(N, 4)`` (NaN rows where the target is absent) and
    ``frame(i)`` -> RGB uint8 ``(H, W, 3)``."""

    name: str
    boxes: np.ndarray
    frame: Callable[[int], np.ndarray]

    def __len__(self) -> int:
        return len(self.boxes)


def files_source(name: str, frame_paths: Sequence[Path], boxes) -> SequenceSource:
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    if len(boxes) != len(frame_paths):
        LOGGER.warning('%s: %d frames, %d boxes; using the first %d', name, len(frame_paths), len(boxes),
                       min(len(boxes), len(frame_paths)))
    count = min(len(boxes), len(frame_paths))
    paths = list(frame_paths)[:count]
    return SequenceSource(name, boxes[:count], lambda index: read_image_rgb(paths[index]))


def sequence_name_of(folder: Path) -> str:
    """The name of the sequence whose frames are in ``folder``: the folder's name, or its parent's
    when the folder is a frame folder (``<seq>/img``)."""
    folder = Path(folder).resolve()
    return folder.parent.name if folder.name.lower() in FRAME_FOLDER_NAMES else folder.name


def image_folder_source(folder: Path, boxes_file: Path, name: str | None = None) -> SequenceSource:
    """Frames: the images of ``folder`` in name order; boxes: one ``x,y,w,h`` row per frame."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: no such image folder')
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {folder}')
    return files_source(name or sequence_name_of(folder), paths, read_box_file(boxes_file))


def dataset_sources(kind: str, root: Path, names: Sequence[str] | None = None, **options) -> list[SequenceSource]:
    """Sequences of a benchmark (``read_dataset`` kinds), optionally only ``names``."""
    sequences = read_dataset(kind, root, **options)
    if names:
        sequences = [s for s in sequences if s.name in set(names)]
    return [files_source(s.name, s.frame_paths, s.ground_truth) for s in sequences]


SCENE_PRESETS = ('default', 'hard')
"""Presets of generated evaluation scenes: ``default`` (the demo's), ``hard`` (every effect of
:mod:`transt_ros.training.scene_video`: blur, rotation, zoom, occlusion, out of view, look-alikes,
illumination, shake, perspective, deformation, low texture)."""
PRESET_SEEDS = {'default': HELD_OUT_DEMO_SEED, 'hard': HARD_DEMO_SEED}
"""The held-out seed of each preset (the training scenes use :data:`TRAINING_SCENE_SEED`)."""


def synthetic_sources(count: int, frames: int, width: int = 320, height: int = 240,
                      seed: int | None = None, preset: str = 'default') -> list[SequenceSource]:
    """``count`` generated scenes of ``frames`` frames of ``preset`` (:data:`SCENE_PRESETS`); ``seed``
    defaults to the preset's held-out seed (seed 0 is the training set's). Where the target is
    absent (``hard``: fully occluded or out of view) its box is NaN."""
    if preset not in SCENE_PRESETS:
        raise ValueError(f'unknown scene preset {preset!r}; known: {", ".join(SCENE_PRESETS)}')
    videos = SyntheticVideos(num_videos=count, frames_per_video=frames, frame_width=width, frame_height=height,
                             seed=PRESET_SEEDS[preset] if seed is None else seed, preset=preset)
    return [SequenceSource(videos.sequence_name(index), videos.boxes(index).astype(float),
                           lambda frame_id, index=index: videos.frame(index, frame_id))
            for index in range(count)]


def _valid_box(box: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0)


def write_sequences_bag(path: Path, sources: Sequence[SequenceSource], fps: float = 30.0,
                        compressed: str | None = None, storage: str | None = None,
                        start_ns: int = DEFAULT_START_NS, gap_s: float = 1.0, overwrite: bool = False,
                        compression: str = 'none', progress: bool = False,
                        custom_data: dict[str, str] | None = None, compression_mode: str = 'none') -> Path:
    """Write ``sources`` one after the other into a new bag; returns the bag directory.

    ``compressed``: None (rgb8 Image), ``'jpeg'`` or ``'png'`` (CompressedImage).
    ``compression``: MCAP chunk compression (``'none'``, ``'zstd'``, ``'lz4'``).
    ``compression_mode``: rosbag2 zstd compression, ``'none'``, ``'message'`` or ``'file'``.
    ``custom_data``: extra string entries of the bag's ``custom_data``.
    """
    def ground_truth(source, index, stamp):
        box = source.boxes[index] if _valid_box(source.boxes[index]) else np.zeros(4)
        return stamped_detection(box, stamp, FRAME_ID, detection_id=source.name)

    custom = {SEQUENCES_KEY: json.dumps([source.name for source in sources]), **(custom_data or {})}
    return write_scene_bag(path, sources, 'vision_msgs/msg/Detection2D', ground_truth, custom, fps=fps,
                           compressed=compressed, storage=storage, start_ns=start_ns, gap_s=gap_s, overwrite=overwrite,
                           compression=compression, progress=progress, compression_mode=compression_mode)


def add_scene_arguments(parser) -> None:
    """The options of generated scenes, shared by ``transt-make-bag --synthetic`` and ``transt-demo``:
    ``--frames``, ``--width``, ``--height``, ``--preset``, ``--seed``."""
    parser.add_argument('--frames', type=int, default=120, help='frames per generated scene (default 120)')
    parser.add_argument('--width', type=int, default=320)
    parser.add_argument('--height', type=int, default=240)
    parser.add_argument('--preset', choices=SCENE_PRESETS, default='default',
                        help='generated scenes: default, or hard (motion blur, rotation, zoom, occlusion, out of view, '
                             'look-alike distractors, illumination, shake, perspective, deformation, low texture)')
    parser.add_argument('--seed', type=int,
                        help=f'scene seed (default {HELD_OUT_DEMO_SEED}, with --preset hard {HARD_DEMO_SEED}; '
                             f'{TRAINING_SCENE_SEED} is the training set)')


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog='transt-make-bag', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('output', type=Path, help='bag directory, or a .mcap / .db3 file (metadata.yaml goes '
                                                  'next to it)')
    source = parser.add_argument_group('source (one of)')
    source.add_argument('--images', type=Path, help='folder of frames (name order); needs --boxes')
    source.add_argument('--boxes', type=Path, help='ground truth, one x,y,w,h row per frame')
    parser.add_argument('--name', help='--images: sequence name (default: the folder, or its parent for <seq>/img)')
    source.add_argument('--dataset', nargs=2, metavar=('KIND', 'ROOT'),
                        help='a benchmark (otb, lasot, got10k, trackingnet, uav123, nfs); see --sequences')
    source.add_argument('--synthetic', type=int, metavar='N', help='N generated scenes')
    parser.add_argument('--sequences', help='comma-separated sequence names of --dataset')
    parser.add_argument('--split', help='split of --dataset (got10k: val; trackingnet: TEST ...)')
    add_scene_arguments(parser)
    parser.add_argument('--objects', type=int, default=1,
                        help='--synthetic: targets per scene (default 1); above 1: multi-object scenes, ground truth '
                             'a Detection2DArray with one id per target (transt_ros.evaluation.multi_object_scenes)')
    parser.add_argument('--fps', type=float, default=30.0, help='frame rate of the stamps (default 30)')
    parser.add_argument('--compressed', choices=('jpeg', 'png'), help='CompressedImage instead of rgb8 Image')
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), help='default: from the extension, else mcap')
    parser.add_argument('--chunk-compression', choices=('none', 'zstd', 'lz4'), default='none',
                        help='MCAP chunk compression (default none, as rosbag2)')
    parser.add_argument('--compression', choices=('none', 'message', 'file'), default='none',
                        help='rosbag2 zstd compression of each message or of the storage file, as '
                             '`ros2 bag record --compression-mode` (default none)')
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    chosen = [bool(args.images), bool(args.dataset), args.synthetic is not None]
    if sum(chosen) != 1:
        parser.error('give exactly one source: --images/--boxes, --dataset or --synthetic')
    if args.objects != 1 and (args.synthetic is None or not 1 <= args.objects <= 64):
        parser.error('--objects needs --synthetic and a value in 1..64')
    if args.images and not args.boxes:
        parser.error('--images needs --boxes')
    if args.fps <= 0:
        parser.error(f'--fps must be positive, got {args.fps:g}')
    if args.storage == 'sqlite3' and args.chunk_compression != 'none':
        parser.error('--chunk-compression is MCAP only (sqlite3: --compression message|file)')
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        if args.images:
            sources = [image_folder_source(args.images, args.boxes, args.name)]
        elif args.dataset:
            options = {'split': args.split} if args.split else {}
            names = args.sequences.split(',') if args.sequences else None
            sources = dataset_sources(args.dataset[0], Path(args.dataset[1]), names, **options)
        elif args.objects > 1:
            sources = generate_scenes(args.synthetic, args.frames, args.objects, args.width, args.height,
                                      MULTI_OBJECT_SEED if args.seed is None else args.seed)
        else:
            sources = synthetic_sources(args.synthetic, args.frames, args.width, args.height, args.seed, args.preset)
        if not sources:
            print('transt-make-bag: no sequence to write', file=sys.stderr)
            return 1
        write = write_multi_object_bag if args.objects > 1 else write_sequences_bag
        directory = write(args.output, sources, args.fps, args.compressed, args.storage, overwrite=args.overwrite,
                          compression=args.chunk_compression, progress=True, compression_mode=args.compression)
    except (BagError, ValueError, OSError) as error:
        print(f'transt-make-bag: {error}', file=sys.stderr)
        return 1
    frames = sum(len(source) for source in sources)
    print(f'wrote {len(sources)} sequence(s), {frames} frames at {args.fps:g} fps to {args.output} '
          f'(bag directory {directory})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
