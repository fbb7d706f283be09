"""The warm-up step: one dummy initialise + track before the first real frame.

It pays for allocations and kernel selection up front, and it is the first check that a loaded
model answers at all: a model whose warm-up output is not finite (NaN/Inf weights, a broken
conversion) is refused with :class:`WarmUpError` instead of tracking NaN boxes forever.
Used by the model manager node (configure) and the evaluation's in-process tracker.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .box_limits import finite_result
from .tracker import Tracker


class WarmUpError(RuntimeError):
    """The model's warm-up output is not usable; the message says what was wrong."""


def first_non_finite_parameter(model: torch.nn.Module) -> str | None:
    """The name of the first parameter or buffer holding NaN/Inf, or None."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def warm_up(model_or_tracker: torch.nn.Module | Tracker, device='cpu', precision: str = 'fp32') -> float:
    """One dummy initialise + track on a grey frame; returns the track time [ms].

    ``model_or_tracker``: a :class:`Tracker` (its device and precision are used, its target is
    reset afterwards) or a model prepared with ``prepare_model(model, device, precision)``.
    Raises :class:`WarmUpError` when the score or box is not finite.
    """
    if isinstance(model_or_tracker, Tracker):
        tracker = model_or_tracker
    else:
        tracker = Tracker(model_or_tracker, device=device, precision=precision, prepared=True)
    side = tracker.search_size * 2
    frame = np.full((side, side, 3), 127, np.uint8)
    # No cache of its own. On CUDA graphs it captures the graph of this frame size and batch 1 (one
    # of max_graphs) and leaves its template as that graph's template_source, held and compared by
    # identity, so the next real target refills the graph's template instead of passing for it.
    try:
        tracker.initialize(frame, (side / 4, side / 4, side / 2, side / 2))
        start = time.perf_counter()
        result = tracker.track(frame)
        if tracker.device.type == 'cuda':
            torch.cuda.synchronize(tracker.device)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
    finally:
        tracker.reset()
    if not finite_result(result.box, result.score) or not math.isfinite(result.penalized_score or 0.0):
        if not isinstance(tracker.model, torch.nn.Module):
            cause = f'the {tracker.backend} runtime gave it (check the checkpoint with backend torch)'
        else:
            bad = first_non_finite_parameter(tracker.model)
            cause = f"parameter '{bad}' holds NaN/Inf" if bad else 'the parameters are finite; the forward overflows'
        raise WarmUpError(f'warm-up output is not finite (score {result.score}, box {result.box}): {cause}')
    return elapsed_ms
