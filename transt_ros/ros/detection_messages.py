"""The tracker's vision_msgs/Detection2D: a tracked box becomes a message, never with NaN.

vision_msgs 4.x convention: ``header`` is the source image's header; ``bbox.center.position`` is
the box centre in pixels, ``bbox.size_x``/``size_y`` its size; one hypothesis with ``class_id``
and ``score``; ``id`` is the track id. Boxes are ``(x, y, w, h)``, top-left corner, pixels.
"""
from __future__ import annotations

from std_msgs.msg import Header
from vision_msgs.msg import Detection2D

from ..common import detections
from ..common.detections import detection_box as detection_box  # re-exported
from ..tracking.box_limits import finite_result


def detection_message(header: Header, box_xywh, score: float, class_id: str, detection_id: str) -> Detection2D:
    """A Detection2D of a top-left ``(x, y, w, h)`` box; ValueError for a non-finite box or score."""
    if not finite_result(box_xywh, score):
        raise ValueError(f'non-finite detection (box {tuple(box_xywh)}, score {score}) is never published')
    return detections.detection_from_box(header, box_xywh, score, class_id, detection_id)
