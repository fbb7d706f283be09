"""What every training source provides, and the tolerant file readers they share.

Boxes are (x, y, w, h) in pixels, (x, y) the top-left corner, as in the benchmark files.
A frame counts as *visible* when its box is finite with w, h > 0 and the target is not
flagged absent/occluded/out of view. Problems with the data never crash training: a
reader raises :class:`FrameError` or :class:`AnnotationError` with a ``reason`` and the
sampler skips the draw and counts it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...common import box_files
from ...common.box_files import parse_box_lines
from ...common.images import ImageReadError, read_image_rgb


class DataError(Exception):
    """A sample that cannot be used; ``reason`` is one of ``sampler.SKIP_REASONS``."""

    reason = 'unreadable_image'

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class FrameError(DataError):
    """A frame is missing (``missing_frame``) or cannot be decoded (``unreadable_image``)."""


class AnnotationError(DataError):
    """A sequence's annotation is missing or unparseable."""

    reason = 'bad_annotation'


@dataclass
class SequenceInfo:
    boxes: np.ndarray
    """(N, 4) float64 boxes (x, y, w, h); rows of invalid boxes are NaN."""
    visible: np.ndarray
    """(N,) bool."""
    num_invalid_boxes: int = 0
    """Rows whose box is malformed/NaN/non-positive while the target is not flagged absent."""


class TrackingDataset(ABC):
    """A set of annotated sequences; image datasets (COCO) are sequences of one frame."""

    is_video = True

    @abstractmethod
    def __len__(self) -> int:
        """Number of sequences."""

    @abstractmethod
    def sequence_name(self, index: int) -> str:
        ...

    @abstractmethod
    def sequence_info(self, index: int) -> SequenceInfo:
        """Boxes and visibility of every frame; raises ``AnnotationError``."""

    @abstractmethod
    def frame(self, index: int, frame_id: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB; raises ``FrameError``."""




def read_text_lines(path: Path) -> list[str]:
    try:
        return box_files.read_lines(path)
    except box_files.BoxFileError as error:
        raise AnnotationError(str(error)) from None


def read_boxes(path: Path) -> np.ndarray:
    """(N, 4) boxes from a ground-truth file (tolerant: a malformed line is a NaN row);
    raises ``AnnotationError`` if unreadable."""
    boxes, _ = parse_box_lines(read_text_lines(path))
    return boxes


def read_values(path: Path, length: int, fill: float = 0.0) -> np.ndarray | None:
    """Numbers, one per frame (one per line or comma separated), padded with ``fill`` or cut
    to ``length``; None if there is no such file."""
    try:
        return box_files.read_value_file(path, length, fill)
    except box_files.BoxFileError as error:
        raise AnnotationError(str(error)) from None


def read_flags(path: Path, length: int) -> np.ndarray | None:
    """0/1 flags per frame (missing trailing entries: 0); None if there is no such file."""
    values = read_values(path, length)
    return None if values is None else values > 0


def make_sequence_info(boxes: np.ndarray, hidden: np.ndarray | None = None) -> SequenceInfo:
    """Visibility from box validity and ``hidden`` (absent/occluded/out-of-view) flags."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    valid = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    hidden = np.zeros(len(boxes), dtype=bool) if hidden is None else hidden
    boxes = boxes.copy()
    boxes[~valid] = np.nan
    return SequenceInfo(boxes, valid & ~hidden, int((~valid & ~hidden).sum()))


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; raises ``FrameError`` (missing or undecodable file)."""
    try:
        return read_image_rgb(path)
    except ImageReadError as error:
        if error.missing:
            raise FrameError(f'{path}: missing frame', 'missing_frame') from None
        raise FrameError(str(error), 'unreadable_image') from None


def read_sequence_list(path: str | Path | None) -> list[str] | None:
    """Names from a split file (one per line, ``#`` comments), or None when no file is given."""
    if not path:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: sequence list file not found')
    names = [line.split('#', 1)[0].strip() for line in path.read_text().splitlines()]
    return [name for name in names if name]


def require_dir(root: str | Path, what: str) -> Path:
    if not root:
        raise FileNotFoundError(f'{what}: no root directory given (set "root" for this dataset)')
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f'{what}: root {root} is not a directory')
    return root
