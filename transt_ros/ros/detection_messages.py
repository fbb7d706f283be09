"""The tracker's vision_msgs/Detection2D: one home for how a tracked box becomes a message.

vision_msgs 4.x convention: ``header`` is the source image's header; ``bbox.center.position`` is
the box centre in pixels, ``bbox.size_x``/``size_y`` its size; one hypothesis with ``class_id``
and ``score``; ``id`` is the track id. Boxes are ``(x, y, w, h)``, top-left corner, pixels.
"""
from __future__ import annotations

from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, ObjectHypothesisWithPose

from ..tracking.box_limits import finite_result


def detection_message(header: Header, box_xywh, score: float, class_id: str, detection_id: str) -> Detection2D:
    """A Detection2D of a top-left ``(x, y, w, h)`` box; ValueError for a non-finite box or score."""
    if not finite_result(box_xywh, score):
        raise ValueError(f'non-finite detection (box {tuple(box_xywh)}, score {score}) is never published')
    x, y, width, height = (float(value) for value in box_xywh)
    detection = Detection2D(header=header, id=str(detection_id))
    detection.bbox.center.position.x = x + width / 2.0
    detection.bbox.center.position.y = y + height / 2.0
    detection.bbox.size_x, detection.bbox.size_y = width, height
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = str(class_id)
    hypothesis.hypothesis.score = float(score)
    detection.results = [hypothesis]
    return detection


def detection_box(msg: Detection2D) -> tuple[float, float, float, float]:
    """The top-left ``(x, y, w, h)`` box of a Detection2D."""
    width, height = msg.bbox.size_x, msg.bbox.size_y
    return (msg.bbox.center.position.x - width / 2.0, msg.bbox.center.position.y - height / 2.0, width, height)
