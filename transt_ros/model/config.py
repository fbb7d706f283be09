"""Typed configuration of the TransT network."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

BACKBONES = ('resnet50', 'resnet18')
LIMITS = {
    'd_model': (2, 4096),
    'nhead': (1, 64),
    'num_fusion_layers': (1, 32),
    'dim_feedforward': (1, 32768),
    'template_size': (16, 1024),
    'search_size': (16, 1024),
}
"""Sane bounds of the architecture (both inclusive), checked before anything is built: a stored
config with e.g. ``search_size: 4096`` would otherwise build and warm up for minutes at gigabytes.
The authors' TransT uses 128/256 px crops and d_model 256."""


@dataclass
class TransTConfig:
    """Architecture of a TransT network; the defaults are the authors' ``transt_resnet50``.

    Light variants (e.g. ``backbone='resnet18', d_model=128, num_fusion_layers=2``) trade
    accuracy for speed. ``template_size``/``search_size`` are crop sides in pixels; the
    feature stride is 8, so the default search crop gives a 32x32 output map.
    """

    backbone: str = 'resnet50'
    d_model: int = 256
    nhead: int = 8
    num_fusion_layers: int = 4
    dim_feedforward: int = 2048
    dropout: float = 0.1
    template_size: int = 128
    search_size: int = 256

    def __post_init__(self):
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f'{name} must be an integer in [{low}, {high}], got {value!r}')
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {self.dropout!r}')
        if self.template_size > self.search_size:
            raise ValueError(f'template_size ({self.template_size}) must not exceed search_size ({self.search_size})')
        if self.backbone not in BACKBONES:
            raise ValueError(f'backbone must be one of {BACKBONES}, got {self.backbone!r}')
        if self.d_model % self.nhead:
            raise ValueError(f'd_model ({self.d_model}) must be divisible by nhead ({self.nhead})')
        if self.d_model % 2:
            raise ValueError('d_model must be even (sine positional encoding)')
        for name in ('template_size', 'search_size'):
            if getattr(self, name) % 8 or getattr(self, name) <= 0:
                raise ValueError(f'{name} must be a positive multiple of 8 (feature stride)')
        if self.num_fusion_layers < 1:
            raise ValueError('num_fusion_layers must be at least 1')

    @property
    def feature_stride(self) -> int:
        return 8

    @property
    def search_feature_size(self) -> int:
        return self.search_size // self.feature_stride

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TransTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f'unknown TransTConfig keys: {unknown}; known keys: {sorted(known)}')
        return cls(**values)
