"""Read any accepted checkpoint, build the model, and write the project's format.

Accepted inputs:
- the project's format ``{'model': state_dict, 'config': dict, 'meta': dict}``;
- the authors' training checkpoints (a pickled dict whose ``'net'`` holds the state dict,
  next to ``ltr.*`` objects): read without the ``ltr`` package, nothing executed;
- a bare state dict in the authors' or the project's key layout (a file or in memory).
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..common.files import atomic_torch_save
from ..model import TransTConfig, build_transt
from . import safe_pickle
from .keys import infer_config, is_state_dict, to_project_layout

FORMAT_VERSION = 1
"""``meta['format_version']`` of the checkpoints this project writes (``save_checkpoint``, ``transt-train``)."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """A state dict in the project's key layout, with what is known about it."""

    state_dict: dict
    config: TransTConfig | None
    meta: dict = field(default_factory=dict)
    source_format: str = 'project'


def _read_file(path: Path):
    if not path.is_file():
        raise CheckpointError(f'{path}: no such checkpoint file')
    if path.stat().st_size == 0:
        raise CheckpointError(f'{path}: empty file')
    try:
        return torch.load(path, map_location='cpu', pickle_module=safe_pickle, weights_only=False)
    except safe_pickle.UnsafeCheckpointError as error:
        raise CheckpointError(f'{path}: {error}') from None
    except (EOFError, pickle.UnpicklingError, RuntimeError, ValueError, OSError, KeyError) as error:
        raise CheckpointError(f'{path}: truncated or corrupt checkpoint ({type(error).__name__}: {error})') \
            from None


def parse_checkpoint(obj, origin: str = '<memory>') -> Checkpoint:
    """Recognise the format of an unpickled checkpoint object."""
    if isinstance(obj, dict) and 'model' in obj and is_state_dict(obj['model']):
        config_dict = obj.get('config')
        try:
            config = TransTConfig.from_dict(config_dict) if config_dict else None
        except (TypeError, ValueError) as error:
            raise CheckpointError(f'{origin}: invalid config in checkpoint: {error}') from None
        return Checkpoint(to_project_layout(obj['model']), config, dict(obj.get('meta') or {}), 'project')
    if isinstance(obj, dict) and 'net' in obj and is_state_dict(obj['net']):
        meta = {k: obj[k] for k in ('epoch', 'net_type', 'actor_type') if isinstance(obj.get(k), (int, str))}
        return Checkpoint(to_project_layout(obj['net']), None, meta, 'authors-training')
    if is_state_dict(obj):
        layout = 'authors-state-dict' if any(k.startswith('backbone.0.') for k in obj) else 'state-dict'
        return Checkpoint(to_project_layout(obj), None, {}, layout)
    kind = type(obj).__name__
    keys = sorted(obj)[:8] if isinstance(obj, dict) else ''
    raise CheckpointError(f'{origin}: not a TransT checkpoint (a {kind} {keys}); expected a state dict, '
                          "a dict with 'net' (authors' trainer) or 'model'+'config' (this project)")


def read_checkpoint(source) -> Checkpoint:
    """``source``: a path, or an in-memory state dict / checkpoint dict."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        return parse_checkpoint(_read_file(path), str(path))
    return parse_checkpoint(source)


def _check_compatible(model: torch.nn.Module, state_dict: dict, origin: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}'
                   for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    problems = []
    for label, items in (('missing keys', missing), ('unexpected keys', unexpected), ('wrong shapes', wrong_shape)):
        if items:
            shown = ', '.join(items[:5]) + (f' (+{len(items) - 5} more)' if len(items) > 5 else '')
            problems.append(f'{len(items)} {label}: {shown}')
    if problems:
        raise CheckpointError(f'{origin}: does not fit the model: ' + '; '.join(problems))


def load_model(source, device='cpu', config: TransTConfig | None = None) -> torch.nn.Module:
    """Build the model a checkpoint describes, load its weights, return it in eval mode.

    ``config`` overrides the stored/inferred architecture (e.g. a non-default ``nhead``).
    """
    checkpoint = read_checkpoint(source)
    origin = str(source) if isinstance(source, (str, os.PathLike)) else '<state dict>'
    if config is None:
        try:
            config = checkpoint.config or infer_config(checkpoint.state_dict)
        except ValueError as error:
            raise CheckpointError(f'{origin}: {error}') from None
    model = build_transt(config)
    _check_compatible(model, checkpoint.state_dict, origin)
    state_dict = {k: v.to(model.state_dict()[k].dtype) for k, v in checkpoint.state_dict.items()}
    model.load_state_dict(state_dict)
    return model.to(torch.device(device)).eval()


def save_checkpoint(path, model: torch.nn.Module, meta: dict | None = None, half: bool = False) -> Path:
    """Write ``{'model', 'config', 'meta'}`` atomically (temporary file, fsync, rename; mode 0o644).

    ``half=True`` stores floating-point tensors as float16 (half the size; loading casts
    them back to the model's dtype).
    """
    state_dict = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().clone()
                  for k, v in model.state_dict().items()}
    payload = {'model': state_dict, 'config': model.config.to_dict(),
               'meta': {'format_version': FORMAT_VERSION, **(meta or {})}}
    return atomic_torch_save(payload, path)
