"""Readers of the training sources; every one is a :class:`TrackingDataset`."""
from __future__ import annotations

from ..synthetic import SyntheticVideos
from .base import AnnotationError, DataError, FrameError, SequenceInfo, TrackingDataset
from .coco import Coco
from .custom import CustomVideos
from .got10k import Got10k
from .lasot import Lasot
from .trackingnet import TrackingNet

DATASET_KINDS = {
    'got10k': Got10k,
    'lasot': Lasot,
    'trackingnet': TrackingNet,
    'coco': Coco,
    'custom': CustomVideos,
    'synthetic': SyntheticVideos,
}


def build_dataset(kind: str, root: str = '', options: dict | None = None) -> TrackingDataset:
    return DATASET_KINDS[kind](root, **(options or {}))


__all__ = ['DATASET_KINDS', 'AnnotationError', 'Coco', 'CustomVideos', 'DataError', 'FrameError', 'Got10k',
           'Lasot', 'SequenceInfo', 'SyntheticVideos', 'TrackingDataset', 'TrackingNet', 'build_dataset']
