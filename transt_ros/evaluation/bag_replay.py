"""Evaluate trackers on a tracking bag (see :mod:`transt_ros.bags.convert`), offline or live.

* **offline**: every image of the bag, in order, through an in-process tracker (TransT and the
  OpenCV references): frame-accurate, no frame is ever skipped; latency = ``track()`` time.
* **live**: the real ROS pipeline. ``transt_ros.ros.bringup`` (lifecycle manager + tracker node)
  runs in a subprocess on a ROS domain of its own (loopback discovery); the lifecycle is driven
  through the manager's ``change_state`` service; the bag's image and camera-info messages are
  published at their recorded rate x ``rate``; detections (``/transt_tracker/detection``) are
  recorded (optionally into a new bag) and matched to the ground truth by header stamp. A frame
  without a detection of the current track (the node skipped it because it was busy, or it was
  lost in transport) counts as a failure: IoU 0, infinite centre error. Latency = wall time from
  publishing an image to receiving its detection.

Protocol (both modes): one-pass evaluation (OPE, as OTB / LaSOT): each sequence is initialised
once, on its first frame with a ground-truth box (live: the player publishes that frame, waits
until the node has processed it, calls ``~/set_target`` with the box and that frame's stamp, then
plays on with the clock re-based, so the handshake costs no frames); there is **no
re-initialisation** after a failure: a lost target stays lost. The initial frame holds the
ground-truth box and counts in the metrics, as in the OTB toolkit.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .metrics import DatasetMetrics, aggregate, evaluate_sequence, latency_summary
from .run_dataset import SequenceRun, one_pass_step

LOGGER = logging.getLogger(__name__)
GROUND_TRUTH_TOPIC = '/ground_truth'
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
MANAGER_NODE = '/transt_model_manager'
TRACKER_NODE = '/transt_tracker'
PASSIVE_OPENMP = 'PASSIVE'
"""``OMP_WAIT_POLICY`` of the evaluation's processes (unless set): torch's OpenMP workers otherwise
spin between operations and, on a machine with few cores, starve the player, the node and the
OpenCV trackers (measured on 2 busy cores: 200 ms instead of 30 ms per frame). Read when torch is
imported, so entry points set it first."""
PROTOCOL = ('one-pass evaluation (OTB/LaSOT OPE): each sequence is initialised once on its first frame with a '
            'ground-truth box, through SetTarget with that frame\'s stamp in live mode; no re-initialisation '
            'after failure; frames without a detection count as failures (IoU 0)')


# ----------------------------------------------------------------------------------- the bag

def header_stamp_ns(data: bytes) -> int:
    """Stamp (ns) of a CDR message whose first field is a std_msgs/Header, read without decoding it."""
    if len(data) < 12 or data[0] != 0 or data[1] not in (0, 1):
        raise ValueError(f'not a plain CDR message (encapsulation {bytes(data[:2]).hex()})')
    seconds, nanoseconds = struct.unpack_from('<iI' if data[1] == 1 else '>iI', data, 4)
    return seconds * 1_000_000_000 + nanoseconds


@dataclass
class BagSequence:
    """The frames of one sequence: image stamps ``(N,)`` and ground truth ``(N, 4)`` (NaN: none)."""

    name: str
    stamps_ns: np.ndarray
    ground_truth: np.ndarray

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
    ground_truth_topic: str
    sequences: list[BagSequence]
    locations: list[tuple[int, int]]
    """``(sequence index, frame index)`` of every image message, in bag order."""
    frame_period_s: float = field(default=1 / 30)

    @property
    def n_frames(self) -> int:
        return len(self.locations)

    def frames(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(sequence index, frame index, RGB uint8 frame)`` for every image, in bag order."""
        from ..bags import open_bag
        from ..bags.messages import image_to_rgb_array

        with open_bag(self.path) as reader:
            for (sequence_index, frame_index), (_, msg) in zip(self.locations, reader.decoded([self.image_topic])):
                yield sequence_index, frame_index, image_to_rgb_array(msg)


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


def read_tracking_bag(path: Path, image_topic: str | None = None,
                      ground_truth_topic: str = GROUND_TRUTH_TOPIC) -> TrackingBag:
    """Index a bag: its image topic, the ground truth per image stamp, the sequences.

    A new sequence starts where the ground truth's ``id`` (the sequence name) changes. An empty box
    (zero width or height) marks an absent target; images without a ground-truth message count
    as absent-target frames of the sequence in progress.
    """
    from ..bags import open_bag
    from ..bags.messages import detection_box, ns_from_time

    path = Path(path)
    with open_bag(path) as reader:
        image_topic, image_type = _image_topic(reader, image_topic)
        if ground_truth_topic not in reader.topics:
            raise ValueError(f'{path}: no ground truth topic {ground_truth_topic}; topics: {sorted(reader.topics)}')
        info_topics = reader.topics_of_type('sensor_msgs/msg/CameraInfo')
        base = image_topic.removesuffix('/compressed').rpartition('/')[0]
        info_topics.sort(key=lambda name: name.rpartition('/')[0] != base)
        truth = {ns_from_time(msg.header.stamp): (detection_box(msg), msg.id)
                 for _, msg in reader.decoded([ground_truth_topic])}
        images = [(header_stamp_ns(raw.data), raw.log_time_ns) for raw in reader.messages([image_topic])]
    if not images:
        raise ValueError(f'{path}: no message on {image_topic}')
    default_name = path.stem if path.is_file() else path.name
    names_taken: set[str] = set()
    sequences: list[dict] = []
    locations = []
    for stamp, log_time in images:
        box, name = truth.get(stamp, (None, None))
        name = name or (sequences[-1]['source'] if sequences else default_name)
        if not sequences or (box is not None and name != sequences[-1]['source']):
            sequences.append({'source': name, 'name': _unique(name, names_taken), 'stamps': [], 'boxes': [],
                              'log_times': []})
        current = sequences[-1]
        locations.append((len(sequences) - 1, len(current['stamps'])))
        current['stamps'].append(stamp)
        current['log_times'].append(log_time)
        present = box is not None and box[2] > 0 and box[3] > 0
        current['boxes'].append(box if present else (np.nan,) * 4)
    periods = np.concatenate([np.diff(s['log_times']) for s in sequences if len(s['log_times']) > 1] or [[]])
    period_s = float(np.median(periods)) / 1e9 if len(periods) else 1 / 30
    return TrackingBag(path, image_topic, image_type, info_topics[0] if info_topics else None, ground_truth_topic,
                       [BagSequence(s['name'], np.array(s['stamps'], dtype=np.int64),
                                    np.array(s['boxes'], dtype=float).reshape(-1, 4)) for s in sequences],
                       locations, period_s)


def _empty_run(sequence: BagSequence, device: str | None = None) -> SequenceRun:
    count = len(sequence)
    return SequenceRun(sequence.name, np.full((count, 4), np.nan), np.full(count, np.nan), np.full(count, np.nan),
                       sequence.init_frame, device)


# ----------------------------------------------------------------------------------- offline

def run_offline(bag: TrackingBag, trackers: dict[str, object], progress: bool = True,
                devices: dict[str, str] | None = None) -> dict[str, dict[str, SequenceRun]]:
    """One pass over the bag's frames, every tracker on every frame (OPE); ``{tracker: {sequence: run}}``."""
    devices = devices or {}
    runs = {name: {s.name: _empty_run(s, devices.get(name)) for s in bag.sequences} for name in trackers}
    frames = tqdm(bag.frames(), total=bag.n_frames, unit='frame', disable=not progress,
                  desc=f"offline ({', '.join(trackers)})")
    for sequence_index, frame_index, rgb in frames:
        sequence = bag.sequences[sequence_index]
        init_frame = sequence.init_frame
        if init_frame < 0 or frame_index < init_frame:
            continue
        for name, tracker in trackers.items():
            run = runs[name][sequence.name]
            init_box = sequence.ground_truth[init_frame] if frame_index == init_frame else None
            run.boxes[frame_index], run.scores[frame_index], run.latencies_s[frame_index] = one_pass_step(
                tracker, rgb, init_box)
    return runs


def transt_tracker(checkpoint: Path, device: str = 'cpu', precision: str = 'fp32', warm_up: bool = True):
    """An in-process TransT tracker from a checkpoint, warmed up (one dummy initialise + track, as
    the model manager node does) so that the first timed frames do not pay for allocations."""
    from ..checkpoint import load_model
    from ..tracking import Tracker

    tracker = Tracker(load_model(checkpoint, device=device), device=device, precision=precision)
    if warm_up:
        side = tracker.search_size * 2
        frame = np.full((side, side, 3), 127, np.uint8)
        tracker.initialize(frame, (side / 4, side / 4, side / 2, side / 2))
        tracker.track(frame)
        tracker.reset()
    return tracker


# ----------------------------------------------------------------------------------- live

@dataclass
class LiveSettings:
    checkpoint: Path
    device: str = 'cpu'
    precision: str = 'fp32'
    rate: float = 1.0
    domain_id: int | None = None
    record: Path | None = None
    log_path: Path | None = None
    startup_timeout_s: float = 120.0
    handshake_timeout_s: float = 10.0


@dataclass
class LiveResult:
    runs: dict[str, SequenceRun]
    stats: dict


def own_domain_id() -> int:
    """A ROS domain for this evaluation: 100..199 from the process id, not the caller's own."""
    ambient = os.environ.get('ROS_DOMAIN_ID', '')
    domain = 100 + os.getpid() % 100
    if ambient.strip() == str(domain):
        domain = 100 + (domain - 99) % 100
    return domain


def bringup_environment(domain_id: int) -> dict[str, str]:
    """The environment of the bringup subprocess: this one, plus the domain, loopback discovery,
    this source tree on the Python path and passive OpenMP waiting (:data:`PASSIVE_OPENMP`)."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.pop('ROS_STATIC_PEERS', None)
    source_root = str(Path(__file__).resolve().parents[2])
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [source_root, env.get('PYTHONPATH', '')]))
    env.setdefault('PYTHONUNBUFFERED', '1')
    env.setdefault('OMP_WAIT_POLICY', PASSIVE_OPENMP)
    return env


def bringup_parameters(bag: TrackingBag, settings: LiveSettings) -> str:
    """Parameters YAML of the two nodes for replaying ``bag``."""
    compressed = bag.image_type.endswith('CompressedImage')
    manager = {'checkpoint': str(Path(settings.checkpoint).resolve()), 'device': settings.device,
               'precision': settings.precision, 'autostart': False}
    tracker = {'image_topic': bag.image_topic.removesuffix('/compressed') if compressed else bag.image_topic,
               'image_transport': 'compressed' if compressed else 'raw'}
    if bag.camera_info_topic:
        tracker['camera_info_topic'] = bag.camera_info_topic
    return json.dumps({MANAGER_NODE.strip('/'): {'ros__parameters': manager},
                       TRACKER_NODE.strip('/'): {'ros__parameters': tracker}}, indent=2)


class _Bringup:
    """``python -m transt_ros.ros.bringup`` in a subprocess; stopped with SIGINT (then SIGKILL)."""

    def __init__(self, bag: TrackingBag, settings: LiveSettings, domain_id: int, workdir: Path):
        params = workdir / 'bringup_params.yaml'
        params.write_text(bringup_parameters(bag, settings))
        self.log_path = settings.log_path or workdir / 'bringup.log'
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, 'w')
        command = [sys.executable, '-m', 'transt_ros.ros.bringup', '--ros-args', '--params-file', str(params)]
        self.process = subprocess.Popen(command, env=bringup_environment(domain_id), stdout=self._log,
                                        stderr=subprocess.STDOUT)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f'the bringup exited with code {self.process.returncode}; last log lines:\n'
                               f'{self.log_tail()}')

    def log_tail(self, lines: int = 15) -> str:
        self._log.flush()
        try:
            return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-lines:])
        except OSError:
            return '(no log)'

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout_s)
        self._log.close()
        return self.process.returncode


class _Player:
    """The ROS side of a live replay: publishers, the detection recorder, the node's services."""

    def __init__(self, context, bag: TrackingBag, recorder=None):
        from lifecycle_msgs.srv import ChangeState
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from transt_ros.srv import SetTarget

        from ..bags.rosbag2 import message_class

        self.bag, self.recorder = bag, recorder
        self.node = Node('transt_bag_player', context=context)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(message_class(bag.image_type), bag.image_topic, reliable)
        self.info_pub = None
        if bag.camera_info_topic:
            self.info_pub = self.node.create_publisher(message_class('sensor_msgs/msg/CameraInfo'),
                                                       bag.camera_info_topic, reliable)
        self.change_state = self.node.create_client(ChangeState, f'{MANAGER_NODE}/change_state')
        self.set_target = self.node.create_client(SetTarget, f'{TRACKER_NODE}/set_target')
        self.lock = threading.Lock()
        self.detections: list[tuple[int, str, tuple, float, float]] = []
        self.processed: set[int] = set()
        self.track_ms: dict[int, float] = {}
        self.processed_event = threading.Condition(self.lock)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception as error:  # context shut down under us
                LOGGER.debug('player executor stopped: %s', error)
                return

    def subscribe_outputs(self, timeout_s: float) -> None:
        """Subscribe to the tracker's outputs once its publishers are known (matching their QoS)."""
        from rclpy.qos import QoSProfile
        from vision_msgs.msg import Detection2D, Detection2DArray

        from transt_ros.msg import TrackerStatus

        topics = [f'{TRACKER_NODE}/{name}' for name in ('detection', 'detections', 'status')]
        deadline = time.monotonic() + timeout_s
        while not all(self.node.get_publishers_info_by_topic(topic) for topic in topics):
            if time.monotonic() > deadline:
                raise RuntimeError(f'the tracker node publishes none of {topics}')
            time.sleep(0.1)

        def qos(topic):
            offered = self.node.get_publishers_info_by_topic(topic)[0].qos_profile
            return QoSProfile(depth=1000, reliability=offered.reliability, durability=offered.durability)

        self._subscriptions = [
            self.node.create_subscription(Detection2D, topics[0], self._on_detection, qos(topics[0]), raw=True),
            self.node.create_subscription(Detection2DArray, topics[1], self._on_processed, qos(topics[1])),
            self.node.create_subscription(TrackerStatus, topics[2], self._on_status, qos(topics[2])),
        ]
        while not all(subscription.get_publisher_count() for subscription in self._subscriptions):
            if time.monotonic() > deadline:
                raise RuntimeError('the subscriptions to the tracker node never matched')
            time.sleep(0.05)

    def _on_detection(self, data: bytes) -> None:
        from rclpy.serialization import deserialize_message
        from vision_msgs.msg import Detection2D

        from ..bags.messages import detection_box, detection_score, ns_from_time

        received = time.monotonic()
        msg = deserialize_message(data, Detection2D)
        with self.lock:
            self.detections.append((ns_from_time(msg.header.stamp), msg.id, detection_box(msg),
                                    detection_score(msg), received))
        if self.recorder is not None:
            self.recorder.write(f'{TRACKER_NODE}/detection', data, time.time_ns())

    def _on_processed(self, msg) -> None:
        from ..bags.messages import ns_from_time

        with self.processed_event:
            self.processed.add(ns_from_time(msg.header.stamp))
            self.processed_event.notify_all()

    def _on_status(self, msg) -> None:
        from ..bags.messages import ns_from_time

        with self.lock:
            self.track_ms[ns_from_time(msg.header.stamp)] = float(msg.track_ms)

    def wait_processed(self, stamp: int, timeout_s: float) -> bool:
        with self.processed_event:
            return self.processed_event.wait_for(lambda: stamp in self.processed, timeout_s)

    def call(self, client, request, timeout_s: float):
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f'service {client.srv_name} is not available')
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError(f'service {client.srv_name} did not answer within {timeout_s:.0f} s')
            time.sleep(0.005)
        return future.result()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()


def _activate(player: _Player, bringup: _Bringup, timeout_s: float) -> None:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    deadline = time.monotonic() + timeout_s
    while not player.change_state.wait_for_service(timeout_sec=0.5):
        bringup.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f'{MANAGER_NODE}/change_state never appeared; bringup log:\n{bringup.log_tail()}')
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        response = player.call(player.change_state, ChangeState.Request(transition=Transition(id=transition)),
                               max(5.0, deadline - time.monotonic()))
        if not response.success:
            raise RuntimeError(f'lifecycle transition {transition} of {MANAGER_NODE} failed; bringup log:\n'
                               f'{bringup.log_tail()}')
    while player.image_pub.get_subscription_count() < 1:
        bringup.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f'nobody subscribes to {player.bag.image_topic}; bringup log:\n{bringup.log_tail()}')
        time.sleep(0.05)
    player.subscribe_outputs(max(5.0, deadline - time.monotonic()))


def _play(player: _Player, bag: TrackingBag, settings: LiveSettings, progress: bool) -> dict:
    """Publish the bag; returns publish times, per-sequence track ids and the SetTarget answers."""
    from transt_ros.srv import SetTarget

    from ..bags import open_bag
    from ..bags.messages import time_from_ns

    init_stamps = {int(s.stamps_ns[s.init_frame]): (i, s) for i, s in enumerate(bag.sequences) if s.init_frame >= 0}
    published: dict[int, float] = {}
    track_ids: dict[str, str] = {}
    set_target: dict[str, dict] = {}
    topics = [bag.image_topic] + ([bag.camera_info_topic] if bag.camera_info_topic else [])
    wall_start = clock_start = None
    bar = tqdm(total=bag.n_frames, unit='frame', disable=not progress, desc=f'live x{settings.rate:g}')
    with open_bag(bag.path) as reader:
        for raw in reader.messages(topics):
            if wall_start is None:
                wall_start, clock_start = time.monotonic(), raw.log_time_ns
            delay = wall_start + (raw.log_time_ns - clock_start) / 1e9 / settings.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if raw.topic != bag.image_topic:
                player.info_pub.publish(raw.data)
                continue
            stamp = header_stamp_ns(raw.data)
            published[stamp] = time.monotonic()
            player.image_pub.publish(raw.data)
            bar.update(1)
            if stamp not in init_stamps:
                continue
            _, sequence = init_stamps[stamp]
            processed = player.wait_processed(stamp, settings.handshake_timeout_s / 2)
            if not processed:  # lost on the way (best effort): once more
                player.image_pub.publish(raw.data)
                processed = player.wait_processed(stamp, settings.handshake_timeout_s / 2)
            x, y, width, height = (float(v) for v in sequence.ground_truth[sequence.init_frame])
            request = SetTarget.Request(x=x, y=y, width=width, height=height, stamp=time_from_ns(stamp))
            response = player.call(player.set_target, request, settings.handshake_timeout_s)
            set_target[sequence.name] = {'accepted': bool(response.accepted), 'reason': response.reason,
                                         'track_id': response.track_id, 'frame_seen_by_node': bool(processed)}
            if response.accepted:
                track_ids[sequence.name] = response.track_id
            else:
                LOGGER.warning('SetTarget for %s rejected: %s', sequence.name, response.reason)
            wall_start, clock_start = time.monotonic(), raw.log_time_ns
    bar.close()
    last = max(published, key=published.get) if published else None
    if last is not None:
        player.wait_processed(last, 30.0)
        time.sleep(0.2)
    return {'published': published, 'track_ids': track_ids, 'set_target': set_target}


def _summary_ms(values_ms) -> dict:
    summary = latency_summary(np.asarray(values_ms, dtype=float) / 1000.0)
    return {'n': summary.n_frames, 'mean_ms': summary.mean_ms, 'p50_ms': summary.p50_ms, 'p95_ms': summary.p95_ms,
            'p99_ms': summary.p99_ms}


def _live_runs(bag: TrackingBag, player: _Player, played: dict, rate: float) -> LiveResult:
    published, track_ids = played['published'], played['track_ids']
    with player.lock:
        detections = list(player.detections)
        track_ms = dict(player.track_ms)
    by_key = {(stamp, track_id): (box, score, received) for stamp, track_id, box, score, received in detections}
    runs, counted, matched, node_ms = {}, 0, 0, []
    for sequence in bag.sequences:
        run = _empty_run(sequence, 'live')
        runs[sequence.name] = run
        init_frame, track_id = sequence.init_frame, track_ids.get(sequence.name)
        if init_frame < 0:
            continue
        run.boxes[init_frame], run.scores[init_frame] = sequence.ground_truth[init_frame], 1.0
        for index in range(init_frame + 1, len(sequence)):
            stamp = int(sequence.stamps_ns[index])
            counted += 1
            found = by_key.get((stamp, track_id)) if track_id is not None else None
            if found is None:
                continue
            matched += 1
            box, score, received = found
            run.boxes[index], run.scores[index] = box, score
            if stamp in published:
                run.latencies_s[index] = received - published[stamp]
            if stamp in track_ms:
                node_ms.append(track_ms[stamp])
    bag_stamps = {int(stamp) for sequence in bag.sequences for stamp in sequence.stamps_ns}
    expected = {(int(stamp), track_ids.get(sequence.name)) for sequence in bag.sequences
                for stamp in sequence.stamps_ns}
    playback_s = sum(len(sequence) for sequence in bag.sequences) * bag.frame_period_s / rate
    latencies_ms = [1000 * value for run in runs.values() for value in run.tracking_latencies_s if np.isfinite(value)]
    stats = {
        'frames_in_bag': bag.n_frames, 'frames_published': len(published), 'frames_to_track': counted,
        'frames_tracked': matched, 'frames_dropped': counted - matched,
        'drop_rate': (counted - matched) / counted if counted else float('nan'),
        'detections_received': len(detections),
        'detections_not_matching_a_bag_frame': sum(1 for d in detections if d[0] not in bag_stamps),
        'detections_of_other_tracks': sum(1 for d in detections if d[0] in bag_stamps and d[:2] not in expected),
        'nominal_playback_s': playback_s,
        'throughput_fps': matched / playback_s if playback_s > 0 else float('nan'),
        'end_to_end_latency': _summary_ms(latencies_ms),
        'node_track_time': _summary_ms(node_ms),
        'set_target': played['set_target'],
    }
    return LiveResult(runs, stats)


def run_live(bag: TrackingBag, settings: LiveSettings, progress: bool = True) -> LiveResult:
    """Replay ``bag`` through the real nodes (bringup subprocess) and collect the detections."""
    import rclpy
    from rclpy.context import Context

    from ..bags import create_bag

    domain_id = settings.domain_id if settings.domain_id is not None else own_domain_id()
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    recorder = None
    if settings.record is not None:
        recorder = create_bag(settings.record, overwrite=True, custom_data={'transt_ros.source_bag': str(bag.path)})
        recorder.add_topic(f'{TRACKER_NODE}/detection', 'vision_msgs/msg/Detection2D')
    with tempfile.TemporaryDirectory(prefix='transt_live_') as workdir:
        bringup = _Bringup(bag, settings, domain_id, Path(workdir))
        context = Context()
        player = None
        try:
            rclpy.init(context=context, domain_id=domain_id)
            player = _Player(context, bag, recorder)
            started = time.monotonic()
            _activate(player, bringup, settings.startup_timeout_s)
            startup_s = time.monotonic() - started
            played = _play(player, bag, settings, progress)
            bringup.check_alive()
            result = _live_runs(bag, player, played, settings.rate)
        finally:
            if player is not None:
                player.close()
            rclpy.try_shutdown(context=context)
            exit_code = bringup.stop()
            if recorder is not None:
                recorder.close()
    result.stats.update({'rate': settings.rate, 'ros_domain_id': domain_id, 'startup_s': startup_s,
                         'bringup_exit_code': exit_code,
                         'bringup_log': str(settings.log_path) if settings.log_path else None,
                         'recorded_bag': str(settings.record) if settings.record else None})
    return result


# ----------------------------------------------------------------------------------- scoring and report

def score_bag_runs(bag: TrackingBag, runs: dict[str, SequenceRun]) -> DatasetMetrics:
    """Dataset figures of one tracker's runs on the bag's sequences."""
    scored = [s for s in bag.sequences if s.name in runs]
    per_sequence = [evaluate_sequence(s.name, runs[s.name].boxes, s.ground_truth,
                                      latencies_s=runs[s.name].tracking_latencies_s) for s in scored]
    pooled = np.concatenate([runs[s.name].tracking_latencies_s for s in scored]) if scored else []
    return aggregate(per_sequence, pooled)


def write_overlay_video(path: Path, bag: TrackingBag, runs: dict[str, SequenceRun], fps: float) -> Path:
    """Every frame with the ground truth (green) and ``runs``' box (red); MP4, else GIF."""
    from .report import draw_overlay, write_video

    frames = []
    for sequence_index, frame_index, rgb in bag.frames():
        sequence = bag.sequences[sequence_index]
        run = runs.get(sequence.name)
        predicted = run.boxes[frame_index] if run is not None else None
        score = float(run.scores[frame_index]) if run is not None else None
        image = draw_overlay(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), frame_index, predicted,
                             sequence.ground_truth[frame_index], score)
        cv2.putText(image, sequence.name, (4, image.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
        frames.append(image)
    if not frames:
        raise ValueError(f'{bag.path}: no frame to draw')
    return write_video(path, frames, fps)


def _write_runs(directory: Path, runs: dict[str, dict[str, SequenceRun]]) -> None:
    from .datasets import write_results

    for tracker, sequence_runs in runs.items():
        for run in sequence_runs.values():
            write_results(directory / tracker, run.name, run.boxes, run.latencies_s)


@dataclass
class BagEvaluation:
    results: dict[str, DatasetMetrics]
    metadata: dict
    paths: dict[str, Path]
    live: dict | None = None


def evaluate_bag(bag_path: Path, checkpoint: Path, out_dir: Path, mode: str = 'offline', rate: float = 1.0,
                 record: Path | None = None, references: Sequence[str] = ('csrt', 'kcf'), device: str = 'cpu',
                 precision: str = 'fp32', offline_transt_in_live: bool = True, video: bool = True,
                 image_topic: str | None = None, ground_truth_topic: str = GROUND_TRUTH_TOPIC,
                 domain_id: int | None = None, progress: bool = True, print_table: bool = True) -> BagEvaluation:
    """Evaluate TransT (and the OpenCV ``references``, offline, on the same frames) on a bag and
    write the report under ``out_dir``: metrics.json, plots, comparison.md, overlay video,
    per-sequence boxes under ``results/``."""
    from .reference_trackers import OpenCVTracker
    from .report import write_report

    if mode not in ('offline', 'live'):
        raise ValueError(f"mode must be 'offline' or 'live', got '{mode}'")
    if rate <= 0:
        raise ValueError(f'rate must be positive, got {rate}')
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    bag = read_tracking_bag(bag_path, image_topic, ground_truth_topic)
    all_runs: dict[str, dict[str, SequenceRun]] = {}
    live = None
    if mode == 'live':
        settings = LiveSettings(checkpoint, device=device, precision=precision, rate=rate, domain_id=domain_id,
                                record=record, log_path=out_dir / 'bringup.log')
        live = run_live(bag, settings, progress)
        all_runs['transt-live'] = live.runs
    offline = {name: OpenCVTracker(name) for name in references}
    if mode == 'offline' or offline_transt_in_live:
        offline = {('transt' if mode == 'offline' else 'transt-offline'): transt_tracker(checkpoint, device,
                                                                                         precision), **offline}
    if offline:
        devices = {name: (device if name.startswith('transt') else 'cpu') for name in offline}
        all_runs.update(run_offline(bag, offline, progress, devices))
    results = {name: score_bag_runs(bag, runs) for name, runs in all_runs.items()}
    metadata = {
        'bag': str(Path(bag_path)), 'mode': mode, 'rate': rate if mode == 'live' else None,
        'checkpoint': str(checkpoint), 'device': device, 'precision': precision, 'protocol': PROTOCOL,
        're_initialisation': 'none',
        'latency': ('transt-live: image published -> detection received (end to end); offline trackers: '
                    'initialize()/track() call time'),
        'image_topic': bag.image_topic, 'ground_truth_topic': bag.ground_truth_topic,
        'frame_period_s': bag.frame_period_s, 'n_frames': bag.n_frames,
        'sequences': [{'name': s.name, 'frames': len(s), 'init_frame': s.init_frame} for s in bag.sequences],
        'references': list(references),
    }
    if live is not None:
        metadata['live'] = live.stats
    paths = dict(write_report(out_dir, results, metadata, print_table=print_table))
    _write_runs(out_dir / 'results', all_runs)
    if video:
        shown = 'transt-live' if 'transt-live' in all_runs else 'transt'
        paths['video'] = write_overlay_video(out_dir / f'overlay_{shown}.mp4', bag, all_runs[shown],
                                             1.0 / bag.frame_period_s if bag.frame_period_s > 0 else 30.0)
    metadata['wall_time_s'] = time.monotonic() - started
    return BagEvaluation(results, metadata, paths, live.stats if live else None)


def format_summary(evaluation: BagEvaluation) -> str:
    """A few lines: AUC and fps per tracker, dropped frames, where the report is."""
    lines = []
    for name, metrics in sorted(evaluation.results.items(), key=lambda item: -item[1].success_auc):
        fps = metrics.latency.mean_fps if metrics.latency else float('nan')
        lines.append(f'  {name:<15} AUC {metrics.success_auc:.3f}  precision@20px {metrics.precision_at_20px:.3f}  '
                     f'{fps:6.1f} fps (1 / mean latency)  dropped {metrics.n_dropped}')
    if evaluation.live:
        live = evaluation.live
        latency = live['end_to_end_latency']
        lines.append(f"  live: {live['frames_tracked']}/{live['frames_to_track']} frames tracked, "
                     f"{live['frames_dropped']} dropped ({100 * live['drop_rate']:.0f} %), "
                     f"throughput {live['throughput_fps']:.1f} fps at rate x{live['rate']:g}, "
                     f"latency p50 {latency['p50_ms']:.0f} / p95 {latency['p95_ms']:.0f} ms")
    lines.append(f"  report: {evaluation.paths['json'].parent}")
    return '\n'.join(lines)
