"""What rosbag2 writes next to the messages: definitions, type hashes, QoS offers, metadata.yaml.

Conventions followed (rosbag2 Iron .. Kilted, read back by Humble too):

* Message definitions: ``ros2msg`` text as ``rosbag2_cpp::LocalMessageDefinitionSource`` builds it:
  the type's ``.msg`` file from its package's share directory, then every dependency (depth first,
  each once, dependencies of one file in sorted order) after a line of 80 ``=`` and a line
  ``MSG: <pkg>/<Type>``. Types without a ``.msg`` file fall back to ``ros2idl`` (``IDL:`` blocks).
* Type hashes (``RIHS01_...``) come from the generated ``share/<pkg>/msg/<Type>.json``.
* ``offered_qos_profiles`` is a YAML string of a list of QoS profiles with the policies as integers
  and ``metadata.yaml`` uses ``version: 8``: the layout every distro since Humble reads (Jazzy's
  version 9 switched the policies to names; readers convert version 8 on load).
* A bag is a directory holding ``metadata.yaml`` and the storage files it lists
  (``relative_file_paths``); ``ros2 bag play <dir>`` and, for MCAP, ``ros2 bag play <file>.mcap``
  both work.
"""
from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..common.files import atomic_write_text

METADATA_FILE = 'metadata.yaml'
METADATA_VERSION = 8
SERIALIZATION_FORMAT = 'cdr'
DEFAULT_ROS_DISTRO = 'kilted'
DEFINITION_DELIMITER = '=' * 80 + '\n'
PRIMITIVE_TYPES = frozenset({'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
                             'int32', 'uint32', 'int64', 'uint64', 'string'})
_MSG_FIELD_TYPE = re.compile(r'(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+')
_IDL_INCLUDE = re.compile(r'(?:^|\n)#include\s+(?:"|<)([a-zA-Z0-9_/]+)\.idl(?:"|>)')

# rmw enum values (rmw/types.h), as rosbag2 metadata version <= 8 stores them.
HISTORY_KEEP_LAST = 1
RELIABILITY = {'reliable': 1, 'best_effort': 2}
DURABILITY = {'transient_local': 1, 'volatile': 2}
LIVELINESS_AUTOMATIC = 1


class BagError(RuntimeError):
    """A bag that cannot be read or written; the message names the file and the problem."""


def ros_distro() -> str:
    return os.environ.get('ROS_DISTRO') or DEFAULT_ROS_DISTRO


def split_type_name(type_name: str) -> tuple[str, str, str]:
    """``'pkg/msg/Type'`` or ``'pkg/Type'`` -> ``(pkg, 'msg', Type)``."""
    parts = type_name.split('/')
    if len(parts) == 2:
        return parts[0], 'msg', parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise BagError(f"invalid message type name '{type_name}' (expected 'pkg/msg/Type')")


def full_type_name(type_name: str) -> str:
    return '/'.join(split_type_name(type_name))


def message_class(type_name: str):
    """The generated Python class of ``pkg/msg/Type`` (e.g. ``sensor_msgs.msg.Image``)."""
    package, namespace, name = split_type_name(type_name)
    try:
        return getattr(importlib.import_module(f'{package}.{namespace}'), name)
    except (ImportError, AttributeError) as error:
        raise BagError(f"message type '{type_name}' is not installed ({error})") from None


def type_name_of(msg_or_class) -> str:
    """``'sensor_msgs/msg/Image'`` for an instance or class of a generated message."""
    cls = msg_or_class if isinstance(msg_or_class, type) else type(msg_or_class)
    package = cls.__module__.split('.')[0]
    return f'{package}/msg/{cls.__name__}'


def _share_directory(package: str) -> Path | None:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(package))
    except (PackageNotFoundError, LookupError, ValueError):
        return None


def _interface_file(type_name: str, extension: str) -> str | None:
    package, namespace, name = split_type_name(type_name)
    share = _share_directory(package)
    path = share / namespace / f'{name}{extension}' if share else None
    return path.read_text() if path is not None and path.is_file() else None


def _dependencies(text: str, package: str, extension: str) -> list[str]:
    if extension == '.idl':
        return sorted(set(_IDL_INCLUDE.findall(text)))
    found = set()
    for type_name in _MSG_FIELD_TYPE.findall(text):
        if type_name in PRIMITIVE_TYPES:
            continue
        found.add(type_name if '/' in type_name else f'{package}/{type_name}')
    return sorted(found)


def _concatenated_definition(type_name: str, extension: str, tag: str) -> str:
    """The definition of ``type_name`` followed by its dependencies', depth first, each once."""
    seen: set[str] = set()

    def append(name: str, depth: int) -> str:
        if depth <= 0:
            raise BagError(f'definition of {type_name} nests too deeply')
        text = _interface_file(name, extension)
        if text is None:
            raise BagError(f'no {extension} definition installed for {name} (needed by {type_name})')
        for dependency in _dependencies(text, split_type_name(name)[0], extension):
            if dependency not in seen:
                seen.add(dependency)
                text += '\n' + DEFINITION_DELIMITER + tag + dependency + '\n' + append(dependency, depth - 1)
        return text

    return append(type_name, 50)


def message_definition(type_name: str) -> tuple[str, str]:
    """``(encoding, full text)`` of ``type_name`` as rosbag2 stores it in a bag's schema.

    Encoding ``'ros2msg'`` (or ``'ros2idl'`` when there is no ``.msg`` file); ``('unknown', '')``
    when the interface files are not installed.
    """
    if _interface_file(type_name, '.msg') is not None:
        return 'ros2msg', _concatenated_definition(type_name, '.msg', 'MSG: ')
    if _interface_file(type_name, '.idl') is not None:
        tag = 'IDL: '
        return 'ros2idl', DEFINITION_DELIMITER + tag + type_name + '\n' + _concatenated_definition(
            type_name, '.idl', tag)
    return 'unknown', ''


def type_description_hash(type_name: str) -> str:
    """``RIHS01_<sha256>`` of the installed type, or ``''`` when its JSON description is absent."""
    text = _interface_file(type_name, '.json')
    if text is None:
        return ''
    wanted = full_type_name(type_name)
    for entry in json.loads(text).get('type_hashes', []):
        if entry.get('type_name') == wanted:
            return entry.get('hash_string', '')
    return ''


def offered_qos_profiles(reliability: str = 'reliable', depth: int = 10, durability: str = 'volatile') -> str:
    """One publisher's QoS offer as rosbag2 (metadata version 8) serialises it: a YAML list."""
    unspecified = {'sec': 0, 'nsec': 0}
    profile = {'history': HISTORY_KEEP_LAST, 'depth': int(depth), 'reliability': RELIABILITY[reliability],
               'durability': DURABILITY[durability], 'deadline': dict(unspecified),
               'lifespan': dict(unspecified), 'liveliness': LIVELINESS_AUTOMATIC,
               'liveliness_lease_duration': dict(unspecified), 'avoid_ros_namespace_conventions': False}
    return yaml.safe_dump([profile], sort_keys=False, default_flow_style=False)


class _MetadataDumper(yaml.SafeDumper):
    """Multi-line strings (the QoS offers) as literal blocks, as rosbag2 writes them."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar('tag:yaml.org,2002:str', text, style='|' if '\n' in text else None)


_MetadataDumper.add_representer(str, _represent_text)


@dataclass
class TopicInfo:
    """One topic of a bag (rosbag2 ``TopicMetadata``) and its message count."""

    name: str
    type: str
    serialization_format: str = SERIALIZATION_FORMAT
    offered_qos_profiles: str = ''
    type_description_hash: str = ''
    message_count: int = 0

    def metadata_entry(self) -> dict:
        return {'topic_metadata': {'name': self.name, 'type': self.type,
                                   'serialization_format': self.serialization_format,
                                   'offered_qos_profiles': self.offered_qos_profiles,
                                   'type_description_hash': self.type_description_hash},
                'message_count': self.message_count}


@dataclass
class RawMessage:
    """One stored message: topic, receive (log) time in ns since the epoch, CDR bytes."""

    topic: str
    log_time_ns: int
    data: bytes


@dataclass
class FileSummary:
    path: str
    starting_time_ns: int = 0
    duration_ns: int = 0
    message_count: int = 0


@dataclass
class BagSummary:
    """What ``metadata.yaml`` says about a bag (rosbag2 ``BagMetadata``)."""

    storage_identifier: str
    files: list[FileSummary]
    topics: list[TopicInfo]
    custom_data: dict[str, str] = field(default_factory=dict)
    ros_distro: str = ''
    compression_format: str = ''
    compression_mode: str = ''
    """``''``, ``'MESSAGE'`` or ``'FILE'`` (rosbag2 ``compression_mode``; any case is read)."""
    version: int = METADATA_VERSION
    """The ``version`` of the metadata.yaml read (written: always :data:`METADATA_VERSION`)."""

    @property
    def message_count(self) -> int:
        return sum(f.message_count for f in self.files)

    @property
    def starting_time_ns(self) -> int:
        starts = [f.starting_time_ns for f in self.files if f.message_count]
        return min(starts) if starts else 0

    @property
    def duration_ns(self) -> int:
        ends = [f.starting_time_ns + f.duration_ns for f in self.files if f.message_count]
        return max(ends) - self.starting_time_ns if ends else 0

    def to_document(self) -> dict:
        info = {
            'version': METADATA_VERSION, 'storage_identifier': self.storage_identifier,
            'duration': {'nanoseconds': self.duration_ns},
            'starting_time': {'nanoseconds_since_epoch': self.starting_time_ns},
            'message_count': self.message_count,
            'topics_with_message_count': [topic.metadata_entry() for topic in self.topics],
            'compression_format': self.compression_format, 'compression_mode': self.compression_mode,
            'relative_file_paths': [f.path for f in self.files],
            'files': [{'path': f.path, 'starting_time': {'nanoseconds_since_epoch': f.starting_time_ns},
                       'duration': {'nanoseconds': f.duration_ns}, 'message_count': f.message_count}
                      for f in self.files],
            'custom_data': dict(self.custom_data) or None,
            'ros_distro': self.ros_distro or ros_distro(),
        }
        return {'rosbag2_bagfile_information': info}

    def to_yaml(self) -> str:
        return yaml.dump(self.to_document(), Dumper=_MetadataDumper, sort_keys=False, default_flow_style=False)

    @classmethod
    def from_yaml(cls, text: str) -> BagSummary:
        return cls.from_document(yaml.safe_load(text) or {})

    @classmethod
    def from_document(cls, document: dict) -> BagSummary:
        """Any metadata version rosbag2 has written (1 .. 9): fields a version lacks get their defaults
        (compression: version 3, QoS offers: 4, ``files``: 5, ``custom_data``: 6, type hashes: 7,
        ``ros_distro``: 8, QoS offers as a YAML list with policy names instead of a string: 9)."""
        info = document.get('rosbag2_bagfile_information', document)
        topics = []
        for entry in info.get('topics_with_message_count') or []:
            meta = entry['topic_metadata']
            qos = meta.get('offered_qos_profiles', '')
            topics.append(TopicInfo(meta['name'], meta['type'], meta.get('serialization_format', 'cdr'),
                                    qos if isinstance(qos, str) else yaml.safe_dump(qos, sort_keys=False),
                                    meta.get('type_description_hash', ''), int(entry.get('message_count', 0))))
        files = [FileSummary(f['path'], int(f['starting_time']['nanoseconds_since_epoch']),
                             int(f['duration']['nanoseconds']), int(f['message_count']))
                 for f in info.get('files') or []]
        if not files:
            files = [FileSummary(path) for path in info.get('relative_file_paths') or []]
        return cls(info.get('storage_identifier', ''), files, topics, dict(info.get('custom_data') or {}),
                   str(info.get('ros_distro') or ''), str(info.get('compression_format') or ''),
                   str(info.get('compression_mode') or ''), int(info.get('version', METADATA_VERSION)))


def write_metadata_yaml(directory: Path, summary: BagSummary) -> Path:
    """``<directory>/metadata.yaml``, written atomically."""
    return atomic_write_text(Path(directory) / METADATA_FILE, summary.to_yaml())


def read_metadata_yaml(directory: Path) -> BagSummary | None:
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        return None
    try:
        return BagSummary.from_document(yaml.safe_load(path.read_text()) or {})
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise BagError(f'{path}: unreadable rosbag2 metadata ({type(error).__name__}: {error})') from None
