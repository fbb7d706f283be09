"""What every training source provides, and how a problem with its files becomes a skipped sample.

Boxes are (x, y, w, h) in pixels, (x, y) the top-left corner, as in the benchmark files, which are
read by the one reader of their format (:mod:`transt_ros.common.benchmark_annotations`, the
evaluation reads them with it too). A frame counts as *visible* when its box is finite with w, h > 0
and the target is not flagged absent/occluded/out of view. Problems with the data never crash
training: a reader raises :class:`FrameError` or :class:`AnnotationError` (a malformed annotation
file: the message names the file and the line) with a ``reason`` and the sampler skips the draw and
counts it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from ...common.benchmark_annotations import SequenceAnnotation
from ...common.box_files import BoxFileError
from ...common.images import ImageReadError, read_image_rgb

T = TypeVar('T')


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



def read_annotation(reader: Callable[..., T], *args) -> T:
    """``reader(*args)`` (a reader of :mod:`transt_ros.common.benchmark_annotations` or
    :mod:`transt_ros.common.box_files`), its :class:`BoxFileError` as an :class:`AnnotationError`."""
    try:
        return reader(*args)
    except BoxFileError as error:
        raise AnnotationError(str(error)) from None


def hidden_frames(annotation: SequenceAnnotation) -> np.ndarray:
    """``(N,)`` bool: frames where the target is flagged absent or has any attribute flag (LaSOT
    full occlusion / out of view): training draws none of them."""
    hidden = np.zeros(len(annotation), dtype=bool)
    if annotation.absent is not None:
        hidden |= annotation.absent
    for flags in annotation.attributes.values():
        hidden |= flags
    return hidden


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

