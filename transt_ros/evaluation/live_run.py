"""Live run over DDS: a tracking bag through the real ROS pipeline (the only rclpy module of the evaluation).

``transt_ros.ros.bringup`` (lifecycle manager + tracker node) runs in a subprocess on the ROS
domain chosen by :func:`~transt_ros.common.ros_environment.choose_ros_domain_id` (``--domain-id``,
else ``$ROS_DOMAIN_ID``, else one from the process id), with loopback discovery; the lifecycle is
driven through the manager's ``change_state`` service; the bag's image and camera-info messages
are published at their recorded rate x ``rate``; detections (``/transt_tracker/detection``) are
recorded (optionally into a new bag) and matched to the ground truth by header stamp. A frame
without a detection of the current track (the node skipped it because it was busy, or it was
lost in transport) counts as a failure: IoU 0, infinite centre error. Latency = wall time from
publishing an image to receiving its detection.

Each sequence is initialised once, on its first frame with a ground-truth box: the player
publishes that frame, waits until the node has processed it, calls ``~/set_target`` with the box
and that frame's stamp, then plays on with the clock re-based, so the handshake costs no frames.

Multi-object bags (``transt-make-bag --objects K``): the node runs with ``max_targets`` = the most
tracks of one image; every track is started by its own SetTarget (several on one frame), and the
tracks of finished sequences are cleared with ``~/clear_track`` before new ones start. The node
publishes one ``~/detection`` per track and frame, matched to the tracks by (stamp, track id).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from tqdm import tqdm
from vision_msgs.msg import Detection2D, Detection2DArray

from transt_ros.msg import TrackerStatus
from transt_ros.srv import ClearTrack, SetTarget

from ..bags import create_bag, open_bag
from ..bags.messages import detection_box, detection_score, ns_from_time, time_from_ns
from ..bags.rosbag2 import message_class
from ..common.ros_environment import (
    MODEL_MANAGER_NODE_NAME,
    TRACKER_NODE_NAME,
    choose_ros_domain_id,
    passive_openmp_env,
)
from ..ros.service_calls import call_service
from ..tracking.track_registry import MAX_TARGETS_LIMIT
from .metrics import latency_summary
from .offline_run import empty_run
from .run_dataset import SequenceRun
from .tracking_bag import TrackingBag, header_stamp_ns

LOGGER = logging.getLogger(__name__)
MANAGER_NODE = f'/{MODEL_MANAGER_NODE_NAME}'
TRACKER_NODE = f'/{TRACKER_NODE_NAME}'


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
    return dict(passive_openmp_env(env))


def bringup_parameters(bag: TrackingBag, settings: LiveSettings) -> str:
    """Parameters YAML of the two nodes for replaying ``bag``."""
    compressed = bag.image_type.endswith('CompressedImage')
    manager = {'checkpoint': str(Path(settings.checkpoint).resolve()), 'device': settings.device,
               'precision': settings.precision, 'autostart': False}
    tracker = {'image_topic': bag.image_topic.removesuffix('/compressed') if compressed else bag.image_topic,
               'image_transport': 'compressed' if compressed else 'raw'}
    if bag.camera_info_topic:
        tracker['camera_info_topic'] = bag.camera_info_topic
    if bag.multi_object:
        tracker['max_targets'] = max(1, min(MAX_TARGETS_LIMIT, bag.max_tracks_per_image))
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

    def __init__(self, context: Context, bag: TrackingBag, recorder=None):
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
        self.clear_track = self.node.create_client(ClearTrack, f'{TRACKER_NODE}/clear_track')
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
        received = time.monotonic()
        msg = deserialize_message(data, Detection2D)
        with self.lock:
            self.detections.append((ns_from_time(msg.header.stamp), msg.id, detection_box(msg),
                                    detection_score(msg), received))
        if self.recorder is not None:
            self.recorder.write(f'{TRACKER_NODE}/detection', data, time.time_ns())

    def _on_processed(self, msg) -> None:
        with self.processed_event:
            self.processed.add(ns_from_time(msg.header.stamp))
            self.processed_event.notify_all()

    def _on_status(self, msg) -> None:
        with self.lock:
            self.track_ms[ns_from_time(msg.header.stamp)] = float(msg.track_ms)

    def wait_processed(self, stamp: int, timeout_s: float) -> bool:
        with self.processed_event:
            return self.processed_event.wait_for(lambda: stamp in self.processed, timeout_s)

    def call(self, client, request, timeout_s: float):
        return call_service(client, request, timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()


def _activate(player: _Player, bringup: _Bringup, timeout_s: float) -> None:
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
    clients = [player.set_target] + ([player.clear_track] if player.bag.multi_object else [])
    for client in clients:  # discovered before the playback, not during it
        while not client.wait_for_service(timeout_sec=0.5):
            bringup.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f'service {client.srv_name} never appeared; bringup log:\n{bringup.log_tail()}')


def _play(player: _Player, bag: TrackingBag, settings: LiveSettings, progress: bool) -> dict:
    """Publish the bag; returns publish times, per-sequence track ids and the SetTarget answers."""
    init_stamps: dict[int, list] = {}
    for sequence in bag.sequences:
        if sequence.init_frame >= 0:
            init_stamps.setdefault(int(sequence.stamps_ns[sequence.init_frame]), []).append(sequence)
    live_tracks: dict[str, tuple[str, int]] = {}  # multi-object: sequence -> (track id, its last stamp)
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
            processed = player.wait_processed(stamp, settings.handshake_timeout_s / 2)
            if not processed:  # lost on the way (best effort): once more
                player.image_pub.publish(raw.data)
                processed = player.wait_processed(stamp, settings.handshake_timeout_s / 2)
            if bag.multi_object:
                _clear_finished_tracks(player, live_tracks, stamp, settings.handshake_timeout_s)
            for sequence in init_stamps[stamp]:
                x, y, width, height = (float(v) for v in sequence.ground_truth[sequence.init_frame])
                request = SetTarget.Request(x=x, y=y, width=width, height=height, stamp=time_from_ns(stamp))
                response = player.call(player.set_target, request, settings.handshake_timeout_s)
                set_target[sequence.name] = {'accepted': bool(response.accepted), 'reason': response.reason,
                                             'track_id': response.track_id, 'frame_seen_by_node': bool(processed)}
                if response.accepted:
                    track_ids[sequence.name] = response.track_id
                    live_tracks[sequence.name] = (response.track_id, int(sequence.stamps_ns[-1]))
                else:
                    LOGGER.warning('SetTarget for %s rejected: %s', sequence.name, response.reason)
            wall_start, clock_start = time.monotonic(), raw.log_time_ns
    bar.close()
    last = max(published, key=published.get) if published else None
    if last is not None:
        player.wait_processed(last, 30.0)
        time.sleep(0.2)
    return {'published': published, 'track_ids': track_ids, 'set_target': set_target}


def _clear_finished_tracks(player: _Player, live_tracks: dict[str, tuple[str, int]], stamp: int,
                           timeout_s: float) -> None:
    """Clear the node's tracks whose sequence ended before ``stamp`` (room for the next ones)."""
    for name, (track_id, last_stamp) in list(live_tracks.items()):
        if last_stamp < stamp:
            response = player.call(player.clear_track, ClearTrack.Request(track_id=track_id), timeout_s)
            if not response.success:
                LOGGER.warning('clear_track %s (%s): %s', track_id, name, response.reason)
            del live_tracks[name]


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
        run = empty_run(sequence, 'live')
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
    domain_id = choose_ros_domain_id(settings.domain_id)
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
