"""rosbag2 MCAP storage (``rosbag2_storage_mcap`` conventions), with the ``mcap`` package.

Written like the plugin does: profile ``ros2``; one schema per type (``name`` = ``pkg/msg/Type``,
encoding ``ros2msg``, data = the full concatenated definition); one channel per topic
(message encoding ``cdr``, metadata ``offered_qos_profiles`` and ``topic_type_hash``); messages
with ``log_time`` = receive time and ``publish_time``, ``sequence`` counting per topic; a metadata
record ``rosbag2`` holding ``serialized_metadata`` (the metadata.yaml document) and ``ROS_DISTRO``.
Chunks are uncompressed by default (the plugin's default); ``zstd`` / ``lz4`` are read by the
plugin too.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer

from .rosbag2 import BagError, BagSummary, RawMessage, TopicInfo, ros_distro
from .storage import BagReader, BagWriter

PROFILE = 'ros2'
LIBRARY = 'transt_ros (rosbag2_storage_mcap conventions)'
COMPRESSIONS = {'none': CompressionType.NONE, 'zstd': CompressionType.ZSTD, 'lz4': CompressionType.LZ4}


class McapWriter(BagWriter):
    storage_identifier = 'mcap'

    def __init__(self, file_path: Path, custom_data: dict[str, str] | None = None, compression: str = 'none',
                 chunk_size: int = 1024 * 1024, message_compression: str = 'none', file_compression: str = 'none'):
        super().__init__(file_path, custom_data, message_compression, file_compression)
        if compression not in COMPRESSIONS:
            raise BagError(f"unknown MCAP chunk compression '{compression}'; known: {', '.join(COMPRESSIONS)}")
        self._stream = open(self.file_path, 'wb')
        self._writer = Writer(self._stream, chunk_size=chunk_size, compression=COMPRESSIONS[compression])
        self._writer.start(profile=PROFILE, library=LIBRARY)
        self._schema_ids: dict[str, int] = {}
        self._channel_ids: dict[str, int] = {}

    def _add_topic(self, info: TopicInfo, encoding: str, definition: str) -> None:
        if info.type not in self._schema_ids:
            self._schema_ids[info.type] = self._writer.register_schema(info.type, encoding, definition.encode())
        self._channel_ids[info.name] = self._writer.register_channel(
            info.name, info.serialization_format, self._schema_ids[info.type],
            {'offered_qos_profiles': info.offered_qos_profiles, 'topic_type_hash': info.type_description_hash})

    def _write(self, info: TopicInfo, data: bytes, log_time_ns: int, publish_time_ns: int, sequence: int) -> None:
        self._writer.add_message(self._channel_ids[info.name], log_time=log_time_ns, data=data,
                                 publish_time=publish_time_ns, sequence=sequence)

    def _finish(self, summary: BagSummary) -> None:
        self._writer.add_metadata('rosbag2', {'serialized_metadata': summary.to_yaml(), 'ROS_DISTRO': ros_distro()})
        self._writer.finish()
        self._stream.close()


class McapReader(BagReader):
    storage_identifier = 'mcap'

    def __init__(self, file_path: Path):
        super().__init__(file_path)
        self._stream = open(self.file_path, 'rb')
        try:
            self._reader = make_reader(self._stream)
            header = self._reader.get_header()
            summary = self._reader.get_summary()
        except (McapError, ValueError, EOFError, OSError) as error:
            self._stream.close()
            raise BagError(f'{self.file_path}: not a readable MCAP file ({type(error).__name__}: {error})') from None
        if header.profile not in (PROFILE, ''):
            self._stream.close()
            raise BagError(f"{self.file_path}: MCAP profile '{header.profile}', expected '{PROFILE}' (rosbag2)")
        self.library = header.library
        self.metadata: dict[str, str] = {}
        counts = summary.statistics.channel_message_counts if summary and summary.statistics else {}
        channels = summary.channels if summary else {}
        schemas = summary.schemas if summary else {}
        for channel_id, channel in sorted(channels.items()):
            schema = schemas.get(channel.schema_id)
            self.topics[channel.topic] = TopicInfo(
                channel.topic, schema.name if schema else '', channel.message_encoding,
                channel.metadata.get('offered_qos_profiles', ''), channel.metadata.get('topic_type_hash', ''),
                int(counts.get(channel_id, 0)))
        for record in self._reader.iter_metadata():
            if record.name == 'rosbag2':
                self.metadata = dict(record.metadata)

    def _stored_messages(self, topics: Iterable[str] | None) -> Iterator[RawMessage]:
        wanted = None if topics is None else list(topics)
        if wanted is not None and not wanted:
            return
        for _, channel, message in self._reader.iter_messages(topics=wanted, log_time_order=True):
            yield RawMessage(channel.topic, int(message.log_time), bytes(message.data))

    def _close(self) -> None:
        self._stream.close()
