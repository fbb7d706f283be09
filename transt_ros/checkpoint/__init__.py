"""Checkpoint reading (safe, format-detecting), model loading and writing."""
from .loader import Checkpoint, CheckpointError, load_model, parse_checkpoint, read_checkpoint, save_checkpoint
from .safe_pickle import UnsafeCheckpointError

__all__ = ['Checkpoint', 'CheckpointError', 'UnsafeCheckpointError', 'load_model', 'parse_checkpoint',
           'read_checkpoint', 'save_checkpoint']
