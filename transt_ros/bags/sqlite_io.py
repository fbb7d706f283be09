"""rosbag2's sqlite3 storage (``.db3``, ``rosbag2_storage_sqlite3`` schema version 4), with sqlite3.

Tables as the plugin creates them: ``schema(schema_version, ros_distro)``,
``metadata(id, metadata_version, metadata)`` (the metadata.yaml document), ``topics(id, name, type,
serialization_format, offered_qos_profiles, type_description_hash)``, ``message_definitions(id,
topic_type, encoding, encoded_message_definition, type_description_hash)`` and ``messages(id,
topic_id, timestamp, data)`` with the index ``timestamp_idx``. Older bags (schema 1 .. 3, without
some of these columns or tables) are read too.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from .rosbag2 import METADATA_VERSION, BagError, BagSummary, RawMessage, TopicInfo, ros_distro
from .storage import BagReader, BagWriter

SCHEMA_VERSION = 4
CREATE_TABLES = """
CREATE TABLE schema(schema_version INTEGER PRIMARY KEY,ros_distro TEXT NOT NULL);
CREATE TABLE metadata(id INTEGER PRIMARY KEY,metadata_version INTEGER NOT NULL,metadata TEXT NOT NULL);
CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,serialization_format TEXT NOT NULL,\
offered_qos_profiles TEXT NOT NULL,type_description_hash TEXT NOT NULL);
CREATE TABLE message_definitions(id INTEGER PRIMARY KEY,topic_type TEXT NOT NULL,encoding TEXT NOT NULL,\
encoded_message_definition TEXT NOT NULL,type_description_hash TEXT NOT NULL);
CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,timestamp INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX timestamp_idx ON messages (timestamp ASC);
"""


class SqliteWriter(BagWriter):
    storage_identifier = 'sqlite3'

    def __init__(self, file_path: Path, custom_data: dict[str, str] | None = None, compression: str = 'none',
                 message_compression: str = 'none', file_compression: str = 'none'):
        super().__init__(file_path, custom_data, message_compression, file_compression)
        if compression != 'none':
            raise BagError('the sqlite3 storage has no chunk compression (rosbag2 compression: message or file)')
        self._db = sqlite3.connect(self.file_path)
        self._db.executescript(CREATE_TABLES)
        self._db.execute('INSERT INTO schema (schema_version, ros_distro) VALUES (?, ?)',
                         (SCHEMA_VERSION, ros_distro()))
        self._topic_ids: dict[str, int] = {}
        self._defined_types: set[str] = set()

    def _add_topic(self, info: TopicInfo, encoding: str, definition: str) -> None:
        cursor = self._db.execute(
            'INSERT INTO topics (name, type, serialization_format, offered_qos_profiles, type_description_hash) '
            'VALUES (?, ?, ?, ?, ?)',
            (info.name, info.type, info.serialization_format, info.offered_qos_profiles, info.type_description_hash))
        self._topic_ids[info.name] = cursor.lastrowid
        if info.type not in self._defined_types:
            self._db.execute(
                'INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, '
                'type_description_hash) VALUES (?, ?, ?, ?)', (info.type, encoding, definition,
                                                               info.type_description_hash))
            self._defined_types.add(info.type)

    def _write(self, info: TopicInfo, data: bytes, log_time_ns: int, publish_time_ns: int, sequence: int) -> None:
        self._db.execute('INSERT INTO messages (timestamp, topic_id, data) VALUES (?, ?, ?)',
                         (log_time_ns, self._topic_ids[info.name], sqlite3.Binary(data)))

    def _finish(self, summary: BagSummary) -> None:
        self._db.execute('INSERT INTO metadata (metadata_version, metadata) VALUES (?, ?)',
                         (METADATA_VERSION, summary.to_yaml()))
        self._db.commit()
        self._db.close()


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f'PRAGMA table_info({table})')}


class SqliteReader(BagReader):
    storage_identifier = 'sqlite3'

    def __init__(self, file_path: Path):
        super().__init__(file_path)
        if not self.file_path.is_file():
            raise BagError(f'{self.file_path}: no such file')
        self._db = sqlite3.connect(f'file:{self.file_path}?mode=ro', uri=True)
        try:
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {'topics', 'messages'} <= tables:
                raise BagError(f'{self.file_path}: not a rosbag2 sqlite3 file (tables {sorted(tables)})')
            self.schema_version = 1
            if 'schema' in tables:
                self.schema_version = int(self._db.execute('SELECT max(schema_version) FROM schema').fetchone()[0])
            columns = _columns(self._db, 'topics')
            select = ['id', 'name', 'type', 'serialization_format']
            select += [c for c in ('offered_qos_profiles', 'type_description_hash') if c in columns]
            counts = dict(self._db.execute('SELECT topic_id, count(*) FROM messages GROUP BY topic_id'))
            self._topic_names: dict[int, str] = {}
            for row in self._db.execute(f'SELECT {", ".join(select)} FROM topics ORDER BY id'):
                values = dict(zip(select, row))
                self._topic_names[values['id']] = values['name']
                self.topics[values['name']] = TopicInfo(
                    values['name'], values['type'], values['serialization_format'],
                    values.get('offered_qos_profiles', ''), values.get('type_description_hash', ''),
                    int(counts.get(values['id'], 0)))
            self.definitions: dict[str, tuple[str, str]] = {}
            if 'message_definitions' in tables:
                for topic_type, encoding, text in self._db.execute(
                        'SELECT topic_type, encoding, encoded_message_definition FROM message_definitions'):
                    self.definitions[topic_type] = (encoding, text)
            self.metadata_text = ''
            if 'metadata' in tables:
                row = self._db.execute('SELECT metadata FROM metadata ORDER BY id DESC LIMIT 1').fetchone()
                self.metadata_text = row[0] if row else ''
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise BagError(f'{self.file_path}: not a readable sqlite3 bag ({error})') from None
        except BagError:
            self._db.close()
            raise

    def _stored_messages(self, topics: Iterable[str] | None) -> Iterator[RawMessage]:
        query = 'SELECT topic_id, timestamp, data FROM messages'
        parameters: list = []
        if topics is not None:
            ids = [topic_id for topic_id, name in self._topic_names.items() if name in set(topics)]
            if not ids:
                return
            query += f' WHERE topic_id IN ({", ".join("?" * len(ids))})'
            parameters = ids
        query += ' ORDER BY timestamp ASC, id ASC'
        for topic_id, timestamp, data in self._db.execute(query, parameters):
            yield RawMessage(self._topic_names[topic_id], int(timestamp), bytes(data))

    def _close(self) -> None:
        self._db.close()
