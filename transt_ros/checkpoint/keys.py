"""State-dict key layouts: the authors' (``backbone.0.body.*``) and this project's."""
from __future__ import annotations

import torch

from ..model import TransTConfig

_AUTHORS_BACKBONE = 'backbone.0.body.'
_PROJECT_BACKBONE = 'backbone.body.'
_WRAPPER_PREFIXES = ('module.', '_orig_mod.')


def to_project_layout(state_dict: dict) -> dict:
    """Rename the authors' keys (and DDP/compile wrapper prefixes) to this project's."""
    renamed = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key.startswith(_AUTHORS_BACKBONE):
            key = _PROJECT_BACKBONE + key[len(_AUTHORS_BACKBONE):]
        renamed[key] = value
    return renamed


def to_authors_layout(state_dict: dict) -> dict:
    return {(_AUTHORS_BACKBONE + k[len(_PROJECT_BACKBONE):] if k.startswith(_PROJECT_BACKBONE) else k): v
            for k, v in state_dict.items()}


def infer_config(state_dict: dict) -> TransTConfig:
    """Read the architecture off a state dict in the project's layout (crop sizes default)."""
    def shape(key):
        if key not in state_dict:
            raise KeyError(key)
        return tuple(state_dict[key].shape)

    try:
        d_model = shape('input_proj.weight')[0]
        dim_feedforward = shape('featurefusion_network.encoder.layers.0.linear11.weight')[0]
    except KeyError as missing:
        raise ValueError(f'not a TransT state dict: key {missing} is missing') from None
    layers = {int(k.split('.')[3]) for k in state_dict if k.startswith('featurefusion_network.encoder.layers.')}
    backbone = 'resnet50' if 'backbone.body.layer1.0.conv3.weight' in state_dict else 'resnet18'
    nhead = TransTConfig.nhead if d_model % TransTConfig.nhead == 0 else 1
    return TransTConfig(backbone=backbone, d_model=d_model, nhead=nhead, num_fusion_layers=len(layers),
                        dim_feedforward=dim_feedforward)


def is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
