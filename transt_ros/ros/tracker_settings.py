"""The tracker node's run-time parameters (changeable with ``ros2 param set``), as one typed value.

The node keeps one frozen :class:`TrackerSettings` and swaps it whole on a change, so a callback that
reads ``settings()`` once sees one consistent set.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..tracking.depth_position import DepthSettings
from ..tracking.reacquire import ReacquireParams
from ..tracking.track_registry import Hysteresis


@dataclass(frozen=True)
class InputSettings:
    """What the image input reads of the node's run-time parameters."""

    max_image_pixels: int
    input_timeout: float


@dataclass(frozen=True)
class TrackerSettings:
    label: str
    lost_threshold: float
    recover_threshold: float
    lost_frames: int
    window_influence: float
    reacquire: bool
    reacquire_max_tiles: int
    click_box_size: float
    double_click_timeout: float
    max_image_pixels: int
    input_timeout: float
    catch_up_timeout: float
    lost_track_timeout: float
    depth_stamp_tolerance: float
    depth_min_range: float
    depth_max_range: float
    depth_min_valid_fraction: float

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in fields(cls))

    @classmethod
    def from_values(cls, values: dict) -> TrackerSettings:
        return cls(**{name: values[name] for name in cls.names()})

    def with_changes(self, changes: dict) -> TrackerSettings:
        return replace(self, **{name: value for name, value in changes.items() if name in self.names()})

    def problem(self) -> str | None:
        if self.depth_min_range >= self.depth_max_range:
            return f'depth_min_range ({self.depth_min_range}) must be below depth_max_range ({self.depth_max_range})'
        if self.lost_threshold > self.recover_threshold:
            return (f'lost_threshold ({self.lost_threshold}) must not exceed recover_threshold '
                    f'({self.recover_threshold})')
        return None

    def depth(self) -> DepthSettings:
        return DepthSettings(self.depth_min_range, self.depth_max_range,
                             min_valid_fraction=self.depth_min_valid_fraction)

    def reacquire_params(self) -> ReacquireParams | None:
        """The LOST tracks' wider search (None: ``reacquire`` off)."""
        return ReacquireParams(max_tiles=self.reacquire_max_tiles) if self.reacquire else None

    def hysteresis(self) -> Hysteresis:
        return Hysteresis(self.lost_threshold, self.recover_threshold, self.lost_frames)

    def input(self) -> InputSettings:
        return InputSettings(self.max_image_pixels, self.input_timeout)
