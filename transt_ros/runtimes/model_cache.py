"""Where exported and compiled models are kept between runs, keyed by the weights they hold.

The folder is ``$TRANST_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/transt_ros``, else
``~/.cache/transt_ros``. Entries are named by :func:`weights_digest` (the model's architecture and
every weight, bit for bit), so another checkpoint never meets a stale entry; files are written
atomically, so a killed process leaves no half-written model behind.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .onnx_export import OPSET, ExportedSteps, export_steps

EXPORT_VERSION = 1
"""Bumped whenever the exported graphs change for the same weights."""


def cache_root() -> Path:
    if os.environ.get('TRANST_CACHE_DIR'):
        return Path(os.environ['TRANST_CACHE_DIR'])
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'transt_ros'


def weights_digest(model: torch.nn.Module) -> str:
    """A short hex digest of the architecture and of every parameter and buffer of ``model``."""
    digest = hashlib.sha256(json.dumps(
        {'config': model.config.to_dict(), 'export': EXPORT_VERSION, 'opset': OPSET}, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def model_folder(digest: str) -> Path:
    return cache_root() / digest


def exported_steps(model: torch.nn.Module, digest: str | None = None) -> ExportedSteps:
    """The ONNX steps of ``model``: read from the cache, or exported and stored there."""
    folder = model_folder(digest or weights_digest(model)) / 'onnx'
    if all((folder / f'{name}.onnx').is_file() for name in ('template', 'track')):
        return ExportedSteps.read(folder)
    steps = export_steps(model)
    steps.write(folder)
    return steps
