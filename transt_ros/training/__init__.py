"""Offline training of TransT (ROS-free): data readers, pair sampling, loss, trainer."""
from __future__ import annotations

from .config import ConfigError, TrainingConfig, load_config
from .loss import TransTLoss, positive_mask
from .trainer import Trainer

__all__ = ['ConfigError', 'Trainer', 'TrainingConfig', 'TransTLoss', 'load_config', 'positive_mask']
