"""The inference precisions: one list and one check, for the tracker, the model manager node and its
parameters."""
from __future__ import annotations

import torch

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
"""Name -> the dtype of the prepared model's weights and activations (fp16 / bf16 need CUDA)."""


def check_precision(precision) -> str:
    """``precision`` when it is a name of :data:`PRECISIONS`; ValueError otherwise."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision
