"""Reference outputs of the authors' TransT (``test/data/golden``) and the weights that produced them."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .golden_weights import golden_state_dict

GOLDEN_DIR = Path(__file__).resolve().parent / 'data' / 'golden'
VIDEOS = ('mid', 'corner', 'large')


def authors_key_rows():
    """(key, shape, dtype) of every tensor of the authors' state dict."""
    rows = []
    for line in (GOLDEN_DIR / 'keys.tsv').read_text().splitlines():
        key, shape, dtype = line.split('\t')
        dims = () if shape == 'scalar' else tuple(int(v) for v in shape.split('x'))
        rows.append((key, dims, getattr(torch, dtype)))
    return rows


@lru_cache(maxsize=1)
def golden_authors_state_dict() -> dict:
    """The golden weights, in the authors' key layout (as a user's transt.pth has them)."""
    zeros = {key: torch.zeros(shape, dtype=dtype) for key, shape, dtype in authors_key_rows()}
    return golden_state_dict(zeros)


def model_io():
    return np.load(GOLDEN_DIR / 'model_io.npz')


def video(name: str):
    return np.load(GOLDEN_DIR / f'track_{name}.npz')
