"""Image effects of the generated scenes, each a pure function of its parameters and the frame index.

What real video does to a tracked object and how it is imitated here:

* camera: zoom about the frame centre, shake (translation and roll that change every frame),
  and a perspective tilt, one 3x3 homography per frame applied to every layer (:func:`camera_matrix`);
* motion blur: a line kernel along the image motion of a layer during the exposure
  (:func:`motion_blur`);
* non-rigid deformation: a travelling sine wave through the object and squash/stretch
  (:func:`deformation_maps`);
* illumination: global gain and colour drift, plus a moving light gradient / shadow
  (:func:`illumination_gain`).
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np


def periodic(amplitude, period, phase, t) -> float:
    """``amplitude * sin(2 pi t / period + phase)`` summed over the given components."""
    if np.ndim(amplitude) == 0:
        return float(amplitude) * math.sin(2 * math.pi * t / float(period) + float(phase))
    return sum(float(a) * math.sin(2 * math.pi * t / float(p) + float(f)) for a, p, f in zip(amplitude, period, phase))


def camera_matrix(width: int, height: int, t: float, zoom=(0.0, 1.0, 0.0), shake=None, roll=None,
                  tilt=(0.0, 0.0, 1.0, 0.0)) -> np.ndarray:
    """3x3 homography world -> image at frame ``t`` (pixel-centre coordinates).

    ``zoom``: (log-scale amplitude, period, phase); ``shake``: ((amplitudes), (periods), (phases))
    per axis as a pair for x and y, in pixels; ``roll``: the same in radians; ``tilt``: (x and y
    projective amplitudes in 1/px, period, phase).
    """
    cx, cy = (width - 1) / 2, (height - 1) / 2
    scale = math.exp(periodic(*zoom, t))
    angle = periodic(*roll, t) if roll is not None else 0.0
    dx, dy = (periodic(*shake[0], t), periodic(*shake[1], t)) if shake is not None else (0.0, 0.0)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    similarity = np.array([[cos, -sin, cx + dx - cos * cx + sin * cy],
                           [sin, cos, cy + dy - sin * cx - cos * cy],
                           [0.0, 0.0, 1.0]])
    px, py, period, phase = tilt
    wave = math.sin(2 * np.pi * t / period + phase)
    projective = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [px * wave, py * math.cos(2 * np.pi * t / period + phase),
                                                              1.0]])
    centred = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    back = np.array([[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]])
    tilted = back @ projective @ centred
    tilted /= tilted[2, 2]
    return tilted @ similarity


def apply_homography(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through a 3x3 homography."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mapped = points @ matrix[:2, :2].T + matrix[:2, 2]
    return mapped / (points @ matrix[2, :2] + matrix[2, 2])[:, None]


@functools.lru_cache(maxsize=64)
def _line_kernel(length: int, angle_deg: int) -> np.ndarray:
    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), np.float32)
    centre = (size - 1) / 2
    dx, dy = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    half = (length - 1) / 2
    cv2.line(kernel, (round((centre - half * dx) * 16), round((centre - half * dy) * 16)),
             (round((centre + half * dx) * 16), round((centre + half * dy) * 16)), 1.0, 1, cv2.LINE_AA, shift=4)
    return kernel / kernel.sum()


def motion_blur(image: np.ndarray, dx: float, dy: float, max_length: int = 25) -> np.ndarray:
    """``image`` smeared along the motion ``(dx, dy)`` pixels during the exposure (unchanged below
    two pixels). Works on uint8 images and float masks alike."""
    length = min(max_length, int(round(math.hypot(dx, dy))))
    if length < 2:
        return image
    kernel = _line_kernel(length, int(round(math.degrees(math.atan2(dy, dx)))) % 180)
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=32)
def _unit_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return x, y


def deformation_maps(height: int, width: int, amplitude: float, wavelength: float, phase: float):
    """``cv2.remap`` maps bending a (height, width) texture: each row is shifted sideways and each
    column up/down by a sine of ``amplitude`` (fraction of the side) travelling with ``phase``."""
    x, y = _unit_grid(height, width)
    map_x = x + np.float32(amplitude * width) * np.sin(np.float32(2 * np.pi / wavelength) * y / height + phase)
    map_y = y + np.float32(amplitude * height) * np.sin(np.float32(2 * np.pi / wavelength) * x / width + 1.7 * phase)
    return map_x, map_y


def deform(image: np.ndarray, maps) -> np.ndarray:
    """``image`` remapped through :func:`deformation_maps` (outside: transparent/zero)."""
    return cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def illumination_gain(width: int, height: int, t: float, drift, colour, light) -> np.ndarray:
    """(height, width, 3) float32 gain at frame ``t``.

    ``drift``: (log-gain amplitude, period, phase) of the overall brightness; ``colour``: per-channel
    log-gain amplitudes, sharing the drift's period, with their own phase; ``light``: (strength,
    direction in radians, speed in frames^-1, phase): a soft band of light and shade sweeping
    across the frame.
    """
    amplitude, period, phase = drift
    base = math.exp(periodic(amplitude, period, phase, t))
    tint = np.exp(np.asarray(colour[:3], dtype=np.float32) * math.sin(2 * np.pi * t / period + colour[3]))
    strength, direction, speed, light_phase = light
    small_w, small_h = 16, 12
    x, y = _unit_grid(small_h, small_w)
    along = (x / small_w - 0.5) * math.cos(direction) + (y / small_h - 0.5) * math.sin(direction)
    band = np.float32(strength) * np.sin(np.float32(2 * np.pi) * (along + np.float32(speed * t + light_phase)))
    small = np.exp(band)[:, :, None] * (base * tint)[None, None, :].astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def apply_gain(frame: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """uint8 ``frame`` x float ``gain`` (same shape), rounded and saturated."""
    return cv2.multiply(frame, gain, dtype=cv2.CV_8U)
