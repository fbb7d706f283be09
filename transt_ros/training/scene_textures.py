"""Textures of the generated scenes: cuts of scikit-image's photographs and procedural patterns.

Every texture is a pure function of its arguments (the random generator included); nothing is
read from disk but the photographs scikit-image ships (:func:`photos`). Procedural kinds:

* ``noise``: multi-octave value noise between two random colours (clouds, foliage, fabric);
* ``stripes`` and ``checker``: rotated periodic patterns (clothes, signs, tiles);
* ``blobs``: random discs on a base colour (printed patterns, clutter);
* ``flat``: one colour, a soft gradient and faint noise (the low-texture case).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

PHOTO_NAMES = ('astronaut', 'coffee', 'chelsea', 'rocket', 'hubble_deep_field', 'immunohistochemistry',
               'retina', 'colorwheel', 'logo', 'stereo_motorcycle', 'camera', 'coins', 'moon', 'brick', 'grass',
               'gravel', 'page', 'text', 'clock', 'cell')
MAX_PHOTO_SIDE = 640
PROCEDURAL_KINDS = ('noise', 'stripes', 'checker', 'blobs', 'flat')


@functools.lru_cache(maxsize=1)
def photos() -> tuple[np.ndarray, ...]:
    """scikit-image's bundled photographs as (H, W, 3) uint8 RGB, longest side <= 640 px."""
    import skimage.data

    images = []
    for name in PHOTO_NAMES:
        try:
            image = getattr(skimage.data, name)()
        except Exception:  # a photo that needs a download in this scikit-image version
            continue
        if isinstance(image, tuple):
            image = image[0]
        image = np.asarray(image)
        if image.dtype == bool:
            image = image.astype(np.uint8) * 255
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        image = np.ascontiguousarray(image[:, :, :3].astype(np.uint8))
        scale = MAX_PHOTO_SIDE / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        images.append(image)
    if len(images) < 3:
        raise RuntimeError('scikit-image provides fewer than 3 sample photographs')
    return tuple(images)


def _colours(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.uniform(0, 255, size=(count, 3)).astype(np.float32)


def _rotated_grid(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)


def procedural_texture(rng: np.random.Generator, height: int, width: int, kind: str) -> np.ndarray:
    """A (height, width, 3) uint8 RGB texture of ``kind`` (one of :data:`PROCEDURAL_KINDS`)."""
    if kind == 'noise':
        field = np.zeros((height, width), np.float32)
        for octave in range(4):
            cells = 2 ** (octave + 1)
            grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
            field += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) * 0.5 ** octave
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
        low, high = _colours(rng, 2)
        image = low + field[:, :, None] * (high - low)
    elif kind in ('stripes', 'checker'):
        u, v = _rotated_grid(rng, height, width)
        period = rng.uniform(4, max(5.0, min(height, width) / 2))
        if kind == 'stripes':
            pattern = (np.sin(2 * np.pi * u / period) > rng.uniform(-0.5, 0.5)).astype(np.float32)
        else:
            pattern = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
        low, high = _colours(rng, 2)
        image = low + pattern[:, :, None] * (high - low)
    elif kind == 'blobs':
        image = np.empty((height, width, 3), np.float32)
        image[:] = _colours(rng, 1)[0]
        for _ in range(int(rng.integers(6, 24))):
            centre = (int(rng.integers(width)), int(rng.integers(height)))
            radius = int(rng.integers(2, max(3, min(height, width) // 3)))
            cv2.circle(image, centre, radius, tuple(float(c) for c in _colours(rng, 1)[0]), -1, cv2.LINE_AA)
    elif kind == 'flat':
        u, _ = _rotated_grid(rng, height, width)
        ramp = (u - u.min()) / max(float(np.ptp(u)), 1e-6) - 0.5
        image = _colours(rng, 1)[0] + ramp[:, :, None] * rng.uniform(0, 40)
        image = image + rng.normal(0, 2.5, size=(height, width, 1)).astype(np.float32)
    else:
        raise ValueError(f'unknown procedural texture kind {kind!r}; known: {PROCEDURAL_KINDS}')
    return np.clip(image, 0, 255).astype(np.uint8)


def photo_cut(rng: np.random.Generator, height: int, width: int, textured: bool = True,
              photo: int | None = None) -> np.ndarray:
    """A (height, width, 3) cut of a photograph (``photo``, else a random one), resized; of a few
    random cuts the most (``textured``) or least contrasted one."""
    images = photos()
    image = images[int(rng.integers(len(images))) if photo is None else photo]
    aspect = width / height
    candidates = []
    for _ in range(4):
        cut_h = int(rng.integers(24, max(25, image.shape[0] // 2)))
        cut_w = int(np.clip(cut_h * aspect, 16, image.shape[1] - 1))
        cut_h = int(np.clip(cut_w / aspect, 16, image.shape[0] - 1))
        x = int(rng.integers(0, image.shape[1] - cut_w))
        y = int(rng.integers(0, image.shape[0] - cut_h))
        contrast = float(image[y:y + cut_h:4, x:x + cut_w:4].std())
        candidates.append((contrast if textured else -contrast, (x, y, cut_w, cut_h)))
    x, y, cut_w, cut_h = max(candidates)[1]
    return cv2.resize(image[y:y + cut_h, x:x + cut_w], (width, height), interpolation=cv2.INTER_AREA)


def low_texture(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` smoothed and its contrast cut to 15-35 % around its mean colour."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=max(1.0, image.shape[1] / 12))
    mean = blurred.reshape(-1, 3).mean(axis=0)
    return np.clip(mean + (blurred - mean) * rng.uniform(0.15, 0.35), 0, 255).astype(np.uint8)


def shape_mask(rng: np.random.Generator, height: int, width: int, shape: str) -> np.ndarray:
    """(height, width) uint8 mask (255 inside) of a ``rect``, ``ellipse`` or ``blob`` (a smooth
    random star-shaped outline) filling the texture."""
    mask = np.zeros((height, width), np.uint8)
    if shape == 'rect':
        mask[:] = 255
    elif shape == 'ellipse':
        box = (((width - 1) / 2, (height - 1) / 2), (float(width), float(height)), 0.0)
        cv2.ellipse(mask, box, 255, -1, cv2.LINE_AA)
    elif shape == 'blob':
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        radius = np.ones_like(angles)
        for harmonic in (2, 3, 5):
            radius += rng.uniform(0, 0.12) * np.cos(harmonic * angles + rng.uniform(0, 2 * np.pi))
        radius /= radius.max()
        points = np.stack([(width - 1) / 2 * (1 + radius * np.cos(angles)),
                           (height - 1) / 2 * (1 + radius * np.sin(angles))], axis=1)
        cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    else:
        raise ValueError(f'unknown shape {shape!r}')
    return mask
