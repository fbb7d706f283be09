"""The ROS-free TransT tracker."""
from .postprocess import PostprocessParams
from .tracker import MultiTracker, TargetState, Tracker, TrackerInputError, TrackResult, prepare_model

__all__ = ['MultiTracker', 'PostprocessParams', 'TargetState', 'Tracker', 'TrackerInputError', 'TrackResult',
           'prepare_model']
