"""Where a tracked target is in 3D: a robust depth inside its box, back-projected through the camera's
intrinsics. ROS-free (the depth image is a numpy array, the intrinsics the row-major 3x3 ``K``).

Conventions: boxes are ``(x, y, w, h)`` pixels, top-left corner, in the colour image, which the depth
image is aligned to (same size). Positions are metres in the camera's optical frame: x right, y down,
z forward. Depth encodings: ``16UC1`` millimetres (0 = no depth), ``32FC1`` metres (0 or NaN = none).

Cost: only the central part of the box is read (a view, converted to metres on its own): nothing is
copied per frame beyond that patch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEPTH_SCALES = {'16UC1': 0.001, 'mono16': 0.001, '32FC1': 1.0}
"""Metres per stored unit, by ``sensor_msgs/Image`` encoding."""


@dataclass(frozen=True)
class DepthSettings:
    """``central_fraction``: the part of the box (each side) whose depths count, so the background
    around a target's edges does not; ``min_valid_fraction``: of that part, how much must hold a valid
    depth (inside ``min_range_m`` .. ``max_range_m``)."""

    min_range_m: float = 0.1
    max_range_m: float = 20.0
    central_fraction: float = 0.5
    min_valid_fraction: float = 0.2


@dataclass(frozen=True)
class TargetPosition:
    """The box centre at the target's depth (``x``, ``y``, ``z`` m); ``size``: the box's width and height
    at that depth and the spread of the valid depths (10th to 90th percentile) [m]."""

    x: float
    y: float
    z: float
    size: tuple[float, float, float]
    valid_fraction: float

    @property
    def distance_m(self) -> float:
        return math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)


@dataclass(frozen=True)
class NoPosition:
    """Why a track has no 3D position on this frame."""

    reason: str


def depth_scale(encoding: str) -> float:
    """Metres per unit of ``encoding``; ValueError naming the supported ones."""
    try:
        return DEPTH_SCALES[encoding]
    except KeyError:
        raise ValueError(f"depth encoding '{encoding}' is not supported (use 16UC1 in mm or 32FC1 in m)") from None


def _central_patch(depth: np.ndarray, box, fraction: float) -> np.ndarray:
    """A view of the central ``fraction`` of ``box`` (each side), clipped to the image."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    half_w, half_h = max(w * fraction / 2, 0.5), max(h * fraction / 2, 0.5)
    height, width = depth.shape[:2]
    left, right = max(0, int(math.floor(cx - half_w))), min(width, int(math.ceil(cx + half_w)))
    top, bottom = max(0, int(math.floor(cy - half_h))), min(height, int(math.ceil(cy + half_h)))
    return depth[top:bottom, left:right]


def target_position(depth: np.ndarray, scale: float, box, k, settings: DepthSettings = DepthSettings()
                    ) -> TargetPosition | NoPosition:
    """The 3D position of the target in ``box`` from the aligned ``depth`` image (stored units times
    ``scale`` = metres) and the intrinsics ``k`` (row-major 3x3, as CameraInfo.k)."""
    fx, fy, cx, cy = float(k[0]), float(k[4]), float(k[2]), float(k[5])
    if not (fx > 0 and fy > 0):
        return NoPosition('the camera intrinsics have no focal length (CameraInfo.k is zero)')
    patch = _central_patch(depth, box, settings.central_fraction)
    if patch.size == 0:
        return NoPosition('the box is outside the depth image')
    metres = patch.astype(np.float32) * np.float32(scale)
    valid = metres[np.isfinite(metres) & (metres >= settings.min_range_m) & (metres <= settings.max_range_m)]
    valid_fraction = valid.size / patch.size
    if valid_fraction < settings.min_valid_fraction:
        return NoPosition(f'too few valid depths in the box ({valid_fraction:.0%} < '
                          f'{settings.min_valid_fraction:.0%}; range {settings.min_range_m:g}..'
                          f'{settings.max_range_m:g} m)')
    z = float(np.median(valid))
    low, high = np.percentile(valid, (10, 90))
    x, y, w, h = box
    u, v = x + w / 2, y + h / 2
    return TargetPosition(x=(u - cx) * z / fx, y=(v - cy) * z / fy, z=z,
                          size=(w * z / fx, h * z / fy, float(high - low)), valid_fraction=valid_fraction)
