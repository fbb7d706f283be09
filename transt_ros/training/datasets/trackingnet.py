"""TrackingNet: ``<root>/TRAIN_<k>/frames/<sequence>/<i>.jpg`` (from 0) and
``<root>/TRAIN_<k>/anno/<sequence>.txt``."""
from __future__ import annotations

import numpy as np

from ...common.benchmark_annotations import read_trackingnet_sequence, require_dir
from .base import AnnotationError, SequenceInfo, TrackingDataset, make_sequence_info, read_annotation, read_image


class TrackingNet(TrackingDataset):
    """``sets`` picks the chunks (TRAIN_0 ... TRAIN_11; the authors used 0-3); default all found."""

    def __init__(self, root: str, sets: list[int] | None = None):
        self.root = require_dir(root, 'trackingnet root')
        if sets is None:
            chunks = sorted((p.name for p in self.root.glob('TRAIN_*') if p.is_dir()),
                            key=lambda name: int(name.split('_')[1]) if name.split('_')[1].isdigit() else -1)
        else:
            chunks = [f'TRAIN_{k}' for k in sets]
        self.sequences = []
        for chunk in chunks:
            anno_dir = self.root / chunk / 'anno'
            if anno_dir.is_dir():
                self.sequences += [(chunk, path.stem) for path in sorted(anno_dir.glob('*.txt'))]

    def __len__(self) -> int:
        return len(self.sequences)

    def sequence_name(self, index: int) -> str:
        return '/'.join(self.sequences[index])

    def sequence_info(self, index: int) -> SequenceInfo:
        chunk, name = self.sequences[index]
        annotation = read_annotation(read_trackingnet_sequence, self.root / chunk, name)
        if len(annotation) == 0:
            raise AnnotationError(f'{chunk}/anno/{name}.txt: empty')
        return make_sequence_info(annotation.boxes)

    def frame(self, index: int, frame_id: int) -> np.ndarray:
        chunk, name = self.sequences[index]
        return read_image(self.root / chunk / 'frames' / name / f'{frame_id}.jpg')
