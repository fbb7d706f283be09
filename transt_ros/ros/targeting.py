"""ROS-free pieces of the tracker node: clicks -> boxes, point projection (the states and the lost-target
hysteresis live in :mod:`transt_ros.tracking.track_registry`).

Boxes are (x, y, w, h) in pixels, top-left corner; points are pixel (u, v), x right, y down.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..tracking.track_registry import IDLE, INACTIVE, LOST, STATE_NAMES, TRACKING, next_state

__all__ = ['IDLE', 'INACTIVE', 'LOST', 'STATE_NAMES', 'TRACKING', 'ClickBoxer', 'centred_box', 'corner_box',
           'inside_image', 'next_state', 'project_point']


def centred_box(u: float, v: float, side: float) -> tuple[float, float, float, float]:
    return (u - side / 2, v - side / 2, float(side), float(side))


def corner_box(first: tuple[float, float], second: tuple[float, float]) -> tuple[float, float, float, float]:
    (u0, v0), (u1, v1) = first, second
    return (min(u0, u1), min(v0, v1), abs(u1 - u0), abs(v1 - v0))


@dataclass
class ClickBoxer:
    """Clicks -> boxes: a click gives a square box centred on it; a second click within the timeout
    gives the box with the two clicks as opposite corners (then the pair starts over).

    A second click closer than ``min_side`` pixels to the first on either axis counts as a new
    single click.
    """

    min_side: float = 4.0
    _pending: tuple[float, float, float] | None = None

    def click(self, u: float, v: float, time_s: float, box_side: float, timeout_s: float
              ) -> tuple[tuple[float, float, float, float], str]:
        """-> (box, 'single' | 'corners')."""
        pending, self._pending = self._pending, None
        if pending is not None and 0.0 <= time_s - pending[2] <= timeout_s:
            box = corner_box(pending[:2], (u, v))
            if box[2] >= self.min_side and box[3] >= self.min_side:
                return box, 'corners'
        self._pending = (u, v, time_s)
        return centred_box(u, v, box_side), 'single'

    def reset(self) -> None:
        self._pending = None


def project_point(x: float, y: float, z: float, k, p) -> tuple[float, float] | None:
    """A 3D point in the camera's optical frame (z forward) -> pixel (u, v), or None behind the camera.

    Uses the intrinsic matrix ``k`` (CameraInfo.k, 9 values, row-major; lens distortion ignored),
    or the projection matrix ``p`` (CameraInfo.p, 12 values) when ``k`` is all zero.
    """
    if not all(math.isfinite(value) for value in (x, y, z)) or z <= 0:
        return None
    k = [float(value) for value in k]
    if len(k) == 9 and k[0] != 0.0 and k[4] != 0.0:
        return k[0] * x / z + k[1] * y / z + k[2], k[4] * y / z + k[5]
    p = [float(value) for value in p]
    if len(p) == 12 and p[0] != 0.0 and p[5] != 0.0:
        w = p[8] * x + p[9] * y + p[10] * z + p[11]
        if w <= 0:
            return None
        return ((p[0] * x + p[1] * y + p[2] * z + p[3]) / w, (p[4] * x + p[5] * y + p[6] * z + p[7]) / w)
    return None


def inside_image(u: float, v: float, width: int, height: int) -> bool:
    return 0.0 <= u < width and 0.0 <= v < height
