"""Open and create rosbag2 bags (MCAP or sqlite3) without rosbag2: the storage-independent part.

``create_bag(path)`` / ``open_bag(path)`` take a bag directory (holding ``metadata.yaml`` and the
storage file) or a storage file (``.mcap`` / ``.db3``; its directory is the bag directory, so
``metadata.yaml`` is written next to it). Messages are CDR bytes; ``write_message`` and
``decoded`` (de)serialise with rclpy and the real message classes.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from .rosbag2 import (
    BagError,
    BagSummary,
    FileSummary,
    RawMessage,
    TopicInfo,
    message_class,
    message_definition,
    offered_qos_profiles,
    read_metadata_yaml,
    ros_distro,
    type_description_hash,
    type_name_of,
    write_metadata_yaml,
)

STORAGE_EXTENSIONS = {'mcap': '.mcap', 'sqlite3': '.db3'}


class BagWriter:
    """Base of the storage writers: topics, counts, metadata.yaml. Use as a context manager."""

    storage_identifier = ''

    def __init__(self, file_path: Path, custom_data: dict[str, str] | None = None):
        self.file_path = Path(file_path)
        self.directory = self.file_path.parent
        self.custom_data = dict(custom_data or {})
        self.topics: dict[str, TopicInfo] = {}
        self._first_ns: int | None = None
        self._last_ns: int | None = None
        self._closed = False

    def add_topic(self, name: str, type_name: str, qos: str | None = None) -> TopicInfo:
        """Register ``name`` with type ``pkg/msg/Type``; ``qos`` is an ``offered_qos_profiles`` string."""
        if name in self.topics:
            raise BagError(f'{self.file_path}: topic {name} added twice')
        full_name = '/'.join(part for part in type_name.split('/') if part)
        if full_name.count('/') == 1:
            package, type_short = full_name.split('/')
            full_name = f'{package}/msg/{type_short}'
        info = TopicInfo(name, full_name, offered_qos_profiles=offered_qos_profiles() if qos is None else qos,
                         type_description_hash=type_description_hash(full_name))
        encoding, definition = message_definition(full_name)
        self._add_topic(info, encoding, definition)
        self.topics[name] = info
        return info

    def write(self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int | None = None) -> None:
        """Store CDR ``data`` on ``topic`` received at ``log_time_ns`` (ns since the epoch)."""
        info = self.topics.get(topic)
        if info is None:
            raise BagError(f'{self.file_path}: unknown topic {topic}; call add_topic first')
        log_time_ns = int(log_time_ns)
        self._write(info, bytes(data), log_time_ns, log_time_ns if publish_time_ns is None else int(publish_time_ns),
                    info.message_count)
        info.message_count += 1
        self._first_ns = log_time_ns if self._first_ns is None else min(self._first_ns, log_time_ns)
        self._last_ns = log_time_ns if self._last_ns is None else max(self._last_ns, log_time_ns)

    def write_message(self, topic: str, msg, log_time_ns: int) -> None:
        """Serialise ``msg`` (adding its topic on first use) and store it."""
        from rclpy.serialization import serialize_message

        if topic not in self.topics:
            self.add_topic(topic, type_name_of(msg))
        self.write(topic, serialize_message(msg), log_time_ns)

    def summary(self) -> BagSummary:
        count = sum(info.message_count for info in self.topics.values())
        start = self._first_ns or 0
        duration = (self._last_ns - self._first_ns) if self._first_ns is not None else 0
        return BagSummary(self.storage_identifier, [FileSummary(self.file_path.name, start, duration, count)],
                          list(self.topics.values()), self.custom_data, ros_distro())

    def close(self) -> Path:
        """Finish the storage file and write ``metadata.yaml``; returns the bag directory."""
        if not self._closed:
            self._closed = True
            summary = self.summary()
            self._finish(summary)
            write_metadata_yaml(self.directory, summary)
        return self.directory

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _add_topic(self, info: TopicInfo, encoding: str, definition: str) -> None:
        raise NotImplementedError

    def _write(self, info: TopicInfo, data: bytes, log_time_ns: int, publish_time_ns: int, sequence: int) -> None:
        raise NotImplementedError

    def _finish(self, summary: BagSummary) -> None:
        raise NotImplementedError


class BagReader:
    """Base of the storage readers. ``topics`` maps a topic name to its :class:`TopicInfo`."""

    storage_identifier = ''

    def __init__(self, file_path: Path):
        self.file_path = Path(file_path)
        self.topics: dict[str, TopicInfo] = {}

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[RawMessage]:
        """Stored messages in receive-time order (ties in write order), optionally of ``topics`` only."""
        raise NotImplementedError

    def decoded(self, topics: Iterable[str] | None = None) -> Iterator[tuple[RawMessage, object]]:
        """``(raw, message)`` pairs, deserialised with the installed message classes."""
        from rclpy.serialization import deserialize_message

        classes = {}
        for raw in self.messages(topics):
            if raw.topic not in classes:
                classes[raw.topic] = message_class(self.topics[raw.topic].type)
            yield raw, deserialize_message(raw.data, classes[raw.topic])

    def topics_of_type(self, type_name: str) -> list[str]:
        wanted = type_name.replace('/msg/', '/')
        return [name for name, info in self.topics.items() if info.type.replace('/msg/', '/') == wanted]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ChainedReader(BagReader):
    """A bag split over several files (``relative_file_paths``), read one file after the other."""

    def __init__(self, readers: list[BagReader]):
        super().__init__(readers[0].file_path)
        self.readers = readers
        self.storage_identifier = readers[0].storage_identifier
        for reader in readers:
            for name, info in reader.topics.items():
                if name in self.topics:
                    self.topics[name].message_count += info.message_count
                else:
                    self.topics[name] = TopicInfo(**vars(info))

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[RawMessage]:
        wanted = None if topics is None else list(topics)
        for reader in self.readers:
            yield from reader.messages(wanted)

    def close(self) -> None:
        for reader in self.readers:
            reader.close()


def _storage_classes(storage: str):
    if storage == 'mcap':
        from .mcap_io import McapReader, McapWriter

        return McapWriter, McapReader
    if storage == 'sqlite3':
        from .sqlite_io import SqliteReader, SqliteWriter

        return SqliteWriter, SqliteReader
    raise BagError(f"unknown storage '{storage}'; known: {', '.join(STORAGE_EXTENSIONS)}")


def storage_of(path: Path) -> str | None:
    for storage, extension in STORAGE_EXTENSIONS.items():
        if Path(path).suffix == extension:
            return storage
    return None


def bag_file_path(path: Path, storage: str | None = None) -> tuple[Path, str]:
    """``(storage file, storage id)`` for a bag path: a ``.mcap``/``.db3`` file, or a directory
    (the file is then ``<dir>/<dir name>_0<ext>``, rosbag2's naming)."""
    path = Path(path)
    from_suffix = storage_of(path)
    if from_suffix is not None:
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
               custom_data: dict[str, str] | None = None, **storage_options) -> BagWriter:
    """A writer for a new bag at ``path`` (see :func:`bag_file_path`); MCAP unless told otherwise.

    ``storage_options`` go to the storage's writer (MCAP: ``compression='zstd'``, ``chunk_size``).
    """
    file_path, storage = bag_file_path(path, storage)
    _check_not_sharing(file_path)
    if file_path.exists():
        if not overwrite:
            raise BagError(f'{file_path} exists; not overwriting')
        file_path.unlink()
    file_path.parent.mkdir(parents=True, exist_ok=True)
    writer_class, _ = _storage_classes(storage)
    return writer_class(file_path, custom_data=custom_data, **storage_options)


def bag_files(path: Path) -> list[Path]:
    """The storage files of the bag at ``path`` (a file, or a directory with or without metadata.yaml)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise BagError(f'{path}: no such bag (neither a .mcap/.db3 file nor a bag directory)')
    summary = read_metadata_yaml(path)
    if summary is not None and summary.files:
        files = [path / f.path for f in summary.files]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise BagError(f'{path}: metadata.yaml lists missing files: {", ".join(missing)}')
        return files
    files = sorted(p for p in path.iterdir() if storage_of(p) is not None)
    if not files:
        raise BagError(f'{path}: a directory without metadata.yaml or .mcap/.db3 files')
    return files


def open_bag(path: Path) -> BagReader:
    """A reader for the bag at ``path`` (file or directory; split bags are read in order)."""
    readers = []
    try:
        for file_path in bag_files(path):
            storage = storage_of(file_path)
            if storage is None:
                raise BagError(f'{file_path}: unknown storage file type (expected .mcap or .db3)')
            _, reader_class = _storage_classes(storage)
            readers.append(reader_class(file_path))
    except Exception:
        for reader in readers:
            reader.close()
        raise
    return readers[0] if len(readers) == 1 else ChainedReader(readers)
