"""Open and create rosbag2 bags (MCAP or sqlite3) without rosbag2.

``create_bag(path)`` / ``open_bag(path)`` take a bag directory (holding ``metadata.yaml`` and the
storage files) or a storage file (``.mcap`` / ``.db3``, or ``.mcap.zstd`` / ``.db3.zstd`` when
rosbag2 compressed the file; its directory is the bag directory, so ``metadata.yaml`` is next to
it). ``metadata.yaml`` of any version rosbag2 writes (1 .. 9) is read; its ``compression_mode``
decides whether messages (``MESSAGE``) or files (``FILE``) are zstd-decompressed on reading.
"""
from __future__ import annotations

import tempfile
from pathlib import Path, PurePath

from .compression import COMPRESSED_FILE_SUFFIX, check_format, decompress_file, normalized_mode
from .mcap_io import McapReader, McapWriter
from .rosbag2 import BagError, BagSummary, read_metadata_yaml
from .sqlite_io import SqliteReader, SqliteWriter
from .storage import BagReader, BagWriter, ChainedReader

STORAGE_EXTENSIONS = {'mcap': '.mcap', 'sqlite3': '.db3'}
STORAGE_CLASSES: dict[str, tuple[type[BagWriter], type[BagReader]]] = {
    'mcap': (McapWriter, McapReader), 'sqlite3': (SqliteWriter, SqliteReader)}


def _storage_classes(storage: str) -> tuple[type[BagWriter], type[BagReader]]:
    if storage not in STORAGE_CLASSES:
        raise BagError(f"unknown storage '{storage}'; known: {', '.join(STORAGE_EXTENSIONS)}")
    return STORAGE_CLASSES[storage]


def storage_of(path: Path) -> str | None:
    """``'mcap'`` / ``'sqlite3'`` from a storage file's name (a ``.zstd`` suffix is looked through)."""
    name = Path(path).name.removesuffix(COMPRESSED_FILE_SUFFIX)
    for storage, extension in STORAGE_EXTENSIONS.items():
        if name.endswith(extension):
            return storage
    return None


def bag_file_path(path: Path, storage: str | None = None) -> tuple[Path, str]:
    """``(storage file, storage id)`` for a bag path: a ``.mcap``/``.db3`` file, or a directory
    (the file is then ``<dir>/<dir name>_0<ext>``, rosbag2's naming)."""
    path = Path(path)
    from_suffix = storage_of(path)
    if from_suffix is not None:
        if path.name.endswith(COMPRESSED_FILE_SUFFIX):
            raise BagError(f'{path}: name the uncompressed storage file; file compression adds the '
                           f'{COMPRESSED_FILE_SUFFIX} suffix when the bag is closed')
        if storage is not None and storage != from_suffix:
            raise BagError(f'{path}: the extension says {from_suffix}, storage {storage} was asked for')
        return path, from_suffix
    storage = storage or 'mcap'
    if storage not in STORAGE_EXTENSIONS:
        raise BagError(f"unknown storage '{storage}'; known: {', '.join(STORAGE_EXTENSIONS)}")
    return path / f'{path.name}_0{STORAGE_EXTENSIONS[storage]}', storage


def _check_not_sharing(file_path: Path) -> None:
    """Refuse to write a bag into a directory whose metadata.yaml describes another bag."""
    try:
        summary = read_metadata_yaml(file_path.parent)
    except BagError:
        summary = None
    others = [f.path for f in summary.files if f.path != file_path.name and (file_path.parent / f.path).exists()] \
        if summary is not None else []
    if others:
        raise BagError(f'{file_path.parent} already holds another bag ({", ".join(others)}, see its metadata.yaml); '
                       f'a bag is a directory: write {file_path.name} into a directory of its own')


def create_bag(path: Path, storage: str | None = None, overwrite: bool = False,
               custom_data: dict[str, str] | None = None, compression_mode: str = 'none',
               **storage_options) -> BagWriter:
    """A writer for a new bag at ``path`` (see :func:`bag_file_path`); MCAP unless told otherwise.

    ``compression_mode``: rosbag2 zstd compression, ``'none'``, ``'message'`` or ``'file'``.
    ``storage_options`` go to the storage's writer (MCAP: chunk ``compression='zstd'``, ``chunk_size``).
    """
    file_path, storage = bag_file_path(path, storage)
    mode = normalized_mode(compression_mode)
    _check_not_sharing(file_path)
    compressed_path = file_path.with_name(file_path.name + COMPRESSED_FILE_SUFFIX)
    for existing in (file_path, compressed_path):
        if existing.exists():
            if not overwrite:
                raise BagError(f'{existing} exists; not overwriting')
            existing.unlink()
    file_path.parent.mkdir(parents=True, exist_ok=True)
    writer_class, _ = _storage_classes(storage)
    return writer_class(file_path, custom_data=custom_data, message_compression='zstd' if mode == 'message' else 'none',
                        file_compression='zstd' if mode == 'file' else 'none', **storage_options)


def _listed_file(directory: Path, listed: str) -> Path:
    """A ``relative_file_paths`` entry: relative to the bag directory, or (older rosbag2, and bags
    that were renamed) prefixed with the bag's original directory name."""
    candidate = directory / listed
    return candidate if candidate.is_file() else directory / PurePath(listed).name


def bag_files(path: Path) -> tuple[list[Path], BagSummary | None]:
    """The storage files of the bag at ``path`` (a file, or a directory with or without
    metadata.yaml) and the metadata describing them, when there is some."""
    path = Path(path)
    if path.is_file():
        try:
            summary = read_metadata_yaml(path.parent)
        except BagError:
            summary = None
        if summary is not None and path.name not in {PurePath(f.path).name for f in summary.files}:
            summary = None
        return [path], summary
    if not path.is_dir():
        raise BagError(f'{path}: no such bag (neither a .mcap/.db3 file nor a bag directory)')
    summary = read_metadata_yaml(path)
    if summary is not None and summary.files:
        files = [_listed_file(path, f.path) for f in summary.files]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise BagError(f'{path}: metadata.yaml lists missing files: {", ".join(missing)}')
        return files, summary
    files = sorted(p for p in path.iterdir() if storage_of(p) is not None)
    if not files:
        raise BagError(f'{path}: a directory without metadata.yaml or .mcap/.db3 files')
    return files, None


def _compression(summary: BagSummary | None, file_path: Path) -> str:
    if summary is None:
        return 'file' if file_path.name.endswith(COMPRESSED_FILE_SUFFIX) else 'none'
    mode = normalized_mode(summary.compression_mode)
    check_format(summary.compression_format, mode)
    return mode


def _open_storage_file(file_path: Path, summary: BagSummary | None) -> BagReader:
    storage = storage_of(file_path)
    if storage is None:
        raise BagError(f'{file_path}: unknown storage file type (expected .mcap, .db3, .mcap.zstd or .db3.zstd)')
    _, reader_class = _storage_classes(storage)
    mode = _compression(summary, file_path)
    temporary = None
    if mode == 'file' or file_path.name.endswith(COMPRESSED_FILE_SUFFIX):
        temporary = tempfile.TemporaryDirectory(prefix='transt_bag_')
        try:
            readable = decompress_file(file_path, Path(temporary.name))
        except BaseException:
            temporary.cleanup()
            raise
    else:
        readable = file_path
    try:
        reader = reader_class(readable)
    except BaseException:
        if temporary is not None:
            temporary.cleanup()
        raise
    if temporary is not None:
        reader.on_close.append(temporary.cleanup)
    if summary is None:  # a storage file alone: the metadata that rosbag2 stores inside it
        embedded = reader.metadata.get('serialized_metadata') if isinstance(reader, McapReader) \
            else getattr(reader, 'metadata_text', '')
        if embedded:
            mode = _compression(BagSummary.from_yaml(embedded), file_path)
    reader.message_compression = 'zstd' if mode == 'message' else 'none'
    return reader


def open_bag(path: Path) -> BagReader:
    """A reader for the bag at ``path`` (file or directory; split bags are read in order)."""
    readers = []
    file_paths, summary = bag_files(path)
    try:
        for file_path in file_paths:
            readers.append(_open_storage_file(file_path, summary))
    except Exception:
        for reader in readers:
            reader.close()
        raise
    return readers[0] if len(readers) == 1 else ChainedReader(readers)
