"""Reading a tracking bag: its image topic, the ground truth of every image, the sequences.

The ground truth comes from a vision_msgs/Detection2D topic (``/ground_truth`` by default, as
``transt-make-bag`` writes it: the image's header stamp, the box, the sequence name in ``id``) or,
for a bag that has none, from a box file (the data sets' formats, one ``x,y,w,h`` line per image
message in bag order): given explicitly, or found beside the bag as ``groundtruth.txt`` /
``groundtruth_rect.txt``.

Ground-truth messages are matched to images by header stamp within a tolerance (default: half
the median image period), so ground truth stamped by another clock than the camera's (a few ms
off) still matches; how many images got ground truth is reported, and a bag where none matches
is an error, not a silent score of 0.

A ground-truth topic of type vision_msgs/Detection2DArray (``transt-make-bag --objects K``) holds
several targets per image: every ``id`` is then a track, scored as a sequence of its own, made of the
images whose ground truth lists it (:attr:`TrackingBag.frame_tracks` says which tracks each image
belongs to).
"""
from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bags import open_bag
from ..bags.compression import COMPRESSED_FILE_SUFFIX
from ..bags.messages import detection_box
from ..common.box_files import read_box_file
from ..common.stamps import NANOSECONDS_PER_SECOND, stamp_to_ns
from ..ros.image_conversion import compressed_to_rgb, image_to_rgb

LOGGER = logging.getLogger(__name__)
GROUND_TRUTH_TOPIC = '/ground_truth'
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
ARRAY_TYPE = 'vision_msgs/msg/Detection2DArray'
GROUND_TRUTH_FILES = ('groundtruth.txt', 'groundtruth_rect.txt')
"""Box files looked for beside a bag without a ground-truth topic."""
DEFAULT_FRAME_PERIOD_S = 1 / 30


def header_stamp_ns(data: bytes) -> int:
    """Stamp (ns) of a CDR message whose first field is a std_msgs/Header, read without decoding it."""
    if len(data) < 12 or data[0] != 0 or data[1] not in (0, 1):
        raise ValueError(f'not a plain CDR message (encapsulation {bytes(data[:2]).hex()})')
    seconds, nanoseconds = struct.unpack_from('<iI' if data[1] == 1 else '>iI', data, 4)
    return seconds * NANOSECONDS_PER_SECOND + nanoseconds


def image_to_rgb_array(msg) -> np.ndarray:
    """A sensor_msgs/Image or CompressedImage -> RGB uint8 ``(H, W, 3)`` (own, writable copy)."""
    if hasattr(msg, 'format'):
        return compressed_to_rgb(msg.format, msg.data)
    rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian))
    return np.array(rgb, dtype=np.uint8, order='C')


@dataclass
class BagSequence:
    """The frames of one sequence: image stamps ``(N,)`` and ground truth ``(N, 4)`` (NaN: none)."""

    name: str
    stamps_ns: np.ndarray
    ground_truth: np.ndarray
    visible = None
    """No visibility flags beyond the boxes themselves (same interface as a data set's sequence)."""
    fully_annotated = True

    def __len__(self) -> int:
        return len(self.stamps_ns)

    @property
    def init_frame(self) -> int:
        """First frame with a usable box, -1 if none."""
        valid = np.all(np.isfinite(self.ground_truth), axis=1) & (self.ground_truth[:, 2] > 0) & (
            self.ground_truth[:, 3] > 0)
        indices = np.flatnonzero(valid)
        return int(indices[0]) if len(indices) else -1


@dataclass
class TrackingBag:
    """What an evaluation needs to know about a bag; frames are read on demand."""

    path: Path
    image_topic: str
    image_type: str
    camera_info_topic: str | None
    ground_truth_topic: str | None
    sequences: list[BagSequence]
    locations: list[tuple[int, int]]
    """``(sequence index, frame index)`` of every image message, in bag order."""
    frame_period_s: float = field(default=DEFAULT_FRAME_PERIOD_S)
    ground_truth_source: str = ''
    """The topic or the box file the ground truth came from."""
    frames_with_ground_truth: int = 0
    """Images that got a ground-truth message (or a file row)."""
    stamp_tolerance_ns: int = 0
    frame_tracks: list[list[tuple[int, int]]] | None = None
    """Multi-object bags: for every image, the ``(sequence index, frame index)`` of each track it
    belongs to (possibly none); ``locations`` then holds the first of them, ``(-1, -1)`` for none."""

    @property
    def n_frames(self) -> int:
        return len(self.locations)

    @property
    def multi_object(self) -> bool:
        return self.frame_tracks is not None

    @property
    def max_tracks_per_image(self) -> int:
        return max((len(tracks) for tracks in self.frame_tracks), default=0) if self.multi_object else 1

    def images(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(image index, RGB uint8 frame)`` for every image, in bag order."""
        with open_bag(self.path) as reader:
            for index, (_, msg) in enumerate(reader.decoded([self.image_topic])):
                yield index, image_to_rgb_array(msg)

    def tracks_of(self, image_index: int) -> list[tuple[int, int]]:
        """``(sequence index, frame index)`` of every track image ``image_index`` belongs to."""
        if self.frame_tracks is not None:
            return self.frame_tracks[image_index]
        return [self.locations[image_index]]

    def frames(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(sequence index, frame index, RGB uint8 frame)`` for every image, in bag order."""
        with open_bag(self.path) as reader:
            for (sequence_index, frame_index), (_, msg) in zip(self.locations, reader.decoded([self.image_topic])):
                yield sequence_index, frame_index, image_to_rgb_array(msg)

    def matching_summary(self) -> dict:
        return {'source': self.ground_truth_source, 'images': self.n_frames,
                'images_with_ground_truth': self.frames_with_ground_truth,
                'stamp_tolerance_ms': self.stamp_tolerance_ns / 1e6}


def _image_topic(reader, wanted: str | None) -> tuple[str, str]:
    if wanted is not None:
        if wanted not in reader.topics:
            raise ValueError(f'{reader.file_path}: no topic {wanted}; topics: {sorted(reader.topics)}')
        return wanted, reader.topics[wanted].type
    candidates = [(name, info.type) for name, info in reader.topics.items() if info.type in IMAGE_TYPES]
    if len(candidates) != 1:
        raise ValueError(f'{reader.file_path}: {len(candidates)} image topics ({candidates}); choose one with '
                         '--image-topic')
    return candidates[0]


def _unique(name: str, taken: set[str]) -> str:
    candidate, suffix = name, 2
    while candidate in taken:
        candidate, suffix = f'{name}.{suffix}', suffix + 1
    taken.add(candidate)
    return candidate


def bag_name(path: Path) -> str:
    """The bag's name: its directory's, or a storage file's without ``.mcap``/``.db3``/``.zstd``."""
    path = Path(path)
    if path.is_dir():
        return path.resolve().name
    name = path.name.removesuffix(COMPRESSED_FILE_SUFFIX)
    return name.rsplit('.', 1)[0] if '.' in name else name


def ground_truth_file_beside(path: Path) -> Path | None:
    """A box file (:data:`GROUND_TRUTH_FILES`) in the bag's directory, or None."""
    directory = Path(path) if Path(path).is_dir() else Path(path).parent
    for name in GROUND_TRUTH_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def _median_period_ns(stamps: np.ndarray) -> float | None:
    steps = np.diff(np.sort(stamps))
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else None


def match_stamps(image_stamps: np.ndarray, truth_stamps: np.ndarray, tolerance_ns: float) -> np.ndarray:
    """For every image stamp, the index of the nearest ground-truth stamp within ``tolerance_ns``, else -1."""
    image_stamps = np.asarray(image_stamps, dtype=np.int64)
    order = np.argsort(truth_stamps, kind='stable')
    ordered = np.asarray(truth_stamps, dtype=np.int64)[order]
    matches = np.full(len(image_stamps), -1, dtype=np.int64)
    if not len(ordered):
        return matches
    right = np.clip(np.searchsorted(ordered, image_stamps), 0, len(ordered) - 1)
    left = np.clip(right - 1, 0, len(ordered) - 1)
    nearest = np.where(np.abs(ordered[left] - image_stamps) <= np.abs(ordered[right] - image_stamps), left, right)
    close = np.abs(ordered[nearest] - image_stamps) <= tolerance_ns
    matches[close] = order[nearest[close]]
    return matches


@dataclass
class _BagMessages:
    """What :func:`read_tracking_bag` reads from the bag in one pass."""

    image_topic: str
    image_type: str
    info_topics: list[str]
    """CameraInfo topics, the image topic's own first."""
    images: list[tuple[int, int]]
    """``(header stamp, log time)`` of every image, ns, in bag order."""
    ground_truth_file: Path | None
    """The box file the ground truth comes from, or None: the topic."""
    arrays: bool
    """The ground truth topic carries Detection2DArray (multi-object)."""
    truth: list[tuple]
    """Ground truth messages: ``(stamp, box, id)``, or ``(stamp, [(box, id), ...], '')`` for arrays."""


def _read_messages(path: Path, image_topic: str | None, ground_truth_topic: str,
                   ground_truth_file: Path | None) -> _BagMessages:
    """The image stamps and the ground truth messages (or the box file beside the bag to take instead)."""
    with open_bag(path) as reader:
        image_topic, image_type = _image_topic(reader, image_topic)
        info_topics = reader.topics_of_type('sensor_msgs/msg/CameraInfo')
        base = image_topic.removesuffix('/compressed').rpartition('/')[0]
        info_topics.sort(key=lambda name: name.rpartition('/')[0] != base)
        images = [(header_stamp_ns(raw.data), raw.log_time_ns) for raw in reader.messages([image_topic])]
        if ground_truth_file is None and ground_truth_topic not in reader.topics:
            ground_truth_file = ground_truth_file_beside(path)
            if ground_truth_file is None:
                raise ValueError(f'{path}: no ground truth topic {ground_truth_topic} (topics: '
                                 f'{sorted(reader.topics)}) and no {" / ".join(GROUND_TRUTH_FILES)} beside it; '
                                 'choose the topic with --ground-truth-topic or give a box file with --ground-truth')
            LOGGER.info('%s: ground truth from %s', path, ground_truth_file)
        arrays = ground_truth_file is None and reader.topics[ground_truth_topic].type == ARRAY_TYPE
        truth = [] if ground_truth_file is not None else [
            (stamp_to_ns(msg.header.stamp), [(detection_box(d), d.id) for d in msg.detections] if arrays
             else detection_box(msg), '' if arrays else msg.id)
            for _, msg in reader.decoded([ground_truth_topic])]
    return _BagMessages(image_topic, image_type, info_topics, images, ground_truth_file, arrays, truth)


def _ground_truth_from_file(path: Path, messages: _BagMessages, name: str) -> tuple[list, str, int]:
    """``(per-image (box, name), source, images matched)`` from the box file: one row per image."""
    rows = read_box_file(messages.ground_truth_file)
    if len(rows) != len(messages.images):
        raise ValueError(f'{messages.ground_truth_file}: {len(rows)} boxes for the {len(messages.images)} images on '
                         f'{messages.image_topic} of {path} (one x,y,w,h line per image, in bag order)')
    return [(tuple(row), name) for row in rows], str(messages.ground_truth_file), len(messages.images)


def _ground_truth_from_topic(path: Path, messages: _BagMessages, ground_truth_topic: str, image_stamps: np.ndarray,
                             tolerance_ns: float) -> tuple[list, str, int]:
    """``(per-image (box(es), name) or (None, None), source, images matched)``: each image gets the ground
    truth message whose stamp is nearest to its own, within ``tolerance_ns``."""
    truth = messages.truth
    matches = match_stamps(image_stamps, np.array([stamp for stamp, _, _ in truth], dtype=np.int64), tolerance_ns)
    per_image = [(truth[index][1], truth[index][2]) if index >= 0 else (None, None) for index in matches]
    matched = int(np.sum(matches >= 0))
    if truth and not matched:
        truth_stamps = np.array([stamp for stamp, _, _ in truth], dtype=np.int64)
        offsets = np.abs(truth_stamps[match_stamps(image_stamps, truth_stamps, np.inf)] - image_stamps).min()
        raise ValueError(f'{path}: none of the {len(truth)} ground-truth stamps on {ground_truth_topic} is within '
                         f'{tolerance_ns / 1e6:.3f} ms of an image stamp on {messages.image_topic} (closest: '
                         f'{offsets / 1e6:.3f} ms); widen the match with --stamp-tolerance SECONDS')
    if not truth:
        raise ValueError(f'{path}: no message on the ground truth topic {ground_truth_topic}')
    if matched < len(messages.images):
        LOGGER.warning('%s: %d of %d images have ground truth on %s (stamps within %.3f ms); the others '
                       'count as frames without a target', path, matched, len(messages.images), ground_truth_topic,
                       tolerance_ns / 1e6)
    return per_image, ground_truth_topic, matched


def _single_object_sequences(images: list[tuple[int, int]], per_image: list, default_name: str
                             ) -> tuple[list[BagSequence], list[tuple[int, int]], float]:
    """``(sequences, location of every image, frame period s)``: a new sequence where the ground truth's
    name changes; images without ground truth belong to the sequence in progress, target absent."""
    names_taken: set[str] = set()
    sequences: list[dict] = []
    locations = []
    for (stamp, log_time), (box, name) in zip(images, per_image):
        name = name or (sequences[-1]['source'] if sequences else default_name)
        if not sequences or (box is not None and name != sequences[-1]['source']):
            sequences.append({'source': name, 'name': _unique(name, names_taken), 'stamps': [], 'boxes': [],
                              'log_times': []})
        current = sequences[-1]
        locations.append((len(sequences) - 1, len(current['stamps'])))
        current['stamps'].append(stamp)
        current['log_times'].append(log_time)
        current['boxes'].append(box if _present(box) else (np.nan,) * 4)
    periods = np.concatenate([np.diff(s['log_times']) for s in sequences if len(s['log_times']) > 1] or [[]])
    period_s = float(np.median(periods)) / 1e9 if len(periods) else DEFAULT_FRAME_PERIOD_S
    return ([BagSequence(s['name'], np.array(s['stamps'], dtype=np.int64),
                         np.array(s['boxes'], dtype=float).reshape(-1, 4)) for s in sequences], locations, period_s)


def read_tracking_bag(path: Path, image_topic: str | None = None, ground_truth_topic: str = GROUND_TRUTH_TOPIC,
                      ground_truth_file: Path | None = None, stamp_tolerance_s: float | None = None) -> TrackingBag:
    """Index a bag: its image topic, the ground truth of every image, the sequences.

    A new sequence starts where the ground truth's ``id`` (the sequence name) changes. An empty box
    (zero width or height) marks an absent target; images without ground truth count as
    absent-target frames of the sequence in progress. ``stamp_tolerance_s``: the largest stamp
    difference that still matches (default: half the median image period).
    """
    path = Path(path)
    if stamp_tolerance_s is not None and stamp_tolerance_s < 0:
        raise ValueError(f'the stamp tolerance must not be negative, got {stamp_tolerance_s:g} s')
    messages = _read_messages(path, image_topic, ground_truth_topic, ground_truth_file)
    if not messages.images:
        raise ValueError(f'{path}: no message on {messages.image_topic}')
    image_stamps = np.array([stamp for stamp, _ in messages.images], dtype=np.int64)
    period_ns = _median_period_ns(np.array([log_time for _, log_time in messages.images], dtype=np.int64))
    tolerance_ns = round(stamp_tolerance_s * 1e9) if stamp_tolerance_s is not None else (
        period_ns / 2 if period_ns else 0)
    if messages.ground_truth_file is not None:
        per_image, source, matched = _ground_truth_from_file(path, messages, bag_name(path))
    else:
        per_image, source, matched = _ground_truth_from_topic(path, messages, ground_truth_topic, image_stamps,
                                                              tolerance_ns)
    info_topic = messages.info_topics[0] if messages.info_topics else None
    if messages.arrays:
        return _multi_object_bag(path, messages.image_topic, messages.image_type, messages.info_topics,
                                 ground_truth_topic, messages.images, per_image, matched, int(tolerance_ns))
    sequences, locations, period_s = _single_object_sequences(messages.images, per_image, bag_name(path))
    return TrackingBag(path, messages.image_topic, messages.image_type, info_topic,
                       None if messages.ground_truth_file is not None else ground_truth_topic, sequences, locations,
                       period_s, source, matched, int(tolerance_ns))


def _present(box) -> bool:
    return box is not None and bool(np.all(np.isfinite(box))) and box[2] > 0 and box[3] > 0


def _multi_object_bag(path: Path, image_topic: str, image_type: str, info_topics: list[str], ground_truth_topic: str,
                      images: list[tuple[int, int]], per_image: list, matched: int, tolerance_ns: int) -> TrackingBag:
    """A bag whose ground truth is a Detection2DArray per image: one sequence per detection ``id``,
    made of the images whose array lists that id (an empty box: the target is absent there)."""
    by_name: dict[str, dict] = {}
    frame_tracks: list[list[tuple[int, int]]] = []
    for (stamp, log_time), (detections, _) in zip(images, per_image):
        tracks = []
        for box, name in detections or ():
            name = name or 'target'
            if name not in by_name:
                by_name[name] = {'stamps': [], 'boxes': [], 'log_times': [], 'index': len(by_name)}
            sequence = by_name[name]
            tracks.append((sequence['index'], len(sequence['stamps'])))
            sequence['stamps'].append(stamp)
            sequence['log_times'].append(log_time)
            sequence['boxes'].append(box if _present(box) else (np.nan,) * 4)
        frame_tracks.append(tracks)
    if not by_name:
        raise ValueError(f'{path}: the Detection2DArray ground truth on {ground_truth_topic} lists no detection')
    log_times = np.array([log_time for _, log_time in images], dtype=np.int64)
    period_ns = _median_period_ns(log_times)
    sequences = [BagSequence(name, np.array(s['stamps'], dtype=np.int64), np.array(s['boxes'], dtype=float))
                 for name, s in by_name.items()]
    locations = [tracks[0] if tracks else (-1, -1) for tracks in frame_tracks]
    return TrackingBag(path, image_topic, image_type, info_topics[0] if info_topics else None, ground_truth_topic,
                       sequences, locations, period_ns / 1e9 if period_ns else DEFAULT_FRAME_PERIOD_S,
                       ground_truth_topic, matched, tolerance_ns, frame_tracks)
