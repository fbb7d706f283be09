"""Writing scenes (dataset sequences or generated ones) into a tracking bag, one after the other.

Each frame gives three messages with one stamp: the image (rgb8 ``Image`` or jpeg/png
``CompressedImage``) on :data:`IMAGE_TOPIC`, its ``CameraInfo`` and the ground truth on
:data:`GROUND_TRUTH_TOPIC` (a ``Detection2D`` for one target, a ``Detection2DArray`` for several).
Stamps start at :data:`DEFAULT_START_NS` and advance by 1/fps, with a gap between scenes.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..bags import create_bag
from ..bags.messages import camera_info_message, compressed_image_message, image_message
from ..bags.rosbag2 import offered_qos_profiles

IMAGE_TOPIC = '/camera/image_raw'
CAMERA_INFO_TOPIC = '/camera/camera_info'
GROUND_TRUTH_TOPIC = '/ground_truth'
FRAME_ID = 'camera'
SEQUENCES_KEY = 'transt_ros.sequences'
DEFAULT_START_NS = 1_800_000_000 * 1_000_000_000
"""Stamp of the first frame: fixed, so a bag's content depends only on its sources."""


def write_scene_bag(path: Path, scenes: Sequence, ground_truth_type: str,
                    ground_truth: Callable[[object, int, int], object], custom_data: dict[str, str],
                    fps: float = 30.0, compressed: str | None = None, storage: str | None = None,
                    start_ns: int = DEFAULT_START_NS, gap_s: float = 1.0, overwrite: bool = False,
                    compression: str = 'none', progress: bool = False, compression_mode: str = 'none',
                    describe: Callable[[object], str] | None = None) -> Path:
    """Write ``scenes`` (each with ``name``, ``len()`` and ``frame(index) -> RGB``) into a new bag.

    ``ground_truth(scene, index, stamp_ns)``: the ground-truth message of a frame, of type
    ``ground_truth_type`` (e.g. ``'vision_msgs/msg/Detection2D'``).
    ``compressed``: None (rgb8 Image), ``'jpeg'`` or ``'png'`` (CompressedImage).
    ``compression``: MCAP chunk compression (``'none'``, ``'zstd'``, ``'lz4'``).
    ``compression_mode``: rosbag2 zstd compression, ``'none'``, ``'message'`` or ``'file'``.
    Returns the bag directory.
    """
    if fps <= 0:
        raise ValueError(f'fps must be positive, got {fps}')
    options = {'compression': compression} if compression != 'none' else {}
    period_ns = round(1e9 / fps)
    writer = create_bag(path, storage, overwrite=overwrite, custom_data={'transt_ros.fps': f'{fps:g}', **custom_data},
                        compression_mode=compression_mode, **options)
    image_topic = IMAGE_TOPIC + '/compressed' if compressed else IMAGE_TOPIC
    reliable = offered_qos_profiles('reliable', 10)
    with writer:
        writer.add_topic(image_topic, 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image',
                         reliable)
        writer.add_topic(CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo', reliable)
        writer.add_topic(GROUND_TRUTH_TOPIC, ground_truth_type, reliable)
        stamp = int(start_ns)
        for scene in scenes:
            for index in range(len(scene)):
                rgb = scene.frame(index)
                image = (compressed_image_message(rgb, stamp, FRAME_ID, compressed) if compressed
                         else image_message(rgb, stamp, FRAME_ID))
                writer.write_message(CAMERA_INFO_TOPIC, camera_info_message(rgb.shape[1], rgb.shape[0], stamp,
                                                                            FRAME_ID), stamp)
                writer.write_message(image_topic, image, stamp)
                writer.write_message(GROUND_TRUTH_TOPIC, ground_truth(scene, index, stamp), stamp)
                stamp += period_ns
            if progress:
                print(f'  {describe(scene) if describe else f"{scene.name}: {len(scene)} frames"}', file=sys.stderr)
            stamp += round(gap_s * 1e9)
    return writer.directory
