"""GOT-10k: ``<root>/<split>/<sequence>/{00000001.jpg, ..., groundtruth.txt, absence.label}``."""
from __future__ import annotations

import os

import numpy as np

from .base import (
    AnnotationError,
    SequenceInfo,
    TrackingDataset,
    make_sequence_info,
    read_boxes,
    read_flags,
    read_image,
    read_sequence_list,
    read_values,
    require_dir,
)


class Got10k(TrackingDataset):
    """``split`` is the sub-folder (``train``); ``sequence_list`` optionally a file of names
    (e.g. pytracking's ``got10k_vot_train_split.txt`` expressed as names) to restrict to.

    Visible = valid box and not ``absence.label``; ``cover.label`` (when present) of 0 also
    counts as not visible, as in pytracking.
    """

    def __init__(self, root: str, split: str = 'train', sequence_list: str | None = None):
        base = require_dir(root, 'got10k')
        self.directory = base / split if (base / split).is_dir() else base
        names = read_sequence_list(sequence_list)
        if names is None:
            names = sorted(entry.name for entry in os.scandir(self.directory)
                           if entry.is_dir() and (self.directory / entry.name / 'groundtruth.txt').exists())
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def sequence_name(self, index: int) -> str:
        return self.names[index]

    def sequence_info(self, index: int) -> SequenceInfo:
        folder = self.directory / self.names[index]
        boxes = read_boxes(folder / 'groundtruth.txt')
        if len(boxes) == 0:
            raise AnnotationError(f'{folder}: empty groundtruth.txt')
        hidden = np.zeros(len(boxes), dtype=bool)
        absent = read_flags(folder / 'absence.label', len(boxes))
        if absent is not None:
            hidden |= absent
        cover = read_values(folder / 'cover.label', len(boxes), fill=1.0)
        if cover is not None:
            hidden |= cover <= 0
        return make_sequence_info(boxes, hidden)

    def frame(self, index: int, frame_id: int) -> np.ndarray:
        return read_image(self.directory / self.names[index] / f'{frame_id + 1:08d}.jpg')
