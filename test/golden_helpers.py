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


def assert_tracks_golden(tracker, name: str, what: str = '') -> None:
    """``tracker`` initialised on golden video ``name`` and stepped through it gives the authors' boxes
    (within 0.05 px) and best penalised scores (1e-4); scores in [0, 1]."""
    import pytest

    data = video(name)
    tracker.initialize(data['frames'][0], data['init_bbox'])
    for index in range(1, len(data['frames'])):
        result = tracker.track(data['frames'][index])
        np.testing.assert_allclose(result.box, data['boxes'][index], atol=0.05, rtol=0,
                                   err_msg=f'{what} {name} frame {index}')
        assert result.penalized_score == pytest.approx(float(data['best_pscore'][index]), abs=1e-4)
        assert 0.0 <= result.score <= 1.0
