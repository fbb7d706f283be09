"""OpenCV trackers (CSRT, KCF, MIL) behind the project's tracker interface, for baselines.

Interface (same as ``transt_ros.tracking``): ``initialize(frame, box_xywh)`` then
``track(frame) -> result`` with ``result.box`` (``x, y, w, h`` floats, pixels, top-left) and
``result.score`` (float). Frames are RGB ``uint8`` ``(H, W, 3)``; OpenCV wants BGR.

OpenCV 4.5.1+ and 5.x expose these as ``cv2.TrackerCSRT.create()`` (also spelled
``cv2.TrackerCSRT_create``); the pre-4.5 API lives in ``cv2.legacy``. ``update`` returns
``(ok, box)`` with an integer box; OpenCV gives no confidence, so ``score`` is 1.0 when
``ok`` and 0.0 when the tracker reports failure. The box OpenCV returns on failure is
passed on unchanged: CSRT and KCF give ``(0, 0, 0, 0)``, which scores as a miss.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..tracking.tracker import TrackResult

OPENCV_TRACKER_CLASSES: dict[str, str] = {'csrt': 'TrackerCSRT', 'kcf': 'TrackerKCF', 'mil': 'TrackerMIL'}


def create_opencv_tracker(kind: str):
    """A fresh OpenCV tracker object of ``kind`` (``'csrt'``, ``'kcf'`` or ``'mil'``)."""
    if kind not in OPENCV_TRACKER_CLASSES:
        raise ValueError(f'unknown OpenCV tracker {kind!r}; known: {sorted(OPENCV_TRACKER_CLASSES)}')
    class_name = OPENCV_TRACKER_CLASSES[kind]
    tracker_class = getattr(cv2, class_name, None) or getattr(getattr(cv2, 'legacy', None), class_name, None)
    if tracker_class is None:
        raise RuntimeError(f'cv2.{class_name} is unavailable: install opencv-contrib-python')
    return tracker_class.create()


class OpenCVTracker:
    """Wraps an OpenCV single-object tracker; ``name`` is e.g. ``'csrt'``."""

    def __init__(self, kind: str = 'csrt'):
        self.name = kind
        self._kind = kind
        self._tracker = None

    def initialize(self, frame_rgb: np.ndarray, box_xywh) -> None:
        """Start on ``frame_rgb`` (``(H, W, 3)`` uint8 RGB) at ``box_xywh`` (pixels)."""
        self._tracker = create_opencv_tracker(self._kind)
        x, y, w, h = (int(round(float(v))) for v in box_xywh)
        self._tracker.init(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), (x, y, max(w, 1), max(h, 1)))

    def track(self, frame_rgb: np.ndarray) -> TrackResult:
        """Next frame; ``score`` 1.0 if OpenCV reports success, else 0.0."""
        if self._tracker is None:
            raise RuntimeError('track() called before initialize()')
        ok, box = self._tracker.update(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        x, y, w, h = (float(v) for v in box)
        return TrackResult((x, y, w, h), 1.0 if ok else 0.0)


def build_reference_tracker(kind: str, device: str | None = None) -> OpenCVTracker:
    """Factory for :func:`run_dataset.evaluate_sequences`; ``device`` is ignored (CPU only).

    Use ``functools.partial(build_reference_tracker, 'kcf')`` to get a picklable
    ``factory(device)`` for several worker processes.
    """
    return OpenCVTracker(kind)


def check_reference_names(names) -> list[str]:
    """The reference tracker names, checked before anything runs: known, each once."""
    names = list(names)
    unknown = [name for name in names if name not in OPENCV_TRACKER_CLASSES]
    if unknown:
        raise ValueError(f'unknown reference tracker(s) {", ".join(unknown)}; known: '
                         f'{", ".join(sorted(OPENCV_TRACKER_CLASSES))}')
    if len(set(names)) != len(names):
        raise ValueError(f'reference trackers named twice: {", ".join(names)}')
    return names
