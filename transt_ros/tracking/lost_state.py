"""When a target counts as LOST: the score hysteresis shared by the node's tracks and the re-acquisition."""
from __future__ import annotations

from dataclasses import dataclass

# The values of transt_ros/msg/TrackerStatus's state constants.
IDLE, TRACKING, LOST, INACTIVE = 0, 1, 2, 3
STATE_NAMES = {IDLE: 'IDLE', TRACKING: 'TRACKING', LOST: 'LOST', INACTIVE: 'INACTIVE'}


def next_state(state: int, score: float, low_count: int, lost_threshold: float, recover_threshold: float,
               lost_frames: int) -> tuple[int, int]:
    """One frame of the lost-target hysteresis -> (state, consecutive low frames).

    TRACKING -> LOST after ``lost_frames`` consecutive scores below ``lost_threshold``;
    LOST -> TRACKING on the first score at or above ``recover_threshold``.
    """
    low_count = low_count + 1 if score < lost_threshold else 0
    if state == TRACKING and low_count >= lost_frames:
        return LOST, low_count
    if state == LOST and score >= recover_threshold:
        return TRACKING, low_count
    return state, low_count


@dataclass(frozen=True)
class Hysteresis:
    """When a track becomes LOST and TRACKING again (see :func:`next_state`); scores are the raw
    target probability in [0, 1]."""

    lost_threshold: float = 0.3
    recover_threshold: float = 0.5
    lost_frames: int = 5
