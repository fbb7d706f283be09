"""Live run over DDS: a tracking bag through the real ROS pipeline (the only rclpy module of the evaluation).

``transt_ros.ros.bringup`` (lifecycle manager + tracker node) runs in a subprocess on the ROS
domain chosen by :func:`~transt_ros.common.ros_environment.choose_ros_domain_id` (``--domain-id``,
else ``$ROS_DOMAIN_ID``, else one from the process id), with loopback discovery (the project's DDS
policy: :func:`~transt_ros.common.ros_environment.ros_dds_environment`, for both processes); the player
talks to the nodes through a :class:`~transt_ros.ros.client.TrackerClient`: the lifecycle through
the manager's ``change_state`` service, the tracks through ``~/set_target``; the bag's image and camera-info messages
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

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rclpy
from lifecycle_msgs.msg import Transition
from rclpy.context import Context
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from tqdm import tqdm

from ..bags import create_bag, open_bag
from ..bags.messages import detection_box, detection_score
from ..bags.rosbag2 import message_class
from ..common.ros_environment import (
    MODEL_MANAGER_NODE_NAME,
    TRACKER_NODE_NAME,
    choose_ros_domain_id,
    passive_openmp_env,
    ros_dds_environment,
)
from ..ros.client import Received, TrackerClient, WaitTimeout
from ..tracking.reacquire import ReacquireParams
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
    backend: str = 'auto'
    """The manager's ``backend``."""
    reacquire: bool = False
    """The node's ``reacquire``, with the LOST hysteresis of the offline tracker's (``ReacquireParams``)."""


@dataclass
class LiveResult:
    runs: dict[str, SequenceRun]
    stats: dict


@dataclass(frozen=True)
class SetTargetAnswer:
    """The tracker's answer to the SetTarget that started a sequence's track."""

    accepted: bool
    reason: str
    track_id: str
    frame_seen_by_node: bool
    """Whether the node had processed the frame of the request's stamp before it was sent."""


@dataclass
class Playback:
    """What :func:`_play` did: when each image was published, and how each sequence's track started."""

    published: dict[int, float]
    """Image stamp [ns] -> ``time.monotonic()`` when it was published."""
    track_ids: dict[str, str]
    """Sequence name -> the id of its track (sequences whose SetTarget was accepted)."""
    set_target: dict[str, SetTargetAnswer]
    """Sequence name -> the answer to its SetTarget."""


def bringup_environment(domain_id: int) -> dict[str, str]:
    """The environment of the bringup subprocess: this one with the project's DDS policy on ``domain_id``
    (:func:`~transt_ros.common.ros_environment.ros_dds_environment`: loopback discovery unless set), this
    source tree on the Python path and passive OpenMP waiting (:data:`PASSIVE_OPENMP`)."""
    env = ros_dds_environment(dict(os.environ), domain_id)
    source_root = str(Path(__file__).resolve().parents[2])
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [source_root, env.get('PYTHONPATH', '')]))
    env.setdefault('PYTHONUNBUFFERED', '1')
    return dict(passive_openmp_env(env))


def bringup_parameters(bag: TrackingBag, settings: LiveSettings) -> str:
    """Parameters YAML of the two nodes for replaying ``bag``."""
    compressed = bag.image_type.endswith('CompressedImage')
    manager = {'checkpoint': str(Path(settings.checkpoint).resolve()), 'device': settings.device,
               'precision': settings.precision, 'backend': settings.backend, 'autostart': False}
    tracker = {'image_topic': bag.image_topic.removesuffix('/compressed') if compressed else bag.image_topic,
               'image_transport': 'compressed' if compressed else 'raw'}
    tracker['reacquire'] = settings.reacquire
    if settings.reacquire:  # LOST as the offline tracker has it, so both search wider on the same frames
        hysteresis = ReacquireParams().hysteresis
        tracker.update(lost_threshold=hysteresis.lost_threshold, recover_threshold=hysteresis.recover_threshold,
                       lost_frames=hysteresis.lost_frames)
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
    """The player's side of a live replay: the bag's publishers on the node of a :class:`TrackerClient`,
    which captures the tracker's outputs and calls its services."""

    def __init__(self, context: Context, bag: TrackingBag, recorder=None):
        self.bag, self.recorder = bag, recorder
        self.client = TrackerClient('transt_bag_player', context=context, depth=1000)
        node = self.client.node
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pub = node.create_publisher(message_class(bag.image_type), bag.image_topic, reliable)
        self.info_pub = None
        if bag.camera_info_topic:
            self.info_pub = node.create_publisher(message_class('sensor_msgs/msg/CameraInfo'), bag.camera_info_topic,
                                                  reliable)
        if recorder is not None:
            self.client.detection.add_listener(self._record)

    def _record(self, item: Received) -> None:
        self.recorder.write(self.client.detection.topic, serialize_message(item.msg), item.wall_ns)

    def wait_processed(self, stamp: int, timeout_s: float) -> bool:
        """Whether the tracker processed the frame with ``stamp`` (its ``~/detections``) within ``timeout_s``."""
        try:
            self.client.detections.wait_for_stamp(stamp, timeout_s)
        except WaitTimeout:
            return False
        return True

    def close(self) -> None:
        self.client.close()


def _activate(player: _Player, bringup: _Bringup, timeout_s: float) -> None:
    """Configure and activate the manager; return once the tracker subscribes to the images, its outputs
    reach the player and its services are discovered (before the playback, not during it)."""
    client, deadline = player.client, time.monotonic() + timeout_s

    def remaining() -> float:
        return max(5.0, deadline - time.monotonic())
    try:
        client.wait_for_services(timeout_s, bringup.check_alive, lifecycle=True)
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            if not client.change_state(transition, remaining()):
                raise RuntimeError(f'lifecycle transition {transition} of {MANAGER_NODE} failed; bringup log:\n'
                                   f'{bringup.log_tail()}')
        client.wait_for_subscriber(player.image_pub, remaining(), bringup.check_alive)
        client.wait_for_outputs(remaining(), bringup.check_alive)
    except WaitTimeout as error:
        raise RuntimeError(f'{error}; bringup log:\n{bringup.log_tail()}') from None


def _play(player: _Player, bag: TrackingBag, settings: LiveSettings, progress: bool) -> Playback:
    """Publish the bag; starts each sequence's track with a SetTarget on its first annotated frame."""
    init_stamps: dict[int, list] = {}
    for sequence in bag.sequences:
        if sequence.init_frame >= 0:
            init_stamps.setdefault(int(sequence.stamps_ns[sequence.init_frame]), []).append(sequence)
    live_tracks: dict[str, tuple[str, int]] = {}  # multi-object: sequence -> (track id, its last stamp)
    playback = Playback(published={}, track_ids={}, set_target={})
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
            playback.published[stamp] = time.monotonic()
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
                response = player.client.set_target(x, y, width, height, stamp_ns=stamp,
                                                    timeout_s=settings.handshake_timeout_s)
                playback.set_target[sequence.name] = SetTargetAnswer(bool(response.accepted), response.reason,
                                                                     response.track_id, bool(processed))
                if response.accepted:
                    playback.track_ids[sequence.name] = response.track_id
                    live_tracks[sequence.name] = (response.track_id, int(sequence.stamps_ns[-1]))
                else:
                    LOGGER.warning('SetTarget for %s rejected: %s', sequence.name, response.reason)
            wall_start, clock_start = time.monotonic(), raw.log_time_ns
    bar.close()
    if playback.published:
        last = max(playback.published, key=playback.published.get)
        if player.wait_processed(last, 30.0):  # the newest frame is always processed: then all are in
            with contextlib.suppress(WaitTimeout):  # its ~/status, published after its detections
                player.client.status.wait_for_stamp(last, 5.0)
    return playback


def _clear_finished_tracks(player: _Player, live_tracks: dict[str, tuple[str, int]], stamp: int,
                           timeout_s: float) -> None:
    """Clear the node's tracks whose sequence ended before ``stamp`` (room for the next ones)."""
    for name, (track_id, last_stamp) in list(live_tracks.items()):
        if last_stamp < stamp:
            response = player.client.clear_track(track_id, timeout_s)
            if not response.success:
                LOGGER.warning('clear_track %s (%s): %s', track_id, name, response.reason)
            del live_tracks[name]


def _summary_ms(values_ms) -> dict:
    summary = latency_summary(np.asarray(values_ms, dtype=float) / 1000.0)
    return {'n': summary.n_frames, 'mean_ms': summary.mean_ms, 'p50_ms': summary.p50_ms, 'p95_ms': summary.p95_ms,
            'p99_ms': summary.p99_ms}


def _live_runs(bag: TrackingBag, player: _Player, played: Playback, rate: float) -> LiveResult:
    published, track_ids = played.published, played.track_ids
    detections = [(item.stamp_ns, item.msg.id, detection_box(item.msg), detection_score(item.msg), item.monotonic_s)
                  for item in player.client.detection.received()]
    track_ms = {item.stamp_ns: float(item.msg.track_ms) for item in player.client.status.received()}
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
        'set_target': {name: asdict(answer) for name, answer in played.set_target.items()},
    }
    return LiveResult(runs, stats)


def run_live(bag: TrackingBag, settings: LiveSettings, progress: bool = True) -> LiveResult:
    """Replay ``bag`` through the real nodes (bringup subprocess) and collect the detections."""
    domain_id = choose_ros_domain_id(settings.domain_id)
    ros_dds_environment(os.environ, domain_id)  # this process's participant: as the bringup's
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
