"""Helpers for tests that start ROS 2 nodes (rclpy), shared by the project's ROS tests.

DDS must stay on loopback on CI / development machines, and concurrent test runs must not see
each other's nodes. Every ROS test therefore runs with the project's one DDS policy
(:mod:`transt_ros.common.ros_environment`): ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (forced here)
and the ``ROS_DOMAIN_ID`` already in the environment (``scripts/env.sh`` picks one per shell), else one
derived from the process id (100..199).

Typical use::

    from .ros_helpers import ros_context, spin_until   # test/ is a package

    def test_something():
        with ros_context():
            node = rclpy.create_node('probe')
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            ...
            assert spin_until(executor, lambda: got, timeout_s=10.0)

For subprocesses (a node started with ``subprocess``), pass ``env=ros_env()``. To talk to the tracker,
use :class:`transt_ros.ros.client.TrackerClient`; :func:`running_bringup` starts a bringup process and
yields it with a client that waited until the manager answers; :class:`ImageFeed` is a camera in the
test process.

Also here: the light test checkpoint (:func:`write_light_checkpoint`), the bringup as a process
group (:func:`start_bringup`, :func:`stop_process_group`), peak memory of a process
(:func:`reset_peak_rss`, :func:`peak_rss_mb`) and a camera publisher process
(``python -m test.ros_helpers camera ...``, :func:`camera_command`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transt_ros.common.ros_environment import ros_dds_environment

ROOT = Path(__file__).resolve().parents[1]
LARGE_FRAMES_PROFILE = ROOT / 'config' / 'fastdds_large_frames.xml'
LIGHT = dict(backbone='resnet18', d_model=64, nhead=4, num_fusion_layers=1, dim_feedforward=128,
             template_size=64, search_size=128)
SCORE = 0.8

def ros_env(domain_id: int | None = None) -> dict[str, str]:
    """Set the ROS test environment in ``os.environ`` and return a copy of the whole environment.

    Forces DDS discovery onto loopback and fixes the domain id (``domain_id``, else $ROS_DOMAIN_ID, else
    derived from the pid: :func:`~transt_ros.common.ros_environment.ros_dds_environment`); the returned
    dict is meant for ``subprocess.run(..., env=ros_env())``.
    """
    return dict(ros_dds_environment(os.environ, domain_id, force_loopback=True))


@contextlib.contextmanager
def ros_context(domain_id: int | None = None, args: list[str] | None = None) -> Iterator[object]:
    """``rclpy.init`` / ``shutdown`` of the default context, with the ROS test environment.

    Yields the (default) :class:`rclpy.context.Context`, so nodes and executors can be created
    without a ``context`` argument. Nodes still alive at exit are destroyed by the shutdown.
    """
    import rclpy  # imported here so that ROS-free tests can import this module

    ros_env(domain_id)
    rclpy.init(args=args, domain_id=int(os.environ['ROS_DOMAIN_ID']))
    try:
        yield rclpy.get_default_context()
    finally:
        rclpy.try_shutdown()


def spin_until(executor, predicate: Callable[[], bool], timeout_s: float = 10.0,
               step_s: float = 0.05) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout_s`` passed; return the predicate."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return bool(predicate())
        executor.spin_once(timeout_sec=step_s)
    return True


# ------------------------------------------------------------------------------------ checkpoints

def write_light_checkpoint(path: Path, fill: float | None = None) -> Path:
    """The light demo architecture (resnet18, d_model 64, 64/128 px crops) with random weights whose
    heads are constant (score 0.8; box = the previous box for a square target), so positions are exact.
    ``fill``: every weight set to this value instead (e.g. NaN: a broken checkpoint)."""
    import torch

    from transt_ros.checkpoint import save_checkpoint
    from transt_ros.model import TransTConfig, build_transt

    torch.manual_seed(0)
    model = build_transt(TransTConfig(**LIGHT))
    with torch.no_grad():
        box_layer, class_layer = model.bbox_embed.layers[-1], model.class_embed.layers[-1]
        box_layer.weight.zero_()   # sigmoid -> (0.5, 0.5, 0.25, 0.25): same centre, same square size
        box_layer.bias.copy_(torch.tensor([0.0, 0.0, math.log(1 / 3), math.log(1 / 3)]))
        class_layer.weight.zero_()  # softmax -> target probability 0.8 everywhere
        class_layer.bias.copy_(torch.tensor([math.log(SCORE / (1 - SCORE)), 0.0]))
        if fill is not None:
            for parameter in model.parameters():
                parameter.fill_(fill)
    return save_checkpoint(path, model)


# ------------------------------------------------------------------------------------ processes

def start_bringup(log_path: Path, *ros_args: str, env: dict | None = None) -> subprocess.Popen:
    """``python -m transt_ros.ros.bringup --ros-args ...`` in its own process group (as ``ros2 launch``
    starts it), output to ``log_path``."""
    env = dict(ros_env() if env is None else env)
    env['PYTHONUNBUFFERED'] = '1'
    command = [sys.executable, '-m', 'transt_ros.ros.bringup', '--ros-args', *ros_args]
    with open(log_path, 'w') as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_process_group(process: subprocess.Popen, signals=(signal.SIGINT,), gap_s: float = 0.05,
                       timeout_s: float = 20.0) -> int:
    """Send ``signals`` to the process's group (``gap_s`` apart) and wait; kill it after ``timeout_s``."""
    for index, signum in enumerate(signals):
        if index:
            time.sleep(gap_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


@dataclass
class Bringup:
    """A bringup process and the client that talks to its nodes."""

    process: subprocess.Popen
    log_path: Path
    client: object  # transt_ros.ros.client.TrackerClient (imported with rclpy)
    directory: Path

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def check_alive(self) -> None:
        """Raise (with the log's tail) if the process ended: a wait's ``check``."""
        if self.process.poll() is not None:
            tail = '\n'.join(self.log().splitlines()[-20:])
            raise AssertionError(f'the bringup exited with code {self.process.returncode}:\n{tail}')

    def wait_for_log(self, text: str, timeout_s: float = 20.0) -> str:
        """Until ``text`` is in the log; -> the log."""
        return self.client.wait_until(lambda: text in (log := self.log()) and log, timeout_s,
                                      f'{text!r} in the bringup log', self.check_alive)

    def transition(self, name: str) -> None:
        """A lifecycle transition of the manager by name (configure, activate, deactivate, cleanup)."""
        from lifecycle_msgs.msg import Transition

        transition_id = getattr(Transition, f'TRANSITION_{name.upper()}')
        assert self.client.change_state(transition_id), f'{name} failed:\n{self.log()[-3000:]}'

    def figures(self) -> tuple[float, int, int]:
        """(RSS MB, threads, open file descriptors) of the bringup process."""
        status = Path(f'/proc/{self.process.pid}/status').read_text().splitlines()
        values = dict(line.split(':', 1) for line in status if ':' in line)
        return (int(values['VmRSS'].split()[0]) / 1024.0, int(values['Threads']),
                len(os.listdir(f'/proc/{self.process.pid}/fd')))

    def stop(self) -> int:
        """SIGINT to the process group, as Ctrl-C in ``ros2 launch``; -> the exit code."""
        return stop_process_group(self.process) if self.process.poll() is None else self.process.returncode


@contextlib.contextmanager
def running_bringup(directory: Path, *ros_args: str, namespace: str = '', client_name: str = 'transt_test_client',
                    timeout_s: float = 90.0, client=None, depth: int | None = None) -> Iterator[Bringup]:
    """A bringup process (``ros_args``; in ``namespace`` if given, so that it can run beside another one)
    with a :class:`~transt_ros.ros.client.TrackerClient` that waited until the manager answers. Needs
    an initialised rclpy (:func:`ros_context`). Stopped at exit (SIGINT) unless the test stopped it.
    ``client``: one made before the bringup starts (kept open), else a new one (``depth``: its capture
    history), closed at exit."""
    from transt_ros.ros.client import CAPTURE_DEPTH, TrackerClient

    directory.mkdir(parents=True, exist_ok=True)
    remap = ['-r', f'__ns:=/{namespace.strip("/")}'] if namespace else []
    process = start_bringup(directory / 'bringup.log', *ros_args, *remap)
    own_client = client is None
    if own_client:
        client = TrackerClient(client_name, namespace=namespace, depth=depth or CAPTURE_DEPTH)
    bringup = Bringup(process, directory / 'bringup.log', client, directory)
    try:
        client.wait_until_answering(timeout_s, check=bringup.check_alive)
        yield bringup
    finally:
        if own_client:
            client.close()
        bringup.stop()
        if os.environ.get('TRANST_TEST_SHOW_LOG'):
            print(bringup.log())


@contextlib.contextmanager
def in_process_tracker(handle, topic: str, rgb: np.ndarray, client_name: str, rate_hz: float, threads: int,
                       frame_id: str = '', **parameters) -> Iterator[tuple[object, ImageFeed]]:
    """A ``TrackerNode`` on ``handle`` (loaded and active) in this process, spun by a multi-threaded
    executor of ``threads``, with ``parameters`` (image_topic: ``topic``); a client ``client_name`` and a
    camera publishing ``rgb`` at ``rate_hz``; yields (client, feed) once the node processed a frame.
    Needs an initialised rclpy (:func:`ros_context`); the handle stays the caller's."""
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from transt_ros.ros.client import TrackerClient
    from transt_ros.ros.tracker_node import TrackerNode

    height, width = rgb.shape[:2]
    image = Image(height=height, width=width, encoding='rgb8', step=width * 3, data=rgb.tobytes())
    image.header.frame_id = frame_id
    overrides = [Parameter(name, value=value) for name, value in {'image_topic': topic, **parameters}.items()]
    node = TrackerNode(handle, parameter_overrides=overrides)
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    client = TrackerClient(client_name)
    feed = ImageFeed(client, topic, [(image, 'frame')])
    try:
        client.wait_for_services()
        feed.wait_for_subscriber()
        feed.start(rate_hz)
        # ~/detections comes with every processed frame (a ~/status also comes from the diagnostics tick)
        client.detections.wait_for(what='a processed frame (the node receives images)')
        yield client, feed
    finally:
        feed.stop()
        client.close()
        executor.shutdown()
        node.destroy_node()


class ImageFeed:
    """A camera in the test process: prepared frames published on ``topic`` (rgb8 Image), each stamped
    now, one by one or by a thread at a fixed rate; remembers each stamp's payload (e.g. the box of the
    target in that frame). With ``camera_info``, that CameraInfo goes out with every frame, stamped alike."""

    def __init__(self, client, topic: str, frames: Sequence[tuple[object, object]], camera_info=None,
                 info_topic: str | None = None, qos=10):
        from sensor_msgs.msg import CameraInfo, Image

        self.client, self.frames, self.camera_info = client, list(frames), camera_info
        self.publisher = client.node.create_publisher(Image, topic, qos)
        self.info_publisher = client.node.create_publisher(CameraInfo, info_topic, 10) if info_topic else None
        self.lock = threading.Lock()
        self.published: dict[int, object] = {}  # stamp ns -> payload (None: not a good frame)
        self.count = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def wait_for_subscriber(self, timeout_s: float = 30.0) -> None:
        self.client.wait_for_subscriber(self.publisher, timeout_s)

    def publish(self, msg, payload=None) -> int:
        """Publish ``msg`` stamped now; -> the stamp [ns]."""
        stamp = self.client.stamp_now(msg)
        with self.lock:
            self.published[stamp] = payload
            self.count += 1
        if self.info_publisher is not None and self.camera_info is not None:
            self.camera_info.header = msg.header
            self.info_publisher.publish(self.camera_info)
        self.publisher.publish(msg)
        return stamp

    def publish_next(self) -> int:
        msg, payload = self.frames[self.count % len(self.frames)]
        return self.publish(msg, payload)

    def start(self, rate_hz: float, frames: int | None = None) -> None:
        """Publish at ``rate_hz`` in a thread (``frames`` of them, else until :meth:`stop`)."""
        self.stop()
        self._stop.clear()
        period = 1.0 / rate_hz

        def run():
            next_time, sent = time.perf_counter(), 0
            while not self._stop.is_set() and (frames is None or sent < frames):
                self.publish_next()
                sent += 1
                next_time += period
                self._stop.wait(max(0.0, next_time - time.perf_counter()))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout_s: float = 60.0) -> None:
        """Until a :meth:`start` with ``frames`` has published them all."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            assert not self._thread.is_alive(), 'the feed did not finish'
            self._thread = None

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def last(self, back: int = 0) -> tuple[int, object]:
        """(stamp ns, payload) of the newest frame published with a payload, or of the one ``back`` before it."""
        with self.lock:
            stamps = sorted(stamp for stamp, payload in self.published.items() if payload is not None)
            return stamps[-1 - back], self.published[stamps[-1 - back]]

    def newest_stamp(self) -> int:
        with self.lock:
            return max(self.published)


def reset_peak_rss(pid: int) -> None:
    """Start a new peak-memory (VmHWM) measurement of ``pid`` (Linux clear_refs)."""
    Path(f'/proc/{pid}/clear_refs').write_text('5')


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of ``pid`` since start or the last :func:`reset_peak_rss` [MB]."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f'no VmHWM for process {pid}')


def rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f'no VmRSS for process {pid}')


# ------------------------------------------------------------------------------------ camera process

SQUARE_SIDE = 80


def camera_frame(width: int, height: int, index: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A textured background with a textured square moving right and back; -> (rgb, square box)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(40, 120, (height, width, 3), dtype=np.uint8)
    span = max(1, width - SQUARE_SIDE - 40)
    x = 20 + abs((index * 4) % (2 * span) - span)
    y = height // 2 - SQUARE_SIDE // 2
    checker = (np.indices((SQUARE_SIDE, SQUARE_SIDE)).sum(axis=0) // 8 % 2).astype(np.uint8)
    frame[y:y + SQUARE_SIDE, x:x + SQUARE_SIDE] = np.stack([200 * checker + 40, 180 - 100 * checker,
                                                            60 + 0 * checker], -1)
    return frame, (float(x), float(y), float(SQUARE_SIDE), float(SQUARE_SIDE))


def camera_command(topic: str, width: int, height: int, rate_hz: float, seconds: float, reliability: str,
                   wait_for_subscriber_s: float = 20.0) -> list[str]:
    return [sys.executable, '-m', 'test.ros_helpers', 'camera', '--topic', topic, '--width', str(width),
            '--height', str(height), '--rate', str(rate_hz), '--seconds', str(seconds), '--reliability',
            reliability, '--wait', str(wait_for_subscriber_s)]


def run_camera(arguments: list[str] | None = None) -> None:
    """A camera driver's publisher: rgb8 frames of a moving square at a fixed rate, then one JSON line
    ``{"published": N, "stamps": [...]}`` on stdout."""
    parser = argparse.ArgumentParser(prog='test.ros_helpers camera')
    parser.add_argument('--topic', required=True)
    parser.add_argument('--width', type=int, required=True)
    parser.add_argument('--height', type=int, required=True)
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--seconds', type=float, default=3.0)
    parser.add_argument('--reliability', choices=('reliable', 'best_effort'), default='reliable')
    parser.add_argument('--wait', type=float, default=20.0, help='wait this long for a subscriber [s]')
    options = parser.parse_args(arguments)
    import rclpy
    from rclpy.duration import Duration
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('test_camera')
    reliability = ReliabilityPolicy.RELIABLE if options.reliability == 'reliable' else ReliabilityPolicy.BEST_EFFORT
    publisher = node.create_publisher(Image, options.topic, QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                                                                        reliability=reliability))
    frames = []
    for index in range(30):
        rgb, _ = camera_frame(options.width, options.height, index)
        frames.append(Image(height=options.height, width=options.width, encoding='rgb8', step=options.width * 3,
                            data=rgb.tobytes()))
    deadline = time.monotonic() + options.wait
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # let the subscriber side match too (an auto-QoS node re-subscribes within a tick)
    stamps = []
    count = int(options.seconds * options.rate)
    start = time.perf_counter()
    for index in range(count):
        msg = frames[index % len(frames)]
        msg.header.frame_id = 'camera'
        msg.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(msg)
        stamps.append(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        time.sleep(max(0.0, start + (index + 1) / options.rate - time.perf_counter()))
    if options.reliability == 'reliable':  # every frame delivered (or replaced) before the process ends
        publisher.wait_for_all_acked(Duration(seconds=10))
    else:
        time.sleep(0.5)  # best effort: nothing to wait for; let the last frames leave the sockets
    print(json.dumps({'published': count, 'stamps': stamps}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == '__main__':
    if sys.argv[1:2] == ['camera']:
        run_camera(sys.argv[2:])
    else:
        sys.exit('usage: python -m test.ros_helpers camera --topic T --width W --height H [...]')
