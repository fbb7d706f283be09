"""The VOT toolkit's sequence layout: region files, frame patterns, writing a sequence.

A VOT data set (what ``vot-toolkit`` reads from a workspace's ``sequences/``)::

    <root>/list.txt                  sequence names, one per line (optional for transt-eval)
    <root>/<seq>/sequence            key=value lines: channels.color=color/%08d.jpg, fps=30 ...
    <root>/<seq>/color/00000001.jpg  the frames, numbered from 1
    <root>/<seq>/groundtruth.txt     one region per frame

A region line is a rectangle ``x,y,w,h``, a polygon ``x1,y1,x2,y2,...`` (VOT 2014-2019: four corners)
or a special code (one number, ``0``: not annotated); ``nan`` values mean not annotated too. Evaluation
works on rectangles: a polygon becomes its bounding rectangle (left, top, right - left,
bottom - top, as the toolkit's ``Polygon.convert``). Masks (``m...`` lines, VOT 2020+) are refused
with :class:`~transt_ros.common.box_files.BoxFileError` naming the file and the line.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from ..common.box_files import SEPARATORS, BoxFileError, read_lines
from ..common.files import atomic_write_text

VOT_GROUND_TRUTH_FILE = 'groundtruth.txt'
VOT_SEQUENCE_FILE = 'sequence'
VOT_LIST_FILE = 'list.txt'
VOT_COLOR_KEY = 'channels.color'
DEFAULT_FRAME_PATTERN = 'color/%08d.jpg'
"""The toolkit's default colour channel (a ``sequence`` file without ``channels.color``)."""
LEGACY_FRAME_PATTERN = '%08d.jpg'
"""Sequences without a ``sequence`` file (VOT 2013-2016 downloads): frames beside ``groundtruth.txt``."""


def bounding_rectangle(points) -> np.ndarray:
    """``x, y, w, h`` of the bounding rectangle of polygon coordinates ``x1, y1, x2, y2, ...``."""
    xy = np.asarray(points, dtype=float).reshape(-1, 2)
    left, top = xy.min(axis=0)
    right, bottom = xy.max(axis=0)
    return np.array([left, top, right - left, bottom - top])


def parse_region_line(line: str) -> np.ndarray:
    """One region line -> ``x, y, w, h`` (NaN where not annotated); ValueError says what is wrong."""
    text = line.strip()
    if not text:
        return np.full(4, np.nan)
    if text.startswith('m'):
        raise ValueError('a mask region; only rectangles and polygons are supported')
    fields = [item for item in SEPARATORS.split(text) if item]
    try:
        values = [float(item) for item in fields]
    except ValueError:
        raise ValueError(f'not numbers: {text[:60]!r}') from None
    if len(values) == 1 or any(np.isnan(values)):
        return np.full(4, np.nan)  # a special code (0: unknown, 1: initialise, 2: failure) or nan
    if len(values) == 4:
        return np.array(values)
    if len(values) >= 6 and len(values) % 2 == 0:
        return bounding_rectangle(values)
    raise ValueError(f'{len(values)} numbers: neither a rectangle (4) nor a polygon (an even count >= 6)')


def read_region_file(path: str | os.PathLike) -> np.ndarray:
    """``(N, 4)`` ``x, y, w, h`` of a VOT region file (module docstring); trailing empty lines ignored."""
    lines = read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    boxes = np.full((len(lines), 4), np.nan)
    for row, line in enumerate(lines):
        try:
            boxes[row] = parse_region_line(line)
        except ValueError as error:
            raise BoxFileError(path, str(error), row + 1) from None
    return boxes


def read_properties(path: Path) -> dict[str, str]:
    """The ``key=value`` lines of a ``sequence`` file ({} when there is none)."""
    if not path.is_file():
        return {}
    pairs = (line.split('=', 1) for line in read_lines(path) if '=' in line)
    return {key.strip(): value.strip() for key, value in pairs}


def frame_pattern(sequence_dir: Path) -> str:
    """The colour frames' ``%d`` pattern, relative to ``sequence_dir``: ``channels.color`` of its
    ``sequence`` file (a folder alone means ``<folder>/%08d.jpg``), else the toolkit's defaults."""
    sequence_file = sequence_dir / VOT_SEQUENCE_FILE
    if not sequence_file.is_file():
        return DEFAULT_FRAME_PATTERN if (sequence_dir / 'color').is_dir() else LEGACY_FRAME_PATTERN
    pattern = read_properties(sequence_file).get(VOT_COLOR_KEY, DEFAULT_FRAME_PATTERN).replace('\\', '/')
    if not os.path.splitext(pattern)[1]:
        pattern = pattern.rstrip('/') + '/%08d.jpg'
    if '%' not in pattern:
        raise BoxFileError(sequence_file, f'{VOT_COLOR_KEY}={pattern} has no %d frame number')
    return pattern


def frame_paths(sequence_dir: Path, count: int) -> list[Path]:
    """Frames ``1 .. count`` of ``sequence_dir`` by its :func:`frame_pattern`."""
    pattern = frame_pattern(sequence_dir)
    return [sequence_dir / (pattern % number) for number in range(1, count + 1)]


def count_frames(sequence_dir: Path) -> int:
    """How many consecutive frames from 1 exist on disk."""
    pattern = frame_pattern(sequence_dir)
    count = 0
    while (sequence_dir / (pattern % (count + 1))).is_file():
        count += 1
    return count


def region_rows(boxes) -> str:
    """Region-file text of ``(N, 4)`` boxes: ``x,y,w,h`` lines, ``nan,nan,nan,nan`` where a row is not
    finite (the toolkit reads it as not annotated)."""
    rows = []
    for box in np.asarray(boxes, dtype=float).reshape(-1, 4):
        rows.append(','.join(f'{value:.4f}' for value in box) if np.all(np.isfinite(box)) else 'nan,nan,nan,nan')
    return ''.join(row + '\n' for row in rows)


def write_sequence_files(sequence_dir: Path, boxes, pattern: str, fps: float = 30.0) -> None:
    """``groundtruth.txt`` and the ``sequence`` file of a sequence whose frames follow ``pattern``."""
    atomic_write_text(sequence_dir / VOT_GROUND_TRUTH_FILE, region_rows(boxes))
    properties = {VOT_COLOR_KEY: pattern, 'fps': f'{fps:g}', 'format': 'default', 'channel.default': 'color'}
    atomic_write_text(sequence_dir / VOT_SEQUENCE_FILE, ''.join(f'{k}={v}\n' for k, v in properties.items()))


def write_frame(path: Path, rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    """An RGB ``uint8`` frame as ``path`` (JPEG or PNG, by the suffix); OSError naming the file on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.suffix.lower() in ('.jpg', '.jpeg') else []
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), options):
        raise OSError(f'{path}: cannot write image')


def write_list_file(root: Path, names: Iterable[str]) -> Path:
    """``<root>/list.txt`` naming ``names``, one per line."""
    return atomic_write_text(Path(root) / VOT_LIST_FILE, ''.join(f'{name}\n' for name in names))
