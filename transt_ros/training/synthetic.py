"""A generated tracking dataset: textured objects moving over photographs, in memory.

Every video is a pure function of ``(seed, video index)``: a background cut from one of
scikit-image's sample photographs (slowly panning), a target whose texture is a patch cut
from another photo (rectangle or ellipse, changing scale, drifting and bouncing inside the
frame), distractor patches (often cut from the same photo as the target, so they look
alike) moving behind it, and an occluder smaller than the target that circles it and
covers it partly from time to time. Frames are rendered on request; no files are needed.
The box of frame ``t`` is exactly the target's pasted pixel rectangle.

That is the ``default`` preset. The ``mixed`` and ``hard`` presets (:mod:`.scene_video`) add what
real video does: motion blur, in-plane rotation, zoom, occlusion, the target leaving the view,
look-alike distractors crossing it, illumination change, camera shake, perspective, non-rigid
deformation and low texture; there the target can be absent (NaN box, not visible).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..common.seeds import TRAINING_SCENE_SEED
from .datasets.base import SequenceInfo, TrackingDataset
from .scene_textures import PHOTO_NAMES, photos
from .scene_video import EFFECTS, SceneVideos

PRESETS = ('default', 'mixed', 'hard')
"""``default``: the scenes above; ``mixed``: each effect of :data:`EFFECTS` on with probability
``effect_probability`` per video (training); ``hard``: every effect in every video (held-out
evaluation). See :mod:`.scene_video`."""
__all__ = ['EFFECTS', 'PHOTO_NAMES', 'PRESETS', 'SyntheticVideos', 'photos']


def _fold(value):
    """Triangle wave folding any real into [0, 1] (a bounce off both walls)."""
    value = np.mod(value, 2.0)
    return np.where(value > 1.0, 2.0 - value, value)


@dataclass
class _Patch:
    photo: int
    texture: tuple[int, int, int, int]
    ellipse: bool
    size: tuple[float, float]
    scale_amplitude: float
    scale_period: float
    scale_phase: float
    start: tuple[float, float]
    velocity: tuple[float, float]

    def geometry(self, t, frame_size):
        """Integer boxes (x, y, w, h) at frame indices ``t`` (array), inside the frame."""
        t = np.asarray(t, dtype=np.float64)
        width, height = frame_size
        scale = np.exp(self.scale_amplitude * np.sin(2 * np.pi * t / self.scale_period + self.scale_phase))
        w = np.clip(self.size[0] * scale, 4, 0.8 * width)
        h = np.clip(self.size[1] * scale, 4, 0.8 * height)
        u = _fold(self.start[0] + self.velocity[0] * t)
        v = _fold(self.start[1] + self.velocity[1] * t)
        cx = w / 2 + u * (width - w)
        cy = h / 2 + v * (height - h)
        wi = np.maximum(2, np.round(w)).astype(int)
        hi = np.maximum(2, np.round(h)).astype(int)
        return np.stack([np.round(cx - wi / 2).astype(int), np.round(cy - hi / 2).astype(int), wi, hi], axis=-1)


@dataclass
class _Video:
    background: int
    view: tuple[float, float, float]
    pan: tuple[float, float]
    target: _Patch
    distractors: list[_Patch]
    occluder: _Patch | None
    orbit: tuple[float, float, float]


class SyntheticVideos(TrackingDataset):
    """``num_videos`` videos of ``frames_per_video`` frames of ``frame_width`` x ``frame_height``.

    Target sizes (square root of the area) lie in [``min_object_size``, ``max_object_size``]
    before a scale change of up to exp(+-``max_scale_change``); ``root`` is unused. ``preset``
    (:data:`PRESETS`) picks the scene generator; with ``mixed`` / ``hard``, ``effects`` (default:
    all of :data:`EFFECTS`) are the effects in play and ``effect_probability`` the chance of each
    per video (``mixed`` only), and the ``default`` preset's options (``max_scale_change``,
    ``max_distractors``, ``occlusion_probability``) do not apply.
    """

    def __init__(self, root: str = '', num_videos: int = 1000, frames_per_video: int = 100,
                 frame_width: int = 320, frame_height: int = 240, seed: int = TRAINING_SCENE_SEED,
                 min_object_size: float = 24.0, max_object_size: float = 72.0, max_scale_change: float = 0.5,
                 max_distractors: int = 3, occlusion_probability: float = 0.5, preset: str = 'default',
                 effects: list[str] | None = None, effect_probability: float = 0.5):
        if preset not in PRESETS:
            raise ValueError(f'synthetic preset must be one of {PRESETS}, got {preset!r}')
        self.preset = preset
        self.scenes = None
        if preset != 'default':
            self.scenes = SceneVideos(num_videos, frames_per_video, (frame_width, frame_height), seed,
                                      (min_object_size, max_object_size), EFFECTS if effects is None else effects,
                                      1.0 if preset == 'hard' else effect_probability)
        self.num_videos, self.frames_per_video = num_videos, frames_per_video
        self.frame_size = (frame_width, frame_height)
        self.seed = seed
        self.object_sizes = (min_object_size, max_object_size)
        self.max_scale_change = max_scale_change
        self.max_distractors = max_distractors
        self.occlusion_probability = occlusion_probability
        self._videos: dict[int, _Video] = {}

    def __len__(self) -> int:
        return self.num_videos

    def sequence_name(self, index: int) -> str:
        prefix = 'synthetic' if self.preset == 'default' else f'synthetic-{self.preset}'
        return f'{prefix}-{self.seed}-{index:06d}'

    def _random_patch(self, rng, photo: int, size: float, speed: float) -> _Patch:
        image = photos()[photo]
        aspect = math.exp(rng.uniform(-0.7, 0.7))
        candidates = []
        for _ in range(4):
            tex_h = int(rng.integers(24, max(25, image.shape[0] // 2)))
            tex_w = int(np.clip(tex_h * aspect, 16, image.shape[1] - 1))
            tex_x = int(rng.integers(0, image.shape[1] - tex_w))
            tex_y = int(rng.integers(0, image.shape[0] - tex_h))
            contrast = float(image[tex_y:tex_y + tex_h:4, tex_x:tex_x + tex_w:4].std())
            candidates.append((contrast, (tex_x, tex_y, tex_w, tex_h)))
        texture = max(candidates)[1]  # the most textured of a few cuts
        angle = rng.uniform(0, 2 * np.pi)
        return _Patch(photo=photo, texture=texture, ellipse=bool(rng.random() < 0.3),
                      size=(size * math.sqrt(aspect), size / math.sqrt(aspect)),
                      scale_amplitude=rng.uniform(0, self.max_scale_change), scale_period=rng.uniform(40, 200),
                      scale_phase=rng.uniform(0, 2 * np.pi), start=(rng.random(), rng.random()),
                      velocity=(speed * math.cos(angle), speed * math.sin(angle)))

    def _video(self, index: int) -> _Video:
        if index not in self._videos:
            rng = np.random.default_rng([self.seed, index])
            count = len(photos())
            background, target_photo = (int(i) for i in rng.choice(count, size=2, replace=False))
            size = rng.uniform(*self.object_sizes)
            target = self._random_patch(rng, target_photo, size, rng.uniform(0.003, 0.02))
            distractors = []
            for _ in range(int(rng.integers(0, self.max_distractors + 1))):
                photo = target_photo if rng.random() < 0.5 else int(rng.integers(count))
                distractors.append(self._random_patch(rng, photo, size * rng.uniform(0.6, 1.4),
                                                      rng.uniform(0.003, 0.02)))
            occluder = None
            if rng.random() < self.occlusion_probability:
                occluder = self._random_patch(rng, int(rng.integers(count)), size * rng.uniform(0.3, 0.6), 0.0)
                occluder.scale_amplitude = 0.0
            zoom = rng.uniform(0.4, 1.0)
            self._videos[index] = _Video(
                background=background, view=(rng.random(), rng.random(), zoom),
                pan=(rng.uniform(-0.003, 0.003), rng.uniform(-0.003, 0.003)), target=target,
                distractors=distractors, occluder=occluder,
                orbit=(rng.uniform(0.4, 1.2), rng.uniform(0.02, 0.08), rng.uniform(0, 2 * np.pi)))
        return self._videos[index]

    def boxes(self, index: int) -> np.ndarray:
        """(frames_per_video, 4) target boxes (x, y, w, h): integers, NaN rows where the target is
        absent (``mixed`` / ``hard`` presets only)."""
        if self.scenes is not None:
            return self.scenes.boxes(index)
        return self._video(index).target.geometry(np.arange(self.frames_per_video), self.frame_size)

    def sequence_info(self, index: int) -> SequenceInfo:
        boxes = self.boxes(index).astype(np.float64)
        return SequenceInfo(boxes, np.isfinite(boxes).all(axis=1))

    def frame(self, index: int, frame_id: int) -> np.ndarray:
        if self.scenes is not None:
            return self.scenes.frame(index, frame_id)
        video = self._video(index)
        canvas = self._background(video, frame_id)
        for distractor in video.distractors:
            self._paste(canvas, distractor, distractor.geometry(frame_id, self.frame_size))
        target_box = video.target.geometry(frame_id, self.frame_size)
        self._paste(canvas, video.target, target_box)
        if video.occluder is not None:
            radius, speed, phase = video.orbit
            x, y, w, h = target_box
            ow, oh = (int(max(2, round(s))) for s in video.occluder.size)
            cx = x + w / 2 + radius * w * math.cos(speed * frame_id + phase)
            cy = y + h / 2 + radius * h * math.sin(speed * frame_id + phase)
            self._paste(canvas, video.occluder, np.array([round(cx - ow / 2), round(cy - oh / 2), ow, oh]))
        return canvas

    def _background(self, video: _Video, frame_id: int) -> np.ndarray:
        photo = photos()[video.background]
        width, height = self.frame_size
        side = video.view[2] * min(photo.shape[1] / width, photo.shape[0] / height)
        room_x, room_y = photo.shape[1] - side * width, photo.shape[0] - side * height
        x0 = float(_fold(video.view[0] + video.pan[0] * frame_id)) * room_x
        y0 = float(_fold(video.view[1] + video.pan[1] * frame_id)) * room_y
        matrix = np.array([[1 / side, 0, -x0 / side], [0, 1 / side, -y0 / side]], dtype=np.float64)
        return cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    @staticmethod
    def _paste(canvas: np.ndarray, patch: _Patch, box) -> None:
        x, y, w, h = (int(v) for v in box)
        tx, ty, tw, th = patch.texture
        texture = cv2.resize(photos()[patch.photo][ty:ty + th, tx:tx + tw], (w, h), interpolation=cv2.INTER_AREA)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        piece = texture[y0 - y:y1 - y, x0 - x:x1 - x]
        if patch.ellipse:
            mask = np.zeros((h, w), dtype=np.uint8)
            cv2.ellipse(mask, (w // 2, h // 2), (max(1, w // 2), max(1, h // 2)), 0, 0, 360, 1, -1)
            mask = mask[y0 - y:y1 - y, x0 - x:x1 - x].astype(bool)
            canvas[y0:y1, x0:x1][mask] = piece[mask]
        else:
            canvas[y0:y1, x0:x1] = piece
