"""COCO detection annotations (pycocotools) as one-frame "videos", one per object.

Pairs are made by transforming the one image twice (the search crop's jitter), as the
authors did. Crowd annotations are left out.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from ...common.benchmark_annotations import require_dir
from .base import SequenceInfo, TrackingDataset, make_sequence_info, read_image


class Coco(TrackingDataset):
    """``annotation_file`` and ``image_dir`` are relative to ``root`` unless absolute."""

    is_video = False

    def __init__(self, root: str, annotation_file: str = 'annotations/instances_train2017.json',
                 image_dir: str = 'train2017', min_area: float = 0.0):
        from pycocotools.coco import COCO

        self.root = require_dir(root, 'coco root')
        annotation_path = self.root / annotation_file
        if not annotation_path.is_file():
            raise FileNotFoundError(f'coco: annotation file {annotation_path} not found')
        self.image_dir = self.root / image_dir
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(annotation_path))
        self.files, self.boxes, self.ids = [], [], []
        for annotation in coco.dataset.get('annotations', []):
            if annotation.get('iscrowd', 0) or annotation.get('area', np.inf) < min_area:
                continue
            image = coco.imgs.get(annotation['image_id'])
            if image is None:
                continue
            self.files.append(image['file_name'])
            self.boxes.append(annotation.get('bbox') or [np.nan] * 4)
            self.ids.append(annotation['id'])
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.files)

    def sequence_name(self, index: int) -> str:
        return f'annotation-{self.ids[index]}'

    def sequence_info(self, index: int) -> SequenceInfo:
        return make_sequence_info(self.boxes[index:index + 1])

    def frame(self, index: int, frame_id: int) -> np.ndarray:
        return read_image(Path(self.image_dir) / self.files[index])
