"""Atomic file writes: readers see the old file or the new one, never a part-written one.

Each write goes to a temporary file in the destination's folder (same file system), is
flushed and fsynced, gets mode 0o644 (``mkstemp`` creates 0o600; these are ordinary files),
then replaces the destination with ``os.replace``. If anything fails, the temporary file is
removed and the destination is left as it was.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch

FILE_MODE = 0o644


def _atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, FILE_MODE)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    return _atomic_write(path, lambda stream: stream.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = 'utf-8') -> Path:
    """Write ``text`` (encoded with ``encoding``) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns the path."""
    return _atomic_write(path, lambda stream: torch.save(obj, stream))
