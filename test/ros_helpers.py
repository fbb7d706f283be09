"""Helpers for tests that start ROS 2 nodes (rclpy), shared by the project's ROS tests.

DDS must stay on loopback on CI / development machines, and concurrent test runs must not see
each other's nodes. Every ROS test therefore runs with

* ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (forced), and
* a ``ROS_DOMAIN_ID`` per test run: the one already in the environment (``scripts/env.sh`` picks
  one per shell), else one derived from the process id.

Typical use::

    from .ros_helpers import ros_context, spin_until   # test/ is a package

    def test_something():
        with ros_context():
            node = rclpy.create_node('probe')
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            ...
            assert spin_until(executor, lambda: got, timeout_s=10.0)

For subprocesses (a node started with ``subprocess``), pass ``env=ros_env()``.

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
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LARGE_FRAMES_PROFILE = ROOT / 'config' / 'fastdds_large_frames.xml'
LIGHT = dict(backbone='resnet18', d_model=64, nhead=4, num_fusion_layers=1, dim_feedforward=128,
             template_size=64, search_size=128)
SCORE = 0.8

LOCALHOST = 'LOCALHOST'


def run_domain_id() -> int:
    """The ROS domain id of this test run: $ROS_DOMAIN_ID if set, else one derived from the pid.

    The derived id is in 1..101, the range that is safe on Linux (ports below the ephemeral range).
    """
    value = os.environ.get('ROS_DOMAIN_ID', '').strip()
    if value:
        return int(value)
    return 1 + os.getpid() % 101


def ros_env(domain_id: int | None = None) -> dict[str, str]:
    """Set the ROS test environment in ``os.environ`` and return a copy of the whole environment.

    Forces DDS discovery onto loopback and fixes the domain id (see the module docstring); the
    returned dict is meant for ``subprocess.run(..., env=ros_env())``.
    """
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = LOCALHOST
    os.environ.pop('ROS_STATIC_PEERS', None)
    os.environ['ROS_DOMAIN_ID'] = str(run_domain_id() if domain_id is None else domain_id)
    return dict(os.environ)


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
    time.sleep(0.5)
    print(json.dumps({'published': count, 'stamps': stamps}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == '__main__':
    if sys.argv[1:2] == ['camera']:
        run_camera(sys.argv[2:])
    else:
        sys.exit('usage: python -m test.ros_helpers camera --topic T --width W --height H [...]')
