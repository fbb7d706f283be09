"""The ROS-free TransT tracker."""
from .postprocess import PostprocessParams
from .tracker import Tracker, TrackerInputError, TrackResult

__all__ = ['PostprocessParams', 'Tracker', 'TrackerInputError', 'TrackResult']
