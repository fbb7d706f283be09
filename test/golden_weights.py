"""The golden weight rule: formula-defined weights for any state dict, from its keys and shapes.

The reference outputs in ``test/data/golden`` were produced by the authors' TransT with these
weights, so a model that rebuilds them from the key names and shapes alone can be compared with
the authors' model output for output, without shipping 90 MB of trained weights.

Rule, for the tensor at position ``index`` of the keys sorted as Python strings, with ``n`` elements
``t = 0 .. n-1``:

* ``u = mix(index * 2**32 + t) / 2**53`` after dropping 11 low bits (uniform in [0, 1)), where ``mix``
  is the SplitMix64 finaliser applied to ``s * G + G`` (``G = 0x9E3779B97F4A7C15``, arithmetic mod 2**64);
* ``b = 2u - 1`` (uniform in [-1, 1));
* BatchNorm counters 0; running variances ``1 + 0.25 (b + 1)``; running means ``0.05 b``;
  tensors of two or more dimensions ``b * sqrt(6 / fan_in)`` with ``fan_in = prod(shape[1:])``;
  other ``*weight`` keys ``1 + 0.1 b``; everything else ``0.02 b``.

Values are computed in float64 and cast to the tensor's dtype.
"""
from __future__ import annotations

import math

import numpy as np
import torch

_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_MIX_MULTIPLIERS = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
_MIX_SHIFTS = (30, 27, 31)


def _splitmix64(seeds: np.ndarray) -> np.ndarray:
    """SplitMix64 of each uint64 seed (wrapping arithmetic)."""
    gamma = np.uint64(_GOLDEN_GAMMA)
    with np.errstate(over='ignore'):
        state = seeds * gamma + gamma
        for shift, multiplier in zip(_MIX_SHIFTS[:2], _MIX_MULTIPLIERS):
            state = (state ^ (state >> np.uint64(shift))) * np.uint64(multiplier)
        return state ^ (state >> np.uint64(_MIX_SHIFTS[2]))


def uniform_unit(index: int, count: int) -> np.ndarray:
    """``count`` float64 values in [0, 1) for the tensor at sorted position ``index``."""
    seeds = np.arange(count, dtype=np.uint64) + np.uint64(index << 32)
    return (_splitmix64(seeds) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def golden_values(index: int, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The golden float64 values of one tensor."""
    count = math.prod(shape)
    signed = 2.0 * uniform_unit(index, count) - 1.0
    if key.endswith('num_batches_tracked'):
        values = np.zeros(count)
    elif key.endswith('running_var'):
        values = 1.0 + 0.25 * (signed + 1.0)
    elif key.endswith('running_mean'):
        values = 0.05 * signed
    elif len(shape) >= 2:
        values = signed * math.sqrt(6.0 / math.prod(shape[1:]))
    elif key.endswith('weight'):
        values = 1.0 + 0.1 * signed
    else:
        values = 0.02 * signed
    return values.reshape(shape)


def golden_state_dict(template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A new state dict with the keys, shapes and dtypes of ``template`` and the golden values."""
    return {key: torch.from_numpy(golden_values(index, key, tuple(template[key].shape))).to(template[key].dtype)
            for index, key in enumerate(sorted(template))}
