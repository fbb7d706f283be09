"""Readers for the standard tracking-benchmark folder layouts, and result/submission writers.

Every reader returns a list of :class:`Sequence`. Ground truth is ``(N, 4)`` float
``x, y, w, h`` (top-left, pixels), one row per frame; rows that the benchmark does not
publish (test splits give only the first box) are NaN and ``fully_annotated`` is False.

Frame paths are built from the benchmark's numbering (``0001.jpg``, ``00000001.jpg``, ``0.jpg``
...), one per annotation row, so a frame file that is absent on disk keeps its slot: its
index is listed in ``missing_frames`` and a warning is logged instead of raising. A missing
dataset root raises :class:`FileNotFoundError`; a malformed box file raises
:class:`~transt_ros.common.box_files.BoxFileError` naming the file and the line (the annotation files
that training reads too are read by :mod:`transt_ros.common.benchmark_annotations`, with that
contract); sequence folders without ground truth are skipped with a warning that names them and are
listed in the returned :class:`SequenceList`'s ``skipped``, and :func:`no_sequence_hint` explains an
empty result.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..common.benchmark_annotations import (
    GOT10K_META_FILE,
    GROUND_TRUTH_FILE,
    read_got10k_absent,
    read_got10k_resolution,
    read_lasot_sequence,
    read_trackingnet_sequence,
    require_dir,
    trackingnet_annotation_file,
)
from ..common.box_files import read_box_file, read_value_file
from ..common.files import atomic_write_text
from . import vot_layout

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
    resolution: tuple[int, int] | None = None
    """``(width, height)`` of the frames when the data set states it (GOT-10k ``meta_info.ini``)."""

    def __len__(self) -> int:
        return len(self.frame_paths)

    @property
    def visible(self) -> np.ndarray | None:
        """``(N,)`` bool mask for :func:`metrics.evaluate_sequence`, or None."""
        return None if self.absent is None else ~self.absent


class SequenceList(list):
    """The sequences a reader found (a list of :class:`Sequence`) and ``skipped``: the sequence
    folders it left out because they hold no ground truth."""

    def __init__(self, sequences: Iterable[Sequence] = (), skipped: Iterable[Path] = ()):
        super().__init__(sequences)
        self.skipped: tuple[Path, ...] = tuple(skipped)


def _skipped_folders(what: str, folders: list[Path], missing: str) -> list[Path]:
    """``folders``, after a warning that names them."""
    if folders:
        names = ', '.join(folder.name for folder in folders[:10]) + (' ...' if len(folders) > 10 else '')
        LOGGER.warning('%s: skipped %d folder(s) without %s: %s', what, len(folders), missing, names)
    return folders


def no_sequence_hint(kind: str, root: Path, split: str | None = None, skipped: SequenceOf[Path] = ()) -> str:
    """Why a reader found nothing in ``root``, with the root to pass instead when it is a sequence folder;
    ``skipped``: the folders the reader skipped (:attr:`SequenceList.skipped`)."""
    root = Path(root)
    annotations = {'otb': 'groundtruth_rect*.txt', 'lasot': 'groundtruth.txt', 'got10k': 'groundtruth.txt',
                   'uav123': '*.txt', 'nfs': '*.txt', 'trackingnet': '*.txt', 'vot': 'groundtruth.txt'}
    pattern = annotations.get(kind, 'groundtruth*.txt')
    layout = {'otb': '<root>/<sequence>/groundtruth_rect.txt',
              'lasot': '<root>/<class>/<class>-<n>/groundtruth.txt',
              'got10k': f'<root>/{split or "val"}/<sequence>/groundtruth.txt',
              'trackingnet': f'<root>/{split or "TEST"}/anno/<sequence>.txt',
              'uav123': '<root>/anno/UAV123/<sequence>.txt', 'nfs': '<root>/<sequence>/30/<sequence>.txt',
              'vot': '<root>/<sequence>/groundtruth.txt and color/00000001.jpg ...'}[kind]
    hint = f'no sequence found in {root} ({kind}: expected {layout})'
    if kind in ('otb', 'lasot', 'got10k', 'vot') and list(root.glob(pattern)):
        parent = root.parent.parent if kind == 'got10k' and root.parent.name == (split or 'val') else root.parent
        if kind == 'lasot':
            parent = root.parent.parent
        hint += f'; {root} looks like one sequence folder: pass the data set root instead, e.g. {parent}'
    elif kind == 'lasot' and list(root.glob('*/groundtruth.txt')):
        hint += f'; {root} looks like one class folder: pass the data set root instead, e.g. {root.parent}'
    if skipped:
        hint += f' ({len(skipped)} folder(s) skipped for lack of ground truth)'
    return hint


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


def read_otb(root: Path, names: Iterable[str] | None = None) -> SequenceList:
    """OTB-100: ``<root>/<seq>/img/0001.jpg``, ``<seq>/groundtruth_rect[.k].txt``.

    Sequences with several targets (``groundtruth_rect.1.txt``, ``.2.txt``) become
    ``<seq>.1``, ``<seq>.2``. Extra frames past the annotation are ignored (Football1 ...).
    """
    root = require_dir(root, 'OTB root')
    wanted = set(names) if names is not None else None
    skipped = _skipped_folders(f'OTB {root}', sorted(p for p in root.iterdir() if p.is_dir() and (p / 'img').is_dir()
                                                     and not list(p.glob('groundtruth_rect*.txt'))),
                               'groundtruth_rect.txt')
    sequences = SequenceList(skipped=skipped)
    for annotation in sorted(root.glob('*/groundtruth_rect*.txt')):
        folder = annotation.parent.name
        target = annotation.name[len('groundtruth_rect'):-len('.txt')].strip('.')
        name = f'{folder}.{target}' if target else folder
        if wanted is not None and name not in wanted and folder not in wanted:
            continue
        ground_truth = read_box_file(annotation)
        paths, missing = _numbered_frames(annotation.parent / 'img', len(ground_truth),
                                          OTB_FIRST_FRAME.get(folder, 1), 4)
        sequences.append(Sequence(name, paths, ground_truth, missing_frames=missing))
    return sequences


def read_lasot(root: Path, sequence_list: Path | None = None) -> SequenceList:
    """LaSOT: ``<root>/<class>/<class>-<idx>/img/00000001.jpg`` and ``groundtruth.txt``.

    ``sequence_list``: text file of sequence names to keep (one per line); defaults to
    ``<root>/testing_set.txt`` when that file exists, else every sequence found. The LaSOT
    toolkit scores frames whose ground truth is positive; absent targets are annotated
    ``0,0,0,0`` and are therefore excluded by :func:`metrics.valid_frame_mask`, so ``absent``
    is None. ``full_occlusion`` / ``out_of_view`` go to ``attributes``
    (:func:`~transt_ros.common.benchmark_annotations.read_lasot_sequence`).
    """
    root = require_dir(root, 'LaSOT root')
    if sequence_list is None and (root / 'testing_set.txt').is_file():
        sequence_list = root / 'testing_set.txt'
    if sequence_list is not None:
        names = [line.strip() for line in Path(sequence_list).read_text().splitlines() if line.strip()]
        folders = [root / name.rsplit('-', 1)[0] / name for name in names]
    else:
        folders = sorted(p for p in root.glob('*/*') if p.is_dir() and (p / 'img').is_dir())
        folders = sorted(set(folders) | {p.parent for p in root.glob(f'*/*/{GROUND_TRUTH_FILE}')})
    sequences = SequenceList(skipped=_skipped_folders(
        f'LaSOT {root}', [f for f in folders if not (f / GROUND_TRUTH_FILE).is_file()], GROUND_TRUTH_FILE))
    for folder in folders:
        if not (folder / GROUND_TRUTH_FILE).is_file():
            continue
        annotation = read_lasot_sequence(folder)
        paths, missing = _numbered_frames(folder / 'img', len(annotation), 1, 8)
        sequences.append(Sequence(folder.name, paths, annotation.boxes, missing_frames=missing,
                                  attributes=annotation.attributes))
    return sequences


def read_got10k(root: Path, split: str = 'val') -> SequenceList:
    """GOT-10k: ``<root>/<split>/<seq>/00000001.jpg``, ``groundtruth.txt``, ``absence.label``, ``cover.label``.

    ``absent``: ``absence.label == 1`` or ``cover.label == 0``
    (:func:`~transt_ros.common.benchmark_annotations.read_got10k_absent`); the toolkit drops those
    frames and the first frame before AO/SR. ``test`` sequences have only the first box.
    """
    root = Path(root)
    if not (root / split).is_dir() and (root / GROUND_TRUTH_FILE).is_file():
        raise FileNotFoundError(no_sequence_hint('got10k', root, split))
    if not (root / split).is_dir() and list(root.glob(f'*/{GROUND_TRUTH_FILE}')):
        raise FileNotFoundError(f'GOT-10k {split} split not found: {root / split} is not a directory; {root} looks '
                                f'like a split folder itself: pass its parent {root.parent} with --split {root.name}')
    split_dir = require_dir(root / split, f'GOT-10k {split} split')
    if (split_dir / 'list.txt').is_file():
        names = (split_dir / 'list.txt').read_text().split()
        folders = [split_dir / name for name in names]
    else:
        folders = sorted(p for p in split_dir.iterdir() if p.is_dir())
    sequences = SequenceList(skipped=_skipped_folders(
        f'GOT-10k {split_dir}', [f for f in folders if not (f / GROUND_TRUTH_FILE).is_file()], GROUND_TRUTH_FILE))
    for folder in folders:
        if not (folder / GROUND_TRUTH_FILE).is_file():
            continue
        boxes = read_box_file(folder / GROUND_TRUTH_FILE)
        if len(boxes) == 0:
            LOGGER.warning('%s has an empty annotation; skipped', folder)
            continue
        fully_annotated = len(boxes) > 1
        n_frames = len(boxes) if fully_annotated else (_highest_frame_number(folder) or 1)
        paths, missing = _numbered_frames(folder, n_frames, 1, 8)
        ground_truth = boxes if fully_annotated else _first_box_only(boxes, n_frames)
        sequences.append(Sequence(folder.name, paths, ground_truth, read_got10k_absent(folder, n_frames), missing,
                                  fully_annotated, resolution=read_got10k_resolution(folder / GOT10K_META_FILE)))
    return sequences


def read_trackingnet(root: Path, split: str = 'TEST') -> SequenceList:
    """TrackingNet: ``<root>/<split>/frames/<seq>/0.jpg``, ``<split>/anno/<seq>.txt``.

    The ``TEST`` annotation holds only the first box; training chunks are fully annotated.
    """
    split_dir = require_dir(Path(root) / split, f'TrackingNet {split} split')
    frame_dirs = sorted(p for p in (split_dir / 'frames').glob('*') if p.is_dir())
    sequences = SequenceList(skipped=_skipped_folders(
        f'TrackingNet {split_dir}', [p for p in frame_dirs if not trackingnet_annotation_file(split_dir, p.name)
                                     .is_file()], 'an anno/<sequence>.txt'))
    for annotation in sorted((split_dir / 'anno').glob('*.txt'), key=lambda p: p.stem):
        frame_dir = split_dir / 'frames' / annotation.stem
        boxes = read_trackingnet_sequence(split_dir, annotation.stem).boxes
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


def read_uav123(root: Path, frame_ranges: dict[str, tuple[str, int]] | None = None) -> SequenceList:
    """UAV123: ``<root>/data_seq/UAV123/<seq>/000001.jpg``, ``<root>/anno/UAV123/<seq>.txt``.

    NaN rows mark an absent target and set ``absent``. ``frame_ranges`` maps an annotation
    name to ``(folder, first_frame_number)`` for the split sequences of ``configSeqs.m``
    (e.g. ``'bird1_2': ('bird1', 775)``); by default the folder is the annotation's name
    and numbering starts at 1.
    """
    root = require_dir(root, 'UAV123 root')
    frame_ranges = frame_ranges or {}
    sequences = SequenceList()
    for annotation in sorted((root / 'anno' / 'UAV123').glob('*.txt')):
        folder, first = frame_ranges.get(annotation.stem, (annotation.stem, 1))
        ground_truth = read_box_file(annotation)
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


def read_nfs(root: Path, fps: int = 30) -> SequenceList:
    """Need for Speed at 30 fps: ``<root>/<seq>/30/<seq>/00001.jpg``, ``<root>/<seq>/30/<seq>.txt``.

    Some 30 fps annotation files still hold the 240 fps rows; like the got10k ``NfS`` reader
    they are subsampled every 8th row, and an off-by-one length difference is trimmed.
    """
    root = require_dir(root, 'NFS root')
    sequences = SequenceList()
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


def read_vot(root: Path) -> SequenceList:
    """The VOT toolkit's layout (:mod:`.vot_layout`): ``<root>/<seq>/color/00000001.jpg`` (or the
    ``channels.color`` pattern of ``<seq>/sequence``), ``<seq>/groundtruth.txt`` (rectangles, or polygons
    taken as their bounding rectangles); the sequences of ``<root>/list.txt`` when it exists, else every
    folder. Frames past the ground truth get NaN rows (not annotated, as the toolkit pads them).
    """
    root = require_dir(root, 'VOT root')
    list_file = root / vot_layout.VOT_LIST_FILE
    if list_file.is_file():
        folders = [root / name for name in list_file.read_text().split()]
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    sequences = SequenceList(skipped=_skipped_folders(
        f'VOT {root}', [f for f in folders if not (f / vot_layout.VOT_GROUND_TRUTH_FILE).is_file()],
        vot_layout.VOT_GROUND_TRUTH_FILE))
    for folder in folders:
        if not (folder / vot_layout.VOT_GROUND_TRUTH_FILE).is_file():
            continue
        boxes = vot_layout.read_region_file(folder / vot_layout.VOT_GROUND_TRUTH_FILE)
        n_frames = max(len(boxes), vot_layout.count_frames(folder))
        ground_truth = np.full((n_frames, 4), np.nan)
        ground_truth[:len(boxes)] = boxes
        paths = vot_layout.frame_paths(folder, n_frames)
        missing = tuple(i for i, path in enumerate(paths) if not path.is_file())
        if missing:
            LOGGER.warning('%s: %d of %d frames missing (first: %s)', folder, len(missing), n_frames,
                           paths[missing[0]].name)
        sequences.append(Sequence(folder.name, paths, ground_truth, missing_frames=missing))
    return sequences


DATASET_READERS: dict[str, Callable[..., SequenceList]] = {
    'otb': read_otb, 'lasot': read_lasot, 'got10k': read_got10k,
    'trackingnet': read_trackingnet, 'uav123': read_uav123, 'nfs': read_nfs, 'vot': read_vot,
}


def read_dataset(kind: str, root: Path, **options) -> SequenceList:
    """Dispatch to the reader named ``kind`` (a key of :data:`DATASET_READERS`)."""
    if kind not in DATASET_READERS:
        raise ValueError(f'unknown dataset {kind!r}; known: {sorted(DATASET_READERS)}')
    return DATASET_READERS[kind](root, **options)


def _submission_boxes(boxes) -> np.ndarray:
    """Dropped frames (NaN rows) become ``0,0,0,0``: IoU 0, a failure, as in the metrics."""
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return np.where(np.all(np.isfinite(boxes), axis=1, keepdims=True), boxes, 0.0)


def _rows_text(rows, fmt: str) -> str:
    rows = np.asarray(rows, dtype=float)
    return ''.join((','.join(fmt % value for value in np.atleast_1d(row))) + '\n' for row in rows)


def write_results(directory: Path, name: str, boxes, times_s=None) -> Path:
    """Results in the OTB toolkit's layout (got10k ``ExperimentOTB``): ``<directory>/<name>.txt``
    (``x,y,w,h`` rows, ``nan`` for dropped frames) and, with ``times_s``, ``<directory>/times/
    <name>_time.txt`` (seconds per frame, init frame included, ``nan`` where untimed). Each file is
    written atomically, the times first: a boxes file on disk means the sequence is finished."""
    directory = Path(directory)
    if times_s is not None:
        atomic_write_text(directory / 'times' / f'{name}_time.txt', _rows_text(times_s, '%.8f'))
    return atomic_write_text(directory / f'{name}.txt', _rows_text(np.asarray(boxes, dtype=float).reshape(-1, 4),
                                                                  '%.4f'))


def read_run_results(directory: Path, name: str, n_frames: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(boxes (N, 4), times (N,))`` that :func:`write_results` wrote for ``name``, or None when there
    are none or they do not have ``n_frames`` rows (an unfinished or foreign file: redo it)."""
    path = Path(directory) / f'{name}.txt'
    if not path.is_file():
        return None
    boxes = read_box_file(path)
    times = read_value_file(Path(directory) / 'times' / f'{name}_time.txt')
    if len(boxes) != n_frames or (times is not None and len(times) != n_frames):
        LOGGER.warning('%s: %d rows for %d frames; running the sequence again', path, len(boxes), n_frames)
        return None
    return boxes, np.full(n_frames, np.nan) if times is None else times


def read_results(directory: Path) -> dict[str, np.ndarray]:
    """Inverse of :func:`write_results`: ``{name: (N, 4) boxes}``."""
    directory = require_dir(directory, 'results directory')
    return {path.stem: read_box_file(path) for path in sorted(directory.glob('*.txt'))
            if not path.stem.endswith('_time')}


def write_got10k_results(directory: Path, name: str, boxes, times_s) -> Path:
    """The got10k toolkit's layout (``ExperimentGOT10k``), which its ``report`` reads for any split:
    ``<directory>/<name>/<name>_001.txt`` and ``<directory>/<name>/<name>_time.txt``; dropped frames
    become ``0,0,0,0`` (IoU 0, as this project scores them), untimed frames time 0 (ignored)."""
    return write_got10k_submission(directory, name, boxes, times_s)


def write_got10k_submission(directory: Path, name: str, boxes, times_s) -> Path:
    """GOT-10k test server layout: ``<dir>/<seq>/<seq>_001.txt`` and ``<dir>/<seq>/<seq>_time.txt``.

    Boxes ``%.3f`` comma-separated (got10k ``ExperimentGOT10k._record``); times in seconds,
    non-finite times written as 0 (the toolkit ignores times ``<= 0``).
    """
    sequence_dir = Path(directory) / name
    times = np.asarray(times_s, dtype=float)
    atomic_write_text(sequence_dir / f'{name}_time.txt', _rows_text(np.where(np.isfinite(times), times, 0.0), '%.8f'))
    return atomic_write_text(sequence_dir / f'{name}_001.txt', _rows_text(_submission_boxes(boxes), '%.3f'))


def write_trackingnet_submission(directory: Path, name: str, boxes) -> Path:
    """TrackingNet server layout: ``<dir>/<seq>.txt``, ``x,y,w,h`` per frame (zip the folder)."""
    return atomic_write_text(Path(directory) / f'{name}.txt', _rows_text(_submission_boxes(boxes), '%.4f'))


RUN_SETTINGS_FILE = 'run_settings.json'


def check_run_settings(results_dir: Path, settings: dict, overwrite: bool) -> None:
    """Keep ``settings`` (what the stored runs depend on) in ``<results_dir>/run_settings.json``;
    refuse to resume runs made with other settings (the caller's ``overwrite`` redoes them)."""
    path = Path(results_dir) / RUN_SETTINGS_FILE
    settings = json.loads(json.dumps(settings, default=str))
    if path.is_file() and not overwrite:
        stored = json.loads(path.read_text())
        changed = sorted(key for key in set(stored) | set(settings) if stored.get(key) != settings.get(key))
        if changed:
            raise ValueError(f'{path.parent} holds runs made with other settings ({", ".join(changed)}: '
                             f'{[stored.get(key) for key in changed]} then, {[settings.get(key) for key in changed]} '
                             'now); pass --overwrite to run again, or choose another --out')
    atomic_write_text(path, json.dumps(settings, indent=2))
