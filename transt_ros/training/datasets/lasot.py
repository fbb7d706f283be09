"""LaSOT: ``<root>/<class>/<class>-<i>/{img/00000001.jpg, groundtruth.txt, full_occlusion.txt,
out_of_view.txt}``."""
from __future__ import annotations

import os

import numpy as np

from ...common.benchmark_annotations import GROUND_TRUTH_FILE, read_lasot_sequence, require_dir
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


class Lasot(TrackingDataset):
    """``classes`` restricts to some categories; ``sequence_list`` to named sequences
    (``airplane-1`` ...; pytracking's train split is such a list). Visible = valid box and
    neither fully occluded nor out of view."""

    def __init__(self, root: str, classes: list[str] | None = None, sequence_list: str | None = None):
        self.root = require_dir(root, 'lasot root')
        names = read_sequence_list(sequence_list)
        if names is None:
            class_names = classes or sorted(entry.name for entry in os.scandir(self.root) if entry.is_dir())
            names = []
            for class_name in class_names:
                class_dir = self.root / class_name
                if class_dir.is_dir():
                    names += sorted((entry.name for entry in os.scandir(class_dir)
                                     if (class_dir / entry.name / GROUND_TRUTH_FILE).exists()),
                                    key=_natural_key)
        elif classes:
            names = [name for name in names if name.rsplit('-', 1)[0] in classes]
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def sequence_name(self, index: int) -> str:
        return self.names[index]

    def _folder(self, index: int):
        name = self.names[index]
        return self.root / name.rsplit('-', 1)[0] / name

    def sequence_info(self, index: int) -> SequenceInfo:
        folder = self._folder(index)
        annotation = read_annotation(read_lasot_sequence, folder)
        if len(annotation) == 0:
            raise AnnotationError(f'{folder}: empty {GROUND_TRUTH_FILE}')
        return make_sequence_info(annotation.boxes, hidden_frames(annotation))

    def frame(self, index: int, frame_id: int) -> np.ndarray:
        return read_image(self._folder(index) / 'img' / f'{frame_id + 1:08d}.jpg')


def _natural_key(name: str):
    stem, _, number = name.rpartition('-')
    return (stem, int(number)) if number.isdigit() else (name, -1)
