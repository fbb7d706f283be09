"""Giving freed heap memory back to the operating system."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, 'malloc_trim') else None


def release_free_heap() -> bool:
    """``malloc_trim(0)`` where glibc has it (Linux): the arenas' free pages go back to the OS, so a
    process that loads and frees models again and again (lifecycle cleanup / configure) keeps a flat
    RSS instead of holding every high-water mark. -> whether anything was trimmed; False elsewhere."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
