"""Scoring runs against ground truth: one function for data-set sequences and bag sequences.

A sequence is anything with ``name``, ``ground_truth`` ``(N, 4)``, ``visible`` (``(N,)`` bool or
None) and ``fully_annotated`` (a data set's :class:`~.datasets.Sequence`, a bag's
:class:`~.tracking_bag.BagSequence`); a run is a :class:`~.run_dataset.SequenceRun`.
"""
from __future__ import annotations

from collections.abc import Sequence as SequenceOf

import numpy as np

from ..common.images import read_image_rgb
from .metrics import DatasetMetrics, SequenceMetrics, aggregate, evaluate_sequence, valid_frame_mask
from .run_dataset import SequenceRun


def image_bound(sequence) -> tuple[int, int]:
    """``(width, height)`` of a sequence's frames: as the data set states it (GOT-10k
    ``meta_info.ini``), else read off its first frame on disk."""
    if getattr(sequence, 'resolution', None) is not None:
        return sequence.resolution
    missing = set(getattr(sequence, 'missing_frames', ()))
    for index, path in enumerate(sequence.frame_paths):
        if index not in missing:
            height, width = read_image_rgb(path).shape[:2]
            return width, height
    raise FileNotFoundError(f'{sequence.name}: no frame on disk to read the image size from')


def score_run(run: SequenceRun, sequence, exclude_first_frame: bool = False,
              clip_to_image: bool = False) -> SequenceMetrics:
    """Metrics of one run; ``exclude_first_frame`` drops the init frame and ``clip_to_image`` clips
    the boxes to the image before the IoU (both GOT-10k rules, ``ExperimentGOT10k.report``)."""
    visible = valid_frame_mask(sequence.ground_truth, sequence.visible)
    if exclude_first_frame and run.init_frame >= 0:
        visible[run.init_frame] = False
    return evaluate_sequence(sequence.name, run.boxes, sequence.ground_truth, visible,
                             latencies_s=run.tracking_latencies_s, times_s=run.latencies_s,
                             bound=image_bound(sequence) if clip_to_image else None)


def score_runs(runs: dict[str, SequenceRun], sequences: SequenceOf, exclude_first_frame: bool = False,
               clip_to_image: bool = False) -> DatasetMetrics:
    """Dataset figures over the fully annotated ``sequences`` that have a run."""
    scored = [s for s in sequences if s.fully_annotated and s.name in runs]
    per_sequence = [score_run(runs[s.name], s, exclude_first_frame, clip_to_image) for s in scored]
    pooled_latencies = np.concatenate([runs[s.name].tracking_latencies_s for s in scored]) if scored else []
    return aggregate(per_sequence, pooled_latencies)
