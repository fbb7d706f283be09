"""Training checkpoints (written atomically by ``common.files``): resume from the latest, keep the last N.

A training checkpoint is a project checkpoint (``'model'`` state dict, ``'config'`` =
``TransTConfig.to_dict()``, ``'meta'``), so ``transt_ros.checkpoint.load_model`` and the
tracker read it directly, plus ``'optimizer'``, ``'scheduler'``, ``'scaler'``, ``'epoch'``,
``'step'``, ``'rng'`` (per-rank Python/NumPy/torch generator states) and
``'training_config'``. Everything is plain data: it loads with ``weights_only=True``.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import read_checkpoint
from ..common.files import atomic_torch_save

CHECKPOINT_PATTERN = re.compile(r'^checkpoint_step(\d+)\.pth$')


def read_training_checkpoint(path: str | Path) -> dict:
    """A training (or any project) checkpoint file as plain data, on the CPU (``weights_only=True``)."""
    return torch.load(Path(path), map_location='cpu', weights_only=True)


def capture_rng_state() -> dict:
    numpy_state = np.random.get_state(legacy=False)
    state = {
        'python': random.getstate(),
        'numpy': {'bit_generator': numpy_state['bit_generator'],
                  'key': torch.from_numpy(numpy_state['state']['key'].astype(np.int64)),
                  'pos': int(numpy_state['state']['pos']), 'has_gauss': int(numpy_state['has_gauss']),
                  'gauss': float(numpy_state['gauss'])},
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state['numpy']
    np.random.set_state({'bit_generator': numpy_state['bit_generator'],
                         'state': {'key': numpy_state['key'].numpy().astype(np.uint32), 'pos': numpy_state['pos']},
                         'has_gauss': numpy_state['has_gauss'], 'gauss': numpy_state['gauss']})
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class CheckpointManager:
    """``<directory>/checkpoint_step<NNNNNNNNN>.pth``; the highest step is the latest."""

    def __init__(self, directory: str | Path, keep_last: int = 3):
        self.directory = Path(directory)
        self.keep_last = keep_last

    def path_for(self, step: int) -> Path:
        return self.directory / f'checkpoint_step{step:09d}.pth'

    def checkpoints(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), self.directory / name) for name in os.listdir(self.directory)
                 if (m := CHECKPOINT_PATTERN.match(name))]
        return [path for _, path in sorted(found)]

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def save(self, state: dict, step: int) -> Path:
        path = atomic_torch_save(state, self.path_for(step))
        for old in self.checkpoints()[:-self.keep_last]:
            old.unlink(missing_ok=True)
        return path


def load_backbone_weights(model: torch.nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Load a torchvision ResNet state dict (e.g. ``resnet50-0676ba61.pth``) into the trunk.

    ``fc.*`` and ``layer4.*`` (absent from the stride-8 trunk) are dropped; returns the
    trunk keys the file lacks and the file keys the trunk lacks (``strict=False``).
    """
    state = torch.load(Path(path), map_location='cpu', weights_only=True)
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    state = {k.removeprefix('module.'): v for k, v in state.items()
             if not k.removeprefix('module.').startswith(('fc.', 'layer4.'))}
    result = model.backbone.body.load_state_dict(state, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)


def load_initial_weights(model: torch.nn.Module, path: str | Path) -> tuple[list[str], list[str], str]:
    """Fine-tuning start: weights of a project, authors' (``'net'``) or bare checkpoint.

    Read with ``transt_ros.checkpoint`` (nothing in the file is executed); keys are mapped to
    the project layout; tensors whose shape differs from the model's are reported as missing.
    Returns (missing, unexpected, source format).
    """
    checkpoint = read_checkpoint(str(path))
    own = model.state_dict()
    fitting = {k: v.to(own[k].dtype) for k, v in checkpoint.state_dict.items()
               if k in own and own[k].shape == v.shape}
    result = model.load_state_dict(fitting, strict=False)
    unexpected = sorted(set(checkpoint.state_dict) - set(fitting))
    return list(result.missing_keys), unexpected, checkpoint.source_format
