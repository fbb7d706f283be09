"""Per-frame cost of N targets in one tracker node (one batched forward) vs N separate single-target trackers.

The node: a real ``transt_tracker`` (in this process, on a ModelHandle) with ``max_targets`` 8;
a probe node sets N targets through ``~/set_target`` and publishes frames over DDS (loopback) one at a
time, waiting for each frame's ``~/status``: ``track_ms`` is the node's tracking step for all N
tracks (one batched forward, crops and decode included), ``latency_ms`` the image stamp -> status
published (conversion, step and publishing included). Beside it, N separate ``Tracker`` objects on the
same prepared model each ``track()`` the same frame (what N single-target nodes would compute).

    python benchmarks/multi_target_node.py                        # demo model and full TransT-R50 (random weights)
    python benchmarks/multi_target_node.py --full-frames 0        # demo model only

Prints a markdown table and the machine; writes JSON with ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, machine_name  # noqa: E402

from transt_ros.common.ros_environment import ros_dds_environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = ROOT / 'transt_ros' / 'data' / 'demo_model.pth'
TOPIC = '/bench_cam/image'
SERVICE_TIMEOUT_S = 120.0


def target_boxes(count: int, width: int, height: int) -> list[tuple[float, float, float, float]]:
    """``count`` square boxes on a grid over the frame."""
    columns = 4
    side = min(width, height) / 6
    return [(width * (0.1 + 0.22 * (index % columns)), height * (0.15 + 0.35 * (index // columns)), side, side)
            for index in range(count)]


def separate_trackers_ms(model, frame: np.ndarray, count: int, frames: int) -> list[float]:
    """Per-frame time of ``count`` single-target trackers, one ``track()`` each."""
    from transt_ros.tracking import Tracker

    trackers = [Tracker(model, prepared=True) for _ in range(count)]
    for tracker, box in zip(trackers, target_boxes(count, frame.shape[1], frame.shape[0])):
        tracker.initialize(frame, box)
        tracker.track(frame)  # warm-up
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        for tracker in trackers:
            tracker.track(frame)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


class Bench:
    """The node under test (in this process) and a :class:`~transt_ros.ros.client.TrackerClient` that
    drives it over DDS."""

    def __init__(self, width: int, height: int):
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image

        from transt_ros.ros.client import TrackerClient
        from transt_ros.ros.model_handle import ModelHandle
        from transt_ros.ros.tracker_node import TrackerNode

        self.handle = ModelHandle()
        self.node = TrackerNode(self.handle, parameter_overrides=[
            Parameter('image_topic', value=TOPIC), Parameter('max_targets', value=8),
            Parameter('image_qos_reliability', value='reliable')])
        self.node_executor = MultiThreadedExecutor(num_threads=3)
        self.node_executor.add_node(self.node)
        threading.Thread(target=self.node_executor.spin, daemon=True).start()
        self.client = TrackerClient('multi_target_bench_client')
        self.image_pub = self.client.node.create_publisher(Image, TOPIC, 10)
        rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.frame = rgb
        self.image = Image(height=height, width=width, encoding='rgb8', step=width * 3, data=rgb.tobytes())
        self.client.wait_for_services(SERVICE_TIMEOUT_S)
        self.client.wait_for_subscriber(self.image_pub, SERVICE_TIMEOUT_S)
        self.client.wait_for_outputs(SERVICE_TIMEOUT_S)

    def load(self, model) -> None:
        self.handle.load(model, 'cpu', 'fp32')
        self.handle.set_active(True)

    def publish(self, timeout_s=SERVICE_TIMEOUT_S):
        """Publish the frame and wait for its status."""
        stamp = self.client.stamp_now(self.image)
        self.image_pub.publish(self.image)
        return self.client.status.wait_for_stamp(stamp, timeout_s)

    def node_ms(self, count: int, frames: int) -> tuple[list[float], list[float]]:
        """(track_ms, latency_ms) per frame with ``count`` targets."""
        self.client.clear_target(SERVICE_TIMEOUT_S)
        self.publish()
        for x, y, width, height in target_boxes(count, self.image.width, self.image.height):
            reply = self.client.set_target(x, y, width, height, timeout_s=SERVICE_TIMEOUT_S)
            if not reply.accepted:
                raise RuntimeError(f'SetTarget refused: {reply.reason}')
        status = self.publish()  # warm-up frame with these N
        assert len(status.tracks) == count, status
        track_ms, latency_ms = [], []
        for _ in range(frames):
            status = self.publish()
            track_ms.append(status.track_ms)
            latency_ms.append(status.latency_ms)
        return track_ms, latency_ms

    def close(self) -> None:
        self.client.close()
        self.node_executor.shutdown()
        self.node.destroy_node()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', default='1,2,4,8', help='numbers of targets (at most 8)')
    parser.add_argument('--demo-frames', type=int, default=10, help='timed frames per N, demo model (0: skip)')
    parser.add_argument('--full-frames', type=int, default=2, help='timed frames per N, full model (0: skip)')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--domain-id', type=int)
    parser.add_argument('--out', type=Path, help='JSON file for the results')
    args = parser.parse_args(argv)
    sizes = [int(value) for value in args.sizes.split(',')]
    if not all(1 <= size <= 8 for size in sizes):
        parser.error('--sizes: values in 1..8')
    ros_dds_environment(os.environ, args.domain_id)  # the project's DDS policy: loopback, a domain id of our own
    import rclpy
    import torch

    from transt_ros.checkpoint import load_model
    from transt_ros.model import build_transt
    from transt_ros.tracking import prepare_model

    rclpy.init(domain_id=int(os.environ['ROS_DOMAIN_ID']))
    bench = Bench(args.width, args.height)
    models = [('demo', lambda: load_model(DEMO_CHECKPOINT), args.demo_frames)] if args.demo_frames > 0 else []
    if args.full_frames > 0:
        models.append(('full TransT-R50 (random weights)', lambda: build_transt().eval(), args.full_frames))
    rows = []
    try:
        for name, build, frames in models:
            torch.manual_seed(0)
            model = prepare_model(build())
            bench.load(model)
            for size in sizes:
                track_ms, latency_ms = bench.node_ms(size, frames)
                separate = separate_trackers_ms(model, bench.frame, size, frames)
                row = {'model': name, 'targets': size, 'frames': frames,
                       'node_track_ms': statistics.median(track_ms), 'node_latency_ms': statistics.median(latency_ms),
                       'separate_ms': statistics.median(separate)}
                row['speedup'] = row['separate_ms'] / row['node_track_ms']
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        bench.close()
        rclpy.try_shutdown()
    machine = describe('cpu')
    print(f"\nmachine: {machine_name(machine, 'cpu')}, torch {machine['torch']}, {machine['torch_threads']} threads")
    print(f'frames {args.width}x{args.height} rgb8; medians over the timed frames\n')
    print('| model | N | node step, all N (ms) | node latency (ms) | N separate trackers (ms) | separate / node |')
    print('| --- | --- | --- | --- | --- | --- |')
    for row in rows:
        print(f"| {row['model']} | {row['targets']} | {row['node_track_ms']:.1f} | {row['node_latency_ms']:.1f} | "
              f"{row['separate_ms']:.1f} | {row['speedup']:.2f}x |")
    if args.out:
        args.out.write_text(json.dumps({'machine': machine, 'rows': rows}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
