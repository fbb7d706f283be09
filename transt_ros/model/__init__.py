"""The TransT network (ROS-free)."""
from __future__ import annotations

from .config import TransTConfig
from .transt import TemplateFeatures, TransT


def build_transt(config: TransTConfig | dict | None = None) -> TransT:
    """Build a TransT network; ``None`` gives the authors' ``transt_resnet50``."""
    if config is None:
        config = TransTConfig()
    elif isinstance(config, dict):
        config = TransTConfig.from_dict(config)
    return TransT(config)


__all__ = ['TransTConfig', 'TransT', 'TemplateFeatures', 'build_transt']
