"""rosbag2 compression (``rosbag2_compression_zstd``): per message or per storage file, zstd.

``ros2 bag record --compression-mode message --compression-format zstd`` compresses each
message's CDR bytes; ``--compression-mode file`` compresses each finished storage file into
``<file>.zstd`` (listed as such in ``metadata.yaml``). ``metadata.yaml`` names the mode
(``MESSAGE`` / ``FILE``; rosbags writes them in lower case) and the format (``zstd``).
MCAP's own chunk compression is another thing (:mod:`.mcap_io`).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import zstandard

from .rosbag2 import BagError

COMPRESSION_FORMAT = 'zstd'
COMPRESSION_MODES = ('none', 'message', 'file')
COMPRESSED_FILE_SUFFIX = '.zstd'


def normalized_mode(mode: str | None) -> str:
    """``'none'``, ``'message'`` or ``'file'`` from a metadata.yaml ``compression_mode`` (any case, or empty)."""
    text = (mode or '').strip().lower()
    text = 'none' if text in ('', 'none') else text
    if text not in COMPRESSION_MODES:
        raise BagError(f"unknown rosbag2 compression mode '{mode}'; known: {', '.join(COMPRESSION_MODES)}")
    return text


def check_format(compression_format: str | None, mode: str) -> None:
    if mode != 'none' and (compression_format or '').strip().lower() != COMPRESSION_FORMAT:
        raise BagError(f"unsupported rosbag2 compression format '{compression_format}' (only "
                       f"{COMPRESSION_FORMAT} is known)")


def compress_message(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def decompress_message(data: bytes, where: str = '') -> bytes:
    try:
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except zstandard.ZstdError as error:
        raise BagError(f'{where}: a message is not zstd-compressed data ({error}); does metadata.yaml '
                       'state the right compression_mode?') from None


def compress_file(path: Path) -> Path:
    """``path`` -> ``path.zstd`` (``path`` removed), as rosbag2 does with a finished storage file."""
    path = Path(path)
    target = path.with_name(path.name + COMPRESSED_FILE_SUFFIX)
    with open(path, 'rb') as source, open(target, 'wb') as sink:
        zstandard.ZstdCompressor().copy_stream(source, sink)
    path.unlink()
    return target


def decompress_file(path: Path, directory: Path) -> Path:
    """``<path>`` (``x.db3.zstd``) -> ``<directory>/x.db3``."""
    path = Path(path)
    target = Path(directory) / path.name.removesuffix(COMPRESSED_FILE_SUFFIX)
    try:
        with open(path, 'rb') as source, open(target, 'wb') as sink:
            with zstandard.ZstdDecompressor().stream_reader(source) as reader:
                shutil.copyfileobj(reader, sink)
    except zstandard.ZstdError as error:
        raise BagError(f'{path}: not a zstd-compressed storage file ({error})') from None
    return target
