"""GOT-10k: ``<root>/<split>/<sequence>/{00000001.jpg, ..., groundtruth.txt, absence.label}``."""
from __future__ import annotations

import os

import numpy as np

from ...common.benchmark_annotations import GROUND_TRUTH_FILE, read_got10k_sequence, require_dir
from .base import (
    AnnotationError,
    SequenceInfo,
    TrackingDataset,
    hidden_frames,
    make_sequence_info,
    read_annotation,
    read_image,
    read_sequence_list,
)


class Got10k(TrackingDataset):
    """``split`` is the sub-folder (``train``); ``sequence_list`` optionally a file of names
    (e.g. pytracking's ``got10k_vot_train_split.txt`` expressed as names) to restrict to.

    Visible = valid box and not absent (``absence.label`` 1 or ``cover.label`` 0, as the evaluation
    and the got10k toolkit: :mod:`transt_ros.common.benchmark_annotations`).
    """

    def __init__(self, root: str, split: str = 'train', sequence_list: str | None = None):
        base = require_dir(root, 'got10k root')
        self.directory = base / split if (base / split).is_dir() else base
        names = read_sequence_list(sequence_list)
        if names is None:
            names = sorted(entry.name for entry in os.scandir(self.directory)
                           if entry.is_dir() and (self.directory / entry.name / GROUND_TRUTH_FILE).exists())
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def sequence_name(self, index: int) -> str:
        return self.names[index]

    def sequence_info(self, index: int) -> SequenceInfo:
        folder = self.directory / self.names[index]
        annotation = read_annotation(read_got10k_sequence, folder)
        if len(annotation) == 0:
            raise AnnotationError(f'{folder}: empty {GROUND_TRUTH_FILE}')
        return make_sequence_info(annotation.boxes, hidden_frames(annotation))

    def frame(self, index: int, frame_id: int) -> np.ndarray:
        return read_image(self.directory / self.names[index] / f'{frame_id + 1:08d}.jpg')
