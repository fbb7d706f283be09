"""Shared pieces of the tests that drive the bringup in the orders robots use: checkpoints with random
(non-degenerate) heads, a lock-step camera and reference trackers.

The light test checkpoint of ``ros_helpers`` has constant heads (every template gives the same box):
it cannot tell one template from another. :func:`random_checkpoint` keeps the random heads, so a
wrong template gives a different box.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .ros_helpers import LIGHT, ImageFeed, camera_frame


def random_checkpoint(path: Path, d_model: int = 64, seed: int = 0) -> Path:
    import torch

    from transt_ros.checkpoint import save_checkpoint
    from transt_ros.model import TransTConfig, build_transt

    torch.manual_seed(seed)
    return save_checkpoint(path, build_transt(TransTConfig(**{**LIGHT, 'd_model': d_model})))


def lockstep_feed(client, topic: str, width: int, height: int, reliability: str = 'reliable',
                  frames: int = 30) -> ImageFeed:
    """An :class:`ImageFeed` of :func:`camera_frame` frames (payload: the frame's RGB array), published
    one at a time by the test, with ``reliability`` (depth 5)."""
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from transt_ros.ros.image_conversion import rgb_to_image_fields

    prepared = []
    for index in range(frames):
        rgb, _ = camera_frame(width, height, index)
        prepared.append((Image(**rgb_to_image_fields(rgb)), rgb))
    policy = ReliabilityPolicy.RELIABLE if reliability == 'reliable' else ReliabilityPolicy.BEST_EFFORT
    return ImageFeed(client, topic, prepared,
                     qos=QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=policy))


def publish_until_processed(feed: ImageFeed, timeout_s: float = 60.0, check=None) -> int:
    """Publish frames until the tracker publishes ``~/detections`` for one (discovery, QoS matching)
    -> that frame's stamp."""
    from transt_ros.ros.client import WaitTimeout

    def one() -> int | None:
        stamp = feed.publish_next()
        try:
            feed.client.detections.wait_for_stamp(stamp, timeout_s=0.5, check=check)
        except WaitTimeout:
            return None
        return stamp
    return feed.client.wait_until(one, timeout_s, 'the tracker to process a frame', check)


class ReferenceTracks:
    """Fresh single trackers (``Tracker.initialize`` / ``track``, no registry, no stacking), one per
    target that should be live; the model of one checkpoint."""

    def __init__(self, checkpoint: Path):
        self.use(checkpoint)

    def use(self, checkpoint: Path) -> None:
        from transt_ros.checkpoint import load_model
        from transt_ros.tracking import prepare_model

        self.model = prepare_model(load_model(checkpoint), backend='auto')  # what the node runs
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
