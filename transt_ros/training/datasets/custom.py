"""Your own videos: ``<root>/<video>/frames/*.jpg|*.png`` and ``<root>/<video>/boxes.txt``.

Frames are taken in file-name order (zero-pad the numbers: ``000001.jpg``). Line ``i`` of
``boxes.txt`` is the box of the ``i``-th frame as ``x,y,w,h`` in pixels (top-left corner;
commas, spaces or tabs). An empty line, ``nan`` values or w/h <= 0 mark the target absent.
Frames beyond the last line have no box (absent); lines beyond the last frame refer to
missing frames, which are skipped and counted when drawn. The file is read as every box file
(:func:`transt_ros.common.box_files.read_box_file`): a line that is not 4 numbers is an
``AnnotationError`` naming the file and the line, and the video is skipped.
"""
from __future__ import annotations

import os

import numpy as np

from ...common.benchmark_annotations import require_dir
from ...common.box_files import read_box_file
from .base import AnnotationError, FrameError, SequenceInfo, TrackingDataset, read_annotation, read_image

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


class CustomVideos(TrackingDataset):
    def __init__(self, root: str, videos: list[str] | None = None):
        self.root = require_dir(root, 'custom root')
        if videos is None:
            videos = sorted(entry.name for entry in os.scandir(self.root)
                            if entry.is_dir() and (self.root / entry.name / 'boxes.txt').is_file())
        self.names = videos
        self._frames: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def sequence_name(self, index: int) -> str:
        return self.names[index]

    def _frame_files(self, index: int) -> list[str]:
        if index not in self._frames:
            folder = self.root / self.names[index] / 'frames'
            files = os.listdir(folder) if folder.is_dir() else []
            self._frames[index] = sorted(name for name in files if name.lower().endswith(IMAGE_SUFFIXES))
        return self._frames[index]

    def sequence_info(self, index: int) -> SequenceInfo:
        boxes = read_annotation(read_box_file, self.root / self.names[index] / 'boxes.txt')
        if len(boxes) == 0:
            raise AnnotationError(f'{self.names[index]}/boxes.txt: empty')
        valid = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        boxes[~valid] = np.nan
        return SequenceInfo(boxes, valid)

    def frame(self, index: int, frame_id: int) -> np.ndarray:
        files = self._frame_files(index)
        folder = self.root / self.names[index] / 'frames'
        if frame_id >= len(files):
            raise FrameError(f'{folder}: no frame {frame_id} (only {len(files)} files)', 'missing_frame')
        return read_image(folder / files[frame_id])
