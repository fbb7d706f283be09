"""Readers for the standard tracking-benchmark folder layouts, and result/submission writers.

Every reader returns a list of :class:`Sequence`. Ground truth is ``(N, 4)`` float
``x, y, w, h`` (top-left, pixels), one row per frame; rows that the benchmark does not
publish (test splits give only the first box) are NaN and ``fully_annotated`` is False.

Frame paths are built from the benchmark's numbering (``0001.jpg``, ``00000001.jpg``, ``0.jpg``
...), one per annotation row, so a frame file that is absent on disk keeps its slot: its
index is listed in ``missing_frames`` and a warning is logged instead of raising. A missing
dataset root raises :class:`FileNotFoundError`.
"""
from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)


@dataclass
class Sequence:
    """One annotated video.

    ``absent``: ``(N,)`` bool, True where the benchmark's toolkit excludes the frame because
    the target is not visible (GOT-10k ``absence.label``; UAV123 NaN rows), or None.
    ``attributes``: other per-frame ``(N,)`` flags (LaSOT ``full_occlusion``, ``out_of_view``).
    """

    name: str
    frame_paths: list[Path]
    ground_truth: np.ndarray
    absent: np.ndarray | None = None
    missing_frames: tuple[int, ...] = ()
    fully_annotated: bool = True
    attributes: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame_paths)

    @property
    def visible(self) -> np.ndarray | None:
        """``(N,)`` bool mask for :func:`metrics.evaluate_sequence`, or None."""
        return None if self.absent is None else ~self.absent


def _require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f'{what} not found: {path} is not a directory')
    return path


def read_boxes(path: Path) -> np.ndarray:
    """Rows of 4 numbers separated by commas, tabs or spaces (``NaN`` allowed), ``(N, 4)``."""
    text = Path(path).read_text().replace(',', ' ').replace('\t', ' ')
    if not text.strip():
        return np.zeros((0, 4))
    return np.loadtxt(io.StringIO(text), dtype=float, ndmin=2)[:, :4]


def _read_flags(path: Path, length: int) -> np.ndarray | None:
    """0/1 flags separated by commas or newlines, as bool ``(length,)``; None when absent."""
    if not path.is_file():
        return None
    flags = np.array([int(float(v)) for v in re.split(r'[,\s]+', path.read_text().strip()) if v], dtype=bool)
    if len(flags) != length:
        LOGGER.warning('%s has %d flags for %d frames', path, len(flags), length)
        flags = np.pad(flags, (0, max(0, length - len(flags))))[:length]
    return flags


def _numeric_frame_stems(frame_dir: Path, extension: str) -> list[str]:
    """Numeric file stems (as written, padding kept) of the frames in ``frame_dir``."""
    if not frame_dir.is_dir():
        return []
    return [path.stem for path in frame_dir.glob(f'*{extension}') if path.stem.isdigit()]


def _numbered_frames(frame_dir: Path, n_frames: int, first_number: int, default_digits: int,
                     extension: str = '.jpg') -> tuple[list[Path], tuple[int, ...]]:
    """Expected paths ``first_number .. first_number + n_frames - 1`` and the missing indices.

    The zero-padding width is read from the files present (all stems of equal length) or
    falls back to ``default_digits`` (0 means no padding).
    """
    stems = _numeric_frame_stems(frame_dir, extension)
    digits = default_digits
    if len(stems) > 1 and len({len(stem) for stem in stems}) == 1:
        digits = len(stems[0])
    numbers = range(first_number, first_number + n_frames)
    paths = [frame_dir / f'{number:0{digits}d}{extension}' for number in numbers]
    missing = tuple(i for i, path in enumerate(paths) if not path.is_file())
    if missing:
        LOGGER.warning('%s: %d of %d frames missing (first: %s)', frame_dir, len(missing), n_frames,
                       paths[missing[0]].name)
    return paths, missing


def _highest_frame_number(frame_dir: Path, extension: str = '.jpg') -> int | None:
    numbers = [int(stem) for stem in _numeric_frame_stems(frame_dir, extension)]
    return max(numbers) if numbers else None


def _first_box_only(first_box: np.ndarray, n_frames: int) -> np.ndarray:
    ground_truth = np.full((n_frames, 4), np.nan)
    ground_truth[0] = first_box[0]
    return ground_truth


OTB_FIRST_FRAME = {'David': 300}
"""OTB sequences whose annotation starts after frame 1 (tracker_benchmark ``configSeqs``)."""


def read_otb(root: Path, names: Iterable[str] | None = None) -> list[Sequence]:
    """OTB-100: ``<root>/<seq>/img/0001.jpg``, ``<seq>/groundtruth_rect[.k].txt``.

    Sequences with several targets (``groundtruth_rect.1.txt``, ``.2.txt``) become
    ``<seq>.1``, ``<seq>.2``. Extra frames past the annotation are ignored (Football1 ...).
    """
    root = _require_dir(root, 'OTB root')
    wanted = set(names) if names is not None else None
    sequences = []
    for annotation in sorted(root.glob('*/groundtruth_rect*.txt')):
        folder = annotation.parent.name
        target = annotation.name[len('groundtruth_rect'):-len('.txt')].strip('.')
        name = f'{folder}.{target}' if target else folder
        if wanted is not None and name not in wanted and folder not in wanted:
            continue
        ground_truth = read_boxes(annotation)
        paths, missing = _numbered_frames(annotation.parent / 'img', len(ground_truth),
                                          OTB_FIRST_FRAME.get(folder, 1), 4)
        sequences.append(Sequence(name, paths, ground_truth, missing_frames=missing))
    return sequences


def read_lasot(root: Path, sequence_list: Path | None = None) -> list[Sequence]:
    """LaSOT: ``<root>/<class>/<class>-<idx>/img/00000001.jpg`` and ``groundtruth.txt``.

    ``sequence_list``: text file of sequence names to keep (one per line); defaults to
    ``<root>/testing_set.txt`` when that file exists, else every sequence found. The LaSOT
    toolkit scores frames whose ground truth is positive; absent targets are annotated
    ``0,0,0,0`` and are therefore excluded by :func:`metrics.valid_frame_mask`, so ``absent``
    is None. ``full_occlusion`` / ``out_of_view`` go to ``attributes``.
    """
    root = _require_dir(root, 'LaSOT root')
    if sequence_list is None and (root / 'testing_set.txt').is_file():
        sequence_list = root / 'testing_set.txt'
    if sequence_list is not None:
        names = [line.strip() for line in Path(sequence_list).read_text().splitlines() if line.strip()]
        folders = [root / name.rsplit('-', 1)[0] / name for name in names]
    else:
        folders = sorted(p.parent for p in root.glob('*/*/groundtruth.txt'))
    sequences = []
    for folder in folders:
        if not (folder / 'groundtruth.txt').is_file():
            LOGGER.warning('LaSOT sequence %s has no groundtruth.txt; skipped', folder)
            continue
        ground_truth = read_boxes(folder / 'groundtruth.txt')
        paths, missing = _numbered_frames(folder / 'img', len(ground_truth), 1, 8)
        attributes = {}
        for flag_name in ('full_occlusion', 'out_of_view'):
            flags = _read_flags(folder / f'{flag_name}.txt', len(ground_truth))
            if flags is not None:
                attributes[flag_name] = flags
        sequences.append(Sequence(folder.name, paths, ground_truth, missing_frames=missing,
                                  attributes=attributes))
    return sequences


def read_got10k(root: Path, split: str = 'val') -> list[Sequence]:
    """GOT-10k: ``<root>/<split>/<seq>/00000001.jpg``, ``groundtruth.txt``, ``absence.label``.

    ``absent`` comes from ``absence.label`` (or ``cover.label == 0``); the toolkit drops those
    frames and the first frame before AO/SR. ``test`` sequences have only the first box.
    """
    split_dir = _require_dir(Path(root) / split, f'GOT-10k {split} split')
    if (split_dir / 'list.txt').is_file():
        names = (split_dir / 'list.txt').read_text().split()
        folders = [split_dir / name for name in names]
    else:
        folders = sorted(p.parent for p in split_dir.glob('*/groundtruth.txt'))
    sequences = []
    for folder in folders:
        boxes = read_boxes(folder / 'groundtruth.txt')
        if len(boxes) == 0:
            LOGGER.warning('%s has an empty annotation; skipped', folder)
            continue
        fully_annotated = len(boxes) > 1
        n_frames = len(boxes) if fully_annotated else (_highest_frame_number(folder) or 1)
        paths, missing = _numbered_frames(folder, n_frames, 1, 8)
        ground_truth = boxes if fully_annotated else _first_box_only(boxes, n_frames)
        absent = _read_flags(folder / 'absence.label', n_frames)
        if absent is None and (folder / 'cover.label').is_file():
            cover = np.loadtxt(folder / 'cover.label', ndmin=1)
            absent = cover == 0 if len(cover) == n_frames else None
        sequences.append(Sequence(folder.name, paths, ground_truth, absent, missing, fully_annotated))
    return sequences


def read_trackingnet(root: Path, split: str = 'TEST') -> list[Sequence]:
    """TrackingNet: ``<root>/<split>/frames/<seq>/0.jpg``, ``<split>/anno/<seq>.txt``.

    The ``TEST`` annotation holds only the first box; training chunks are fully annotated.
    """
    split_dir = _require_dir(Path(root) / split, f'TrackingNet {split} split')
    sequences = []
    for annotation in sorted((split_dir / 'anno').glob('*.txt'), key=lambda p: p.stem):
        frame_dir = split_dir / 'frames' / annotation.stem
        boxes = read_boxes(annotation)
        if len(boxes) == 0:
            LOGGER.warning('%s has an empty annotation; skipped', annotation)
            continue
        fully_annotated = len(boxes) > 1
        highest = _highest_frame_number(frame_dir)
        n_frames = len(boxes) if fully_annotated else (highest + 1 if highest is not None else 1)
        paths, missing = _numbered_frames(frame_dir, n_frames, 0, 0)
        ground_truth = boxes if fully_annotated else _first_box_only(boxes, n_frames)
        sequences.append(Sequence(annotation.stem, paths, ground_truth, None, missing, fully_annotated))
    return sequences


def read_uav123(root: Path, frame_ranges: dict[str, tuple[str, int]] | None = None) -> list[Sequence]:
    """UAV123: ``<root>/data_seq/UAV123/<seq>/000001.jpg``, ``<root>/anno/UAV123/<seq>.txt``.

    NaN rows mark an absent target and set ``absent``. ``frame_ranges`` maps an annotation
    name to ``(folder, first_frame_number)`` for the split sequences of ``configSeqs.m``
    (e.g. ``'bird1_2': ('bird1', 775)``); by default the folder is the annotation's name
    and numbering starts at 1.
    """
    root = _require_dir(root, 'UAV123 root')
    frame_ranges = frame_ranges or {}
    sequences = []
    for annotation in sorted((root / 'anno' / 'UAV123').glob('*.txt')):
        folder, first = frame_ranges.get(annotation.stem, (annotation.stem, 1))
        ground_truth = read_boxes(annotation)
        paths, missing = _numbered_frames(root / 'data_seq' / 'UAV123' / folder, len(ground_truth), first, 6)
        absent = ~np.all(np.isfinite(ground_truth), axis=1)
        sequences.append(Sequence(annotation.stem, paths, ground_truth, absent, missing))
    return sequences


NFS_FRAME_STEP = 8
"""240 fps annotation rows per 30 fps frame."""


def read_nfs_annotation(path: Path) -> np.ndarray:
    """NFS rows ``id xmin ymin xmax ymax frame lost occluded generated "label"`` -> ``(N, 4)`` xywh."""
    rows = [line.split()[1:5] for line in Path(path).read_text().splitlines() if line.strip()]
    corners = np.array(rows, dtype=float).reshape(-1, 4)
    return np.concatenate([corners[:, :2], corners[:, 2:] - corners[:, :2]], axis=1)


def read_nfs(root: Path, fps: int = 30) -> list[Sequence]:
    """Need for Speed at 30 fps: ``<root>/<seq>/30/<seq>/00001.jpg``, ``<root>/<seq>/30/<seq>.txt``.

    Some 30 fps annotation files still hold the 240 fps rows; like the got10k ``NfS`` reader
    they are subsampled every 8th row, and an off-by-one length difference is trimmed.
    """
    root = _require_dir(root, 'NFS root')
    sequences = []
    for annotation in sorted(root.glob(f'*/{fps}/*.txt')):
        frame_dir = annotation.with_suffix('')
        ground_truth = read_nfs_annotation(annotation)
        n_files = len(list(frame_dir.glob('*.jpg'))) if frame_dir.is_dir() else 0
        if n_files and abs(len(ground_truth) / n_files - NFS_FRAME_STEP) < 1:
            ground_truth = ground_truth[::NFS_FRAME_STEP]
        if n_files and abs(len(ground_truth) - n_files) == 1:
            ground_truth = ground_truth[:min(len(ground_truth), n_files)]
        paths, missing = _numbered_frames(frame_dir, len(ground_truth), 1, 5)
        sequences.append(Sequence(annotation.stem, paths, ground_truth, missing_frames=missing))
    return sequences


DATASET_READERS: dict[str, Callable[..., list[Sequence]]] = {
    'otb': read_otb, 'lasot': read_lasot, 'got10k': read_got10k,
    'trackingnet': read_trackingnet, 'uav123': read_uav123, 'nfs': read_nfs,
}


def read_dataset(kind: str, root: Path, **options) -> list[Sequence]:
    """Dispatch to the reader named ``kind`` (a key of :data:`DATASET_READERS`)."""
    if kind not in DATASET_READERS:
        raise ValueError(f'unknown dataset {kind!r}; known: {sorted(DATASET_READERS)}')
    return DATASET_READERS[kind](root, **options)


def _submission_boxes(boxes) -> np.ndarray:
    """Dropped frames (NaN rows) become ``0,0,0,0``: IoU 0, a failure, as in the metrics."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return np.where(np.all(np.isfinite(boxes), axis=1, keepdims=True), boxes, 0.0)


def write_results(directory: Path, name: str, boxes, times_s=None) -> Path:
    """Generic results: ``<directory>/<name>.txt`` (``x,y,w,h`` rows, ``nan`` for dropped frames)
    and, with ``times_s``, ``<name>_time.txt`` (seconds per frame)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f'{name}.txt'
    np.savetxt(path, np.asarray(boxes, dtype=float).reshape(-1, 4), fmt='%.4f', delimiter=',')
    if times_s is not None:
        np.savetxt(directory / f'{name}_time.txt', np.asarray(times_s, dtype=float), fmt='%.8f')
    return path


def read_results(directory: Path) -> dict[str, np.ndarray]:
    """Inverse of :func:`write_results`: ``{name: (N, 4) boxes}`` (``*_time.txt`` skipped)."""
    directory = _require_dir(directory, 'results directory')
    return {path.stem: read_boxes(path) for path in sorted(directory.glob('*.txt'))
            if not path.stem.endswith('_time')}


def write_got10k_submission(directory: Path, name: str, boxes, times_s) -> Path:
    """GOT-10k test server layout: ``<dir>/<seq>/<seq>_001.txt`` and ``<dir>/<seq>/<seq>_time.txt``.

    Boxes ``%.3f`` comma-separated (got10k ``ExperimentGOT10k._record``); times in seconds,
    non-finite times written as 0 (the toolkit ignores times ``<= 0``).
    """
    sequence_dir = Path(directory) / name
    sequence_dir.mkdir(parents=True, exist_ok=True)
    path = sequence_dir / f'{name}_001.txt'
    np.savetxt(path, _submission_boxes(boxes), fmt='%.3f', delimiter=',')
    times = np.asarray(times_s, dtype=float)
    np.savetxt(sequence_dir / f'{name}_time.txt', np.where(np.isfinite(times), times, 0.0), fmt='%.8f')
    return path


def write_trackingnet_submission(directory: Path, name: str, boxes) -> Path:
    """TrackingNet server layout: ``<dir>/<seq>.txt``, ``x,y,w,h`` per frame (zip the folder)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f'{name}.txt'
    np.savetxt(path, _submission_boxes(boxes), fmt='%.4f', delimiter=',')
    return path
