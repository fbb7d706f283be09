"""Generated scenes with several targets, and the multi-object tracking bag (``transt-make-bag --objects K``).

A scene: a photograph as the background and K textured patches (cut from other photographs of
:func:`transt_ros.training.synthetic.photos`) moving on straight lines at constant speeds, bouncing
off the image borders; a later object is drawn over an earlier one where they cross (the ground
truth stays the whole box). Everything follows from the seed.

The bag is the single-object layout of :mod:`.make_bag` (``/camera/image_raw`` or ``.../compressed``,
``/camera/camera_info``) with ``/ground_truth`` as **vision_msgs/Detection2DArray**: per image one
Detection2D per object of the scene, the image's header, the object's box (empty ``0, 0, 0, 0``
where it is absent) and its track name ``<scene>/<object>`` in ``id``. Every track is scored as a
sequence of its own (:mod:`.tracking_bag`).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from vision_msgs.msg import Detection2DArray

from ..bags.messages import header, stamped_detection
from ..common.seeds import MULTI_OBJECT_SEED
from ..training.synthetic import photos
from .scene_bag import DEFAULT_START_NS, FRAME_ID, SEQUENCES_KEY, write_scene_bag

MIN_SIDE, MAX_SIDE = 28, 56
MIN_SPEED, MAX_SPEED = 1.0, 3.5


@dataclass
class MultiObjectScene:
    """``boxes`` ``(objects, frames, 4)`` (x, y, w, h); ``frame(i)`` -> RGB uint8 ``(H, W, 3)``."""

    name: str
    boxes: np.ndarray
    frame: Callable[[int], np.ndarray]

    @property
    def track_names(self) -> list[str]:
        return [f'{self.name}/{index}' for index in range(len(self.boxes))]

    def __len__(self) -> int:
        return self.boxes.shape[1]


def _photo_cut(rng: np.random.Generator, images, height: int, width: int) -> np.ndarray:
    image = images[int(rng.integers(len(images)))]
    side_y = min(image.shape[0], max(height, int(rng.integers(height, 3 * height + 1))))
    side_x = min(image.shape[1], max(width, int(rng.integers(width, 3 * width + 1))))
    top = int(rng.integers(0, image.shape[0] - side_y + 1))
    left = int(rng.integers(0, image.shape[1] - side_x + 1))
    return cv2.resize(image[top:top + side_y, left:left + side_x], (width, height), interpolation=cv2.INTER_AREA)


def _paths(rng: np.random.Generator, sizes: np.ndarray, frames: int, width: int, height: int) -> np.ndarray:
    """Bouncing straight paths -> ``(objects, frames, 4)`` boxes."""
    boxes = np.zeros((len(sizes), frames, 4))
    for index, (object_width, object_height) in enumerate(sizes):
        span = np.array([width - object_width, height - object_height], dtype=float)
        position = rng.uniform(0, 1, 2) * span
        angle = rng.uniform(0, 2 * np.pi)
        velocity = rng.uniform(MIN_SPEED, MAX_SPEED) * np.array([np.cos(angle), np.sin(angle)])
        for frame_index in range(frames):
            boxes[index, frame_index] = (*position, object_width, object_height)
            position = position + velocity
            for axis in range(2):
                if position[axis] < 0 or position[axis] > span[axis]:
                    velocity[axis] = -velocity[axis]
                    position[axis] = float(np.clip(position[axis], 0, span[axis]))
    return boxes


def generate_scenes(count: int, frames: int, objects: int, width: int = 320, height: int = 240,
                    seed: int = MULTI_OBJECT_SEED) -> list[MultiObjectScene]:
    """``count`` scenes of ``frames`` frames with ``objects`` moving targets each."""
    if count < 1 or frames < 2 or objects < 1:
        raise ValueError(f'need at least 1 scene, 2 frames and 1 object, got {count}, {frames}, {objects}')
    if width < 2 * MAX_SIDE or height < 2 * MAX_SIDE:
        raise ValueError(f'multi-object scenes need at least {2 * MAX_SIDE}x{2 * MAX_SIDE} px, got {width}x{height}')
    images = photos()
    scenes = []
    for scene_index in range(count):
        rng = np.random.default_rng([seed, scene_index])
        background = _photo_cut(rng, images, height, width)
        sizes = rng.integers(MIN_SIDE, MAX_SIDE + 1, (objects, 2))
        patches = [_photo_cut(rng, images, int(h), int(w)) for w, h in sizes]
        boxes = _paths(rng, sizes, frames, width, height)

        def frame(frame_index: int, background=background, patches=patches, boxes=boxes) -> np.ndarray:
            rgb = background.copy()
            for patch, box in zip(patches, boxes[:, frame_index]):
                x, y = int(round(box[0])), int(round(box[1]))
                rgb[y:y + patch.shape[0], x:x + patch.shape[1]] = patch[:height - y, :width - x]
            return rgb

        scenes.append(MultiObjectScene(f'multi_{seed}_{scene_index:03d}', boxes.round(), frame))
    return scenes


def ground_truth_array(scene: MultiObjectScene, frame_index: int, stamp_ns: int) -> Detection2DArray:
    """One Detection2D per object: the box (empty where absent), ``id`` = the track name."""
    detections = []
    for name, box in zip(scene.track_names, scene.boxes[:, frame_index]):
        valid = bool(np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0)
        detections.append(stamped_detection(box if valid else np.zeros(4), stamp_ns, FRAME_ID, detection_id=name))
    return Detection2DArray(header=header(stamp_ns, FRAME_ID), detections=detections)


def write_multi_object_bag(path: Path, scenes: Sequence[MultiObjectScene], fps: float = 30.0,
                           compressed: str | None = None, storage: str | None = None,
                           start_ns: int = DEFAULT_START_NS, gap_s: float = 1.0, overwrite: bool = False,
                           compression: str = 'none', progress: bool = False, compression_mode: str = 'none') -> Path:
    """Write ``scenes`` one after the other into a new bag (options as ``make_bag.write_sequences_bag``)."""
    custom = {SEQUENCES_KEY: json.dumps([name for scene in scenes for name in scene.track_names]),
              'transt_ros.objects': json.dumps([len(scene.boxes) for scene in scenes])}
    return write_scene_bag(path, scenes, 'vision_msgs/msg/Detection2DArray', ground_truth_array, custom, fps=fps,
                           compressed=compressed, storage=storage, start_ns=start_ns, gap_s=gap_s, overwrite=overwrite,
                           compression=compression, progress=progress, compression_mode=compression_mode,
                           describe=lambda scene: f'{scene.name}: {len(scene)} frames, {len(scene.boxes)} objects')
