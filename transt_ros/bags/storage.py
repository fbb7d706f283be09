"""The storage-independent reader and writer of a rosbag2 bag; the storages subclass them.

A writer registers topics, counts messages and writes ``metadata.yaml`` when closed; with
``message_compression='zstd'`` each message's bytes are compressed (rosbag2's message mode), with
``file_compression='zstd'`` the finished storage file becomes ``<file>.zstd`` (file mode). A
reader yields the stored messages, decompressed when the bag says they are. Messages are CDR
bytes; ``write_message`` and ``decoded`` (de)serialise with rclpy (imported there: raw bytes
need no ROS) and the installed message classes.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from .compression import compress_file, compress_message, decompress_message
from .rosbag2 import (
    BagError,
    BagSummary,
    FileSummary,
    RawMessage,
    TopicInfo,
    message_class,
    message_definition,
    offered_qos_profiles,
    ros_distro,
    type_description_hash,
    type_name_of,
    write_metadata_yaml,
)


class BagWriter:
    """Base of the storage writers: topics, counts, metadata.yaml. Use as a context manager."""

    storage_identifier = ''

    def __init__(self, file_path: Path, custom_data: dict[str, str] | None = None,
                 message_compression: str = 'none', file_compression: str = 'none'):
        self.file_path = Path(file_path)
        self.directory = self.file_path.parent
        self.custom_data = dict(custom_data or {})
        for value in (message_compression, file_compression):
            if value not in ('none', 'zstd'):
                raise BagError(f"unknown rosbag2 compression format '{value}'; known: none, zstd")
        if message_compression != 'none' and file_compression != 'none':
            raise BagError('rosbag2 compresses either each message or each file, not both')
        self.message_compression = message_compression
        self.file_compression = file_compression
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
        data = compress_message(bytes(data)) if self.message_compression == 'zstd' else bytes(data)
        self._write(info, data, log_time_ns, log_time_ns if publish_time_ns is None else int(publish_time_ns),
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

    def summary(self, file_name: str | None = None) -> BagSummary:
        count = sum(info.message_count for info in self.topics.values())
        start = self._first_ns or 0
        duration = (self._last_ns - self._first_ns) if self._first_ns is not None else 0
        mode, compression = 'none', 'none'
        if self.message_compression != 'none':
            mode, compression = 'message', self.message_compression
        elif self.file_compression != 'none':
            mode, compression = 'file', self.file_compression
        return BagSummary(self.storage_identifier,
                          [FileSummary(file_name or self.file_path.name, start, duration, count)],
                          list(self.topics.values()), self.custom_data, ros_distro(),
                          compression_format='' if mode == 'none' else compression,
                          compression_mode='' if mode == 'none' else mode.upper())

    def close(self) -> Path:
        """Finish the storage file and write ``metadata.yaml``; returns the bag directory."""
        if not self._closed:
            self._closed = True
            self._finish(self.summary())
            file_name = None
            if self.file_compression == 'zstd':
                file_name = compress_file(self.file_path).name
            write_metadata_yaml(self.directory, self.summary(file_name))
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
        self.message_compression = 'none'
        """``'zstd'`` when every stored message is compressed (set from the bag's metadata.yaml)."""
        self.on_close: list = []
        """Callables run after the storage is closed (e.g. removing a decompressed copy)."""

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[RawMessage]:
        """Messages in receive-time order (ties in write order), optionally of ``topics`` only;
        decompressed when the bag compresses each message."""
        if self.message_compression == 'none':
            yield from self._stored_messages(topics)
            return
        for raw in self._stored_messages(topics):
            yield RawMessage(raw.topic, raw.log_time_ns, decompress_message(raw.data, str(self.file_path)))

    def _stored_messages(self, topics: Iterable[str] | None) -> Iterator[RawMessage]:
        """The messages as the storage holds them."""
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
        self._close()
        while self.on_close:
            self.on_close.pop()()

    def _close(self) -> None:
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

    def _close(self) -> None:
        for reader in self.readers:
            reader.close()
