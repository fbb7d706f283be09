"""Access to ../shared/golden (reference outputs of the authors' TransT)."""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

GOLDEN_DIR = Path(__file__).resolve().parents[1].parent / 'shared' / 'golden'
VIDEOS = ('mid', 'corner', 'large')


def _golden_weights_module():
    spec = importlib.util.spec_from_file_location('golden_weights', GOLDEN_DIR / 'golden_weights.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    return _golden_weights_module().golden_state_dict(zeros)


def golden_image(height, width, phase=0.0) -> np.ndarray:
    return _golden_weights_module().golden_image(height, width, phase)


def model_io():
    return np.load(GOLDEN_DIR / 'model_io.npz')


def video(name: str):
    return np.load(GOLDEN_DIR / f'track_{name}.npz')
