"""From the network's score and box maps to the next target state (the authors' rules)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PostprocessParams:
    """Tracker constants; the defaults are the paper's.

    Frozen: a tracker copies ``window_influence`` and ``min_box_side`` into its device-step
    constants and CUDA graphs when it is made (``StepConstants``, ``shared_graph_step``'s key), so
    a later change would reach the host path but not those; make a new tracker instead.
    """

    window_influence: float = 0.49
    template_area_factor: float = 2.0
    search_area_factor: float = 4.0
    min_box_side: float = 10.0

    def __post_init__(self):
        if not 0.0 <= self.window_influence <= 1.0:
            raise ValueError(f'window_influence must be in [0, 1], got {self.window_influence}')
        if self.template_area_factor <= 0 or self.search_area_factor <= 0:
            raise ValueError('area factors must be positive')
        if self.min_box_side < 0:
            raise ValueError('min_box_side must be >= 0')


def hanning_window(side: int) -> np.ndarray:
    """Flattened (side*side,) outer product of ``numpy.hanning(side)``, row-major."""
    hanning = np.hanning(side)
    return np.outer(hanning, hanning).flatten()


def penalize(scores: np.ndarray, window: np.ndarray, window_influence: float) -> np.ndarray:
    return scores * (1 - window_influence) + window * window_influence


def decode_box(normalized_cxcywh: np.ndarray, previous_center, search_side: float) -> np.ndarray:
    """Normalised (cx, cy, w, h) in the search crop -> (cx, cy, w, h) in image pixels."""
    box = np.asarray(normalized_cxcywh, dtype=np.float64) * search_side
    box[0] += previous_center[0] - search_side / 2
    box[1] += previous_center[1] - search_side / 2
    return box


def clip_box(cx, cy, width, height, image_height, image_width, min_side=10.0):
    """Centre into the image, sides into [min_side, image side] (the authors' clipping)."""
    cx = max(0.0, min(cx, image_width))
    cy = max(0.0, min(cy, image_height))
    width = max(min_side, min(width, image_width))
    height = max(min_side, min(height, image_height))
    return cx, cy, width, height
