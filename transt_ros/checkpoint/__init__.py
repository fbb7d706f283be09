"""Checkpoint reading (safe, format-detecting), model loading and writing."""
from .loader import (
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    load_model,
    parse_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from .safe_pickle import UnsafeCheckpointError

__all__ = ['FORMAT_VERSION', 'Checkpoint', 'CheckpointError', 'UnsafeCheckpointError', 'load_model', 'parse_checkpoint',
           'read_checkpoint', 'save_checkpoint']
