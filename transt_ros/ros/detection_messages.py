"""The tracker's vision_msgs/Detection2D and Detection3D: a tracked box (and its 3D position) becomes a
message, never with NaN.

vision_msgs 4.x convention: ``header`` is the source image's header; ``bbox.center.position`` is
the box centre in pixels, ``bbox.size_x``/``size_y`` its size; one hypothesis with ``class_id``
and ``score``; ``id`` is the track id. Boxes are ``(x, y, w, h)``, top-left corner, pixels.
"""
from __future__ import annotations

from geometry_msgs.msg import Point, PointStamped
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection3D, ObjectHypothesisWithPose

from ..common import detections
from ..common.detections import detection_box as detection_box  # re-exported
from ..tracking.box_limits import finite_result
from ..tracking.depth_position import TargetPosition


def detection_message(header: Header, box_xywh, score: float, class_id: str, detection_id: str) -> Detection2D:
    """A Detection2D of a top-left ``(x, y, w, h)`` box; ValueError for a non-finite box or score."""
    if not finite_result(box_xywh, score):
        raise ValueError(f'non-finite detection (box {tuple(box_xywh)}, score {score}) is never published')
    return detections.detection_from_box(header, box_xywh, score, class_id, detection_id)


def detection_3d_message(header: Header, position: TargetPosition, score: float, class_id: str,
                         detection_id: str) -> Detection3D:
    """A Detection3D: ``bbox.center`` the target's position [m] in the camera's optical frame (the
    header's ``frame_id``), identity orientation; ``bbox.size`` the box's width and height at that
    depth and the depth spread; one hypothesis (class, score, the same position)."""
    detection = Detection3D(header=header, id=str(detection_id))
    centre = Point(x=float(position.x), y=float(position.y), z=float(position.z))
    detection.bbox.center.position = centre
    detection.bbox.center.orientation.w = 1.0
    detection.bbox.size.x, detection.bbox.size.y, detection.bbox.size.z = (float(value) for value in position.size)
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = str(class_id)
    hypothesis.hypothesis.score = float(score)
    hypothesis.pose.pose.position = centre
    hypothesis.pose.pose.orientation.w = 1.0
    detection.results = [hypothesis]
    return detection


def target_point(header: Header, position: TargetPosition) -> PointStamped:
    return PointStamped(header=header, point=Point(x=float(position.x), y=float(position.y), z=float(position.z)))
