"""Boxes as vision_msgs/Detection2D and back: one home for the tracker node and the bags.

vision_msgs 4.x convention: ``bbox.center.position`` is the box centre in pixels and
``bbox.size_x``/``size_y`` its size; one hypothesis carries ``class_id`` and ``score``; ``id`` is the
track id. Boxes here are ``(x, y, w, h)`` in pixels, top-left corner. Needs the vision_msgs
Python message package (no rclpy).
"""
from __future__ import annotations

from vision_msgs.msg import Detection2D, ObjectHypothesisWithPose


def detection_from_box(header, box_xywh, score: float, class_id: str, detection_id: str) -> Detection2D:
    """A Detection2D of a top-left ``(x, y, w, h)`` box with one hypothesis; ``header`` is copied in.

    No check: the tracker's outputs go through ``ros.detection_messages.detection_message`` (never
    NaN), a bag's through ``bags.messages.stamped_detection``."""
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


def detection_score(msg: Detection2D) -> float:
    """The first hypothesis' score, NaN when there is none."""
    return float(msg.results[0].hypothesis.score) if len(msg.results) else float('nan')
