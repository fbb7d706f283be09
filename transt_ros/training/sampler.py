"""Training pairs drawn from weighted sources, reproducibly, as pytracking's ``TransTSampler``.

Sample ``i`` of epoch ``e`` is drawn with its own generator seeded by (seed, e * samples per
epoch + i), so the
data does not depend on the number of loader workers, the process, or where a resumed run
starts: :class:`StepBatchSampler` hands out the indices of each (step, rank) and nothing
else needs state. For one draw: a source by weight, a sequence uniformly, a visible
template frame, then a visible search frame within ``max_gap`` frames of it (the window
widened by 5 until one exists); image sources use their one frame twice. Draws that hit
bad data are skipped and counted (``SKIP_REASONS``); each sample carries the counts of the
draws skipped to produce it.
"""
from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .datasets.base import AnnotationError, DataError, SequenceInfo, TrackingDataset
from .processing import PairProcessing

SKIP_REASONS = ('missing_frame', 'unreadable_image', 'bad_annotation', 'invalid_box', 'too_few_visible',
                'degenerate_crop')
"""Counted events. ``invalid_box``: NaN/non-positive box rows in annotations not flagged absent
(counted once per sequence per loader process, when it is first read); the others count
skipped draws (``bad_annotation``: a sequence whose annotation cannot be read, its first error
logged once per loader process with the file and line)."""
LOGGER = logging.getLogger(__name__)


class PairDataset(Dataset):
    """Map-style dataset of training pairs; index = epoch * samples_per_epoch + position."""

    def __init__(self, datasets: list[TrackingDataset], weights: list[float], processing: PairProcessing,
                 samples_per_epoch: int, max_gap: int = 100, seed: int = 0, min_visible_frames: int = 5,
                 min_sequence_length: int = 20, max_attempts: int = 100, cache_size: int = 4096):
        if len(datasets) != len(weights) or not datasets:
            raise ValueError('need one positive weight per dataset')
        self.datasets = datasets
        self.probabilities = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        self.processing = processing
        self.samples_per_epoch = samples_per_epoch
        self.max_gap = max_gap
        self.seed = seed
        self.min_visible_frames = min_visible_frames
        self.min_sequence_length = min_sequence_length
        self.max_attempts = max_attempts
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self._counted: set = set()
        self._unreadable: set = set()

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _sequence_info(self, source: int, sequence: int, skips: np.ndarray) -> SequenceInfo:
        key = (source, sequence)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        try:
            info = self.datasets[source].sequence_info(sequence)
        except AnnotationError as error:
            if key not in self._unreadable:
                self._unreadable.add(key)
                LOGGER.warning('skipping %s of training source %d: %s', self.datasets[source].sequence_name(sequence),
                               source, error)
            raise
        if key not in self._counted:
            self._counted.add(key)
            skips[SKIP_REASONS.index('invalid_box')] += info.num_invalid_boxes
        self._cache[key] = info
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return info

    def _frame_ids(self, visible: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        visible_ids = np.flatnonzero(visible)
        template = int(visible_ids[rng.integers(len(visible_ids))])
        gap = self.max_gap
        while True:
            window = visible_ids[(visible_ids >= template - gap) & (visible_ids <= template + gap)]
            if len(window):
                return template, int(window[rng.integers(len(window))])
            gap += 5

    def _draw(self, rng: np.random.Generator, skips: np.ndarray):
        source = int(rng.choice(len(self.datasets), p=self.probabilities))
        dataset = self.datasets[source]
        if len(dataset) == 0:
            raise RuntimeError(f'training source {source} ({type(dataset).__name__}) has no sequences')
        sequence = int(rng.integers(len(dataset)))
        try:
            info = self._sequence_info(source, sequence, skips)
            visible = info.visible
            if dataset.is_video:
                if visible.sum() < self.min_visible_frames or len(visible) < self.min_sequence_length:
                    raise DataError('too few visible frames', 'too_few_visible')
                template_id, search_id = self._frame_ids(visible, rng)
            else:
                if not visible[:1].any():
                    raise DataError('invalid box', 'too_few_visible')
                template_id = search_id = 0
            template_image = dataset.frame(sequence, template_id)
            search_image = template_image if search_id == template_id else dataset.frame(sequence, search_id)
        except DataError as error:
            skips[SKIP_REASONS.index(error.reason)] += 1
            return None
        sample = self.processing(template_image, info.boxes[template_id], search_image, info.boxes[search_id], rng)
        if sample is None:
            skips[SKIP_REASONS.index('degenerate_crop')] += 1
        return sample

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, int(index)])
        skips = np.zeros(len(SKIP_REASONS), dtype=np.int64)
        for _ in range(self.max_attempts):
            sample = self._draw(rng, skips)
            if sample is not None:
                sample['skips'] = torch.from_numpy(skips)
                return sample
        counts = dict(zip(SKIP_REASONS, skips.tolist()))
        raise RuntimeError(f'no usable training pair after {self.max_attempts} draws (skipped: {counts}); '
                           'check the dataset roots and files')


class StepBatchSampler(Sampler):
    """Index lists for optimizer steps ``start_step`` .. ``end_step - 1`` of one rank.

    Step ``s`` lies in epoch ``s // steps_per_epoch``; rank ``r`` of ``world_size`` takes the
    ``r``-th slice of ``batch_size`` indices of that step, so ranks never share samples.
    """

    def __init__(self, samples_per_epoch: int, batch_size: int, start_step: int, end_step: int,
                 rank: int = 0, world_size: int = 1):
        self.samples_per_epoch, self.batch_size = samples_per_epoch, batch_size
        self.rank, self.world_size = rank, world_size
        self.steps_per_epoch = samples_per_epoch // (batch_size * world_size)
        if self.steps_per_epoch < 1:
            raise ValueError(f'samples_per_epoch ({samples_per_epoch}) is smaller than one global batch '
                             f'({batch_size} x {world_size} processes)')
        self.start_step, self.end_step = start_step, end_step

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)

    def __iter__(self):
        for step in range(self.start_step, self.end_step):
            epoch, position = divmod(step, self.steps_per_epoch)
            first = epoch * self.samples_per_epoch + (position * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed the global generators from the loader's per-worker
    seed (the draws themselves use per-sample generators) and keep each worker single-threaded."""
    import random

    import cv2

    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
