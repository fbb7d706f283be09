"""Shared pieces of the tests that drive the bringup in the orders robots use: a running bringup with
its client, checkpoints with random (non-degenerate) heads, a lock-step camera and reference trackers.

The light test checkpoint of ``ros_helpers`` has constant heads (every template gives the same box):
it cannot tell one template from another. :func:`random_checkpoint` keeps the random heads, so a
wrong template gives a different box.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ros_helpers import LIGHT, camera_frame, start_bringup, stop_process_group

TRANSITIONS = {'configure': 1, 'cleanup': 2, 'activate': 3, 'deactivate': 4}
"""lifecycle_msgs/Transition ids."""


def random_checkpoint(path: Path, d_model: int = 64, seed: int = 0) -> Path:
    import torch

    from transt_ros.checkpoint import save_checkpoint
    from transt_ros.model import TransTConfig, build_transt

    torch.manual_seed(seed)
    return save_checkpoint(path, build_transt(TransTConfig(**{**LIGHT, 'd_model': d_model})))


@dataclass
class Bringup:
    """A running ``transt-ros`` process and a :class:`~transt_ros.ros.client.TrackerClient` to it."""

    process: subprocess.Popen
    client: object
    log_path: Path

    def check(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f'the bringup exited with {self.process.returncode}:\n{self.log_path.read_text()}')

    def transition(self, name: str) -> None:
        assert self.client.change_state(TRANSITIONS[name]), f'{name} failed:\n{self.log_path.read_text()[-3000:]}'

    def pid_figures(self) -> tuple[float, int, int]:
        """(RSS MB, threads, open file descriptors) of the bringup process."""
        status = Path(f'/proc/{self.process.pid}/status').read_text().splitlines()
        values = dict(line.split(':', 1) for line in status if ':' in line)
        rss_mb = int(values['VmRSS'].split()[0]) / 1024.0
        return rss_mb, int(values['Threads']), len(os.listdir(f'/proc/{self.process.pid}/fd'))


@contextlib.contextmanager
def running_bringup(log_path: Path, *parameters: str, wait: bool = True, client=None) -> Iterator[Bringup]:
    """The bringup with ``name:=value`` parameters; ``wait``: until the manager answers and the tracker's
    services are up; ``client``: an existing client (made before the bringup starts), else a new one.
    Stopped (and its exit code checked) at the end; a client made here is closed."""
    from transt_ros.ros.client import TrackerClient

    arguments = [item for parameter in parameters for item in ('-p', parameter)]
    process = start_bringup(log_path, *arguments)
    own_client = client is None
    client = TrackerClient('orders_probe', depth=1000) if own_client else client
    bringup = Bringup(process, client, log_path)
    try:
        if wait:
            client.wait_until_answering(check=bringup.check)
            client.wait_for_services(check=bringup.check)
        yield bringup
    finally:
        if own_client:
            client.close()
        assert stop_process_group(process) == 0, log_path.read_text()[-3000:]


@dataclass
class LockstepCamera:
    """The test's camera on the client's node: frames of :func:`camera_frame` published one at a time,
    each stamped uniquely; remembers every frame by stamp."""

    client: object
    topic: str
    width: int
    height: int
    reliability: str = 'reliable'
    frames: dict[int, np.ndarray] = field(default_factory=dict)
    index: int = 0

    def __post_init__(self):
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        reliability = ReliabilityPolicy.RELIABLE if self.reliability == 'reliable' else ReliabilityPolicy.BEST_EFFORT
        self.publisher = self.client.node.create_publisher(
            Image, self.topic, QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=reliability))

    def publish(self) -> int:
        """The next frame -> its stamp (ns)."""
        from sensor_msgs.msg import Image

        from transt_ros.ros.image_conversion import rgb_to_image_fields

        rgb, _ = camera_frame(self.width, self.height, self.index)
        self.index += 1
        msg = Image(**rgb_to_image_fields(rgb))
        stamp = self.client.stamp_now(msg)
        msg.header.frame_id = 'orders_camera'
        self.frames[stamp] = rgb
        self.publisher.publish(msg)
        return stamp

    def publish_until_processed(self, timeout_s: float = 60.0, check=None) -> int:
        """Publish frames until the tracker publishes ``~/detections`` for one (discovery, QoS
        matching) -> that frame's stamp."""
        from transt_ros.ros.client import WaitTimeout

        def one() -> int | None:
            stamp = self.publish()
            try:
                self.client.detections.wait_for_stamp(stamp, timeout_s=0.5, check=check)
            except WaitTimeout:
                return None
            return stamp
        return self.client.wait_until(one, timeout_s, f'the tracker to process a frame on {self.topic}', check)


class ReferenceTracks:
    """Fresh single trackers (``Tracker.initialize`` / ``track``, no registry, no stacking), one per
    target that should be live; the model of one checkpoint."""

    def __init__(self, checkpoint: Path):
        self.use(checkpoint)

    def use(self, checkpoint: Path) -> None:
        from transt_ros.checkpoint import load_model
        from transt_ros.tracking import prepare_model

        self.model = prepare_model(load_model(checkpoint))
        self.tracks: dict[str, object] = {}

    def set(self, track_id: str, rgb: np.ndarray, box) -> None:
        from transt_ros.tracking import Tracker

        tracker = Tracker(self.model, prepared=True)
        tracker.initialize(rgb, box)
        self.tracks[track_id] = tracker

    def step(self, rgb: np.ndarray) -> dict[str, tuple]:
        return {track_id: tuple(tracker.track(rgb).box) for track_id, tracker in self.tracks.items()}


def detected_boxes(array) -> dict[str, tuple]:
    from transt_ros.ros.detection_messages import detection_box

    return {detection.id: tuple(detection_box(detection)) for detection in array.detections}


def assert_same_boxes(published: dict[str, tuple], expected: dict[str, tuple], what: str, atol: float = 0.05) -> None:
    assert set(published) == set(expected), f'{what}: published tracks {sorted(published)}, expected {sorted(expected)}'
    for track_id, box in expected.items():
        assert np.allclose(published[track_id], box, atol=atol), (
            f'{what}: track {track_id} published {np.round(published[track_id], 3).tolist()}, a fresh tracker '
            f'gives {np.round(box, 3).tolist()}')
