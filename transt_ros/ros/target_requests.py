"""The tracker node's target requests: ``~/set_target``, ``~/target``, ``~/targets``, rqt_image_view and
RViz clicks, ``~/clear_track`` and ``~/clear_target``. No ROS entities here: the node creates them and
calls these methods with each request's send time.

Requests apply in the order they were sent (:mod:`.request_order`). A new track's template and
catch-up run outside the frame step, one model call at a time (:attr:`TrackEngine.model_calls`, a fair
lock), so the other tracks wait at most one step. A catch-up stops as soon as the model is deactivated,
released or replaced.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..common.stamps import format_stamp
from ..tracking import TrackerInputError
from ..tracking.box_limits import is_clamped, limit_box
from ..tracking.track_registry import Track, track_one
from .frame_buffer import Frame, FrameBuffer
from .image_conversion import ImageConversionError
from .image_input import WARN_PERIOD_S, ImageInput
from .model_handle import ModelUnavailable
from .request_order import RequestOrder, Ticket
from .targeting import LOST, TRACKING, ClickBoxer, inside_image, project_point
from .track_engine import ModelChanged, TrackEngine
from .tracker_settings import TrackerSettings


class TargetRejected(Exception):
    """A target request that cannot be applied; the message is the reason given back."""


@dataclass
class TargetOutcome:
    """The answer to a target request: ``reason`` explains a rejection, or notes a clamped box or a
    cut-short catch-up of an accepted one."""

    accepted: bool
    reason: str = ''
    track_id: str = ''


@dataclass
class ClearOutcome:
    success: bool
    message: str


@dataclass
class _CaughtUp:
    box: tuple
    score: float
    finite: bool
    last_seq: int
    frames: int


class TargetRequests:
    def __init__(self, engine: TrackEngine, frames: FrameBuffer, images: ImageInput,
                 settings: Callable[[], TrackerSettings], logger: Callable):
        self._engine, self._frames, self._images, self._settings, self._logger = (
            engine, frames, images, settings, logger)
        self.order = RequestOrder()
        self._clicks = ClickBoxer()
        self._click_track = ''  # the track the pending single click started (max_targets > 1)

    # ------------------------------------------------------------ set a target

    def set_target(self, box, stamp_ns: int, source: str, sent_ns: int = 0, track_id: str = '',
                   click: tuple[float, float] | None = None) -> TargetOutcome:
        """A rejection changes nothing."""
        ticket = self.order.take(sent_ns, source)
        try:
            track, note = self._start_track(box, stamp_ns, ticket, track_id, click)
        except TargetRejected as error:
            self._logger().warning(f'target from {source} rejected: {error}', throttle_duration_sec=1.0)
            return TargetOutcome(False, str(error))
        except Exception as error:  # never let a request take the node down
            self._logger().error(f'target from {source} failed: {type(error).__name__}: {error}')
            return TargetOutcome(False, f'internal error: {type(error).__name__}: {error}')
        finally:
            self.order.done(ticket)
        x, y, width, height = box
        self._logger().info(
            f'track {track.track_id} from {source}: box ({x:.1f}, {y:.1f}, {width:.1f}, {height:.1f}) on frame '
            f"{format_stamp(stamp_ns) if stamp_ns else 'newest'}, caught up {track.frame_count} buffered frames"
            f"{' (re-initialised)' if track_id == track.track_id else ''}{'; ' + note if note else ''}")
        return TargetOutcome(True, note, track.track_id)

    def _check_not_overtaken(self, ticket: Ticket, track_id: str) -> None:
        later = self.order.overtaking(ticket, track_id, self._engine.one_target)
        if later is not None:
            raise TargetRejected(f'not applied: overtaken by a request sent later ({later.source}), which was '
                                 'applied first; requests apply in the order they were sent')

    def _full_reason(self) -> str:
        return (f'{len(self._engine.registry)} tracks exist (max_targets {self._engine.max_targets}): clear one '
                'with ~/clear_track, or re-initialise one by its track_id')

    def _track_to_set(self, track_id: str) -> str:
        """The live track a request re-initialises ('' : a new track); raises TargetRejected when the
        request cannot be applied (unknown id or no room, above one target)."""
        with self._engine.lock:
            registry = self._engine.registry
            if track_id and track_id in registry:
                return track_id
            if self._engine.one_target:
                return ''  # one target: a new target (also of an unknown id) replaces the current one
            if track_id:
                live = ', '.join(track.track_id for track in registry.tracks()) or 'none'
                raise TargetRejected(f"no live track '{track_id}' (live tracks: {live}); an empty track_id starts "
                                     'a new track')
            if registry.full:
                raise TargetRejected(self._full_reason())
            return ''

    def _start_frame(self, stamp_ns: int) -> tuple[Frame, list[Frame]]:
        """The frame with ``stamp_ns`` (0: the newest) and every buffered frame."""
        frames = self._frames.frames()
        if not frames:
            raise TargetRejected(f"no image received yet on '{self._images.topic}'")
        if stamp_ns == 0:
            return frames[-1], frames
        matches = [frame for frame in frames if frame.stamp_ns == stamp_ns]
        if not matches:
            raise TargetRejected(
                f'no buffered frame with stamp {format_stamp(stamp_ns)}: the buffer holds {len(frames)} frames '
                f'stamped {format_stamp(frames[0].stamp_ns)} .. {format_stamp(frames[-1].stamp_ns)}')
        return matches[-1], frames

    def _start_track(self, box, stamp_ns: int, ticket: Ticket, track_id: str = '',
                     click: tuple[float, float] | None = None) -> tuple[Track, str]:
        """Initialise a target on the frame with ``stamp_ns`` (0: the newest), catch up through the
        buffered frames after it, then make it a track -> (track, note for the reply)."""
        handle = self._engine.handle
        if not handle.active:
            raise TargetRejected(f'model not active: {handle.describe()}')
        start, frames = self._start_frame(stamp_ns)
        try:
            rgb = self._images.to_rgb(start.msg)
        except ImageConversionError as error:
            raise TargetRejected(f'the frame stamped {format_stamp(start.stamp_ns)} is unusable: {error}') from None
        height, width = rgb.shape[:2]
        if click is not None and not inside_image(*click, width, height):
            raise TargetRejected(f'click ({click[0]:.1f}, {click[1]:.1f}) is outside the {width}x{height} image')
        reinitialised = self._track_to_set(track_id)
        settings = self._settings()
        try:
            limited = limit_box(box, height, width)
            tracker, generation = self._engine.tracker(settings.window_influence, settings.reacquire_params())
        except (TrackerInputError, ModelUnavailable) as error:
            raise TargetRejected(str(error)) from None
        notes = []
        if is_clamped(box, limited):
            x, y, w, h = limited
            notes.append(f'box clamped to the {width}x{height} image: ({x:.1f}, {y:.1f}, {w:.1f}, {h:.1f})')
        target = self._engine.model_calls.run(tracker.new_target, rgb, limited)
        caught = self._catch_up(tracker, target, generation, limited, start,
                                [frame for frame in frames if frame.seq > start.seq], ticket, reinitialised,
                                settings.catch_up_timeout, notes)
        return self._commit(ticket, reinitialised, target, generation, caught), '; '.join(notes)

    def _catch_up(self, tracker, target, generation: int, box, start: Frame, later: list[Frame], ticket: Ticket,
                  reinitialised: str, timeout_s: float, notes: list[str]) -> _CaughtUp:
        """Track the new target through the buffered frames after its start frame (at most ``timeout_s``)."""
        caught = _CaughtUp(tuple(box), 1.0, True, start.seq, 0)
        deadline = time.monotonic() + timeout_s
        for frame in later:
            self._check_not_overtaken(ticket, reinitialised)
            self._check_model(generation)
            if time.monotonic() > deadline:
                notes.append(f'caught up {caught.frames} of {len(later)} buffered frames: cut short after '
                             f'{timeout_s:.1f} s (catch_up_timeout)')
                break
            try:
                frame_rgb = self._images.to_rgb(frame.msg)
            except ImageConversionError:
                continue
            # one step at a time (on the device thread on CUDA): the frame step of the other tracks goes on between
            result_box, result_score, caught.finite = self._engine.model_calls.run(
                self._checked_step, generation, tracker, target, frame_rgb)
            caught.last_seq, caught.frames = frame.seq, caught.frames + 1
            if caught.finite:
                caught.box, caught.score = tuple(result_box), result_score
        return caught

    def _checked_step(self, generation: int, tracker, target, frame_rgb):
        self._check_model(generation)  # in turn: the model cannot change between the check and the step
        return track_one(tracker, target, frame_rgb)

    def _check_model(self, generation: int) -> None:
        try:
            self._engine.check_model(generation)
        except ModelChanged as error:
            raise TargetRejected(str(error)) from None

    def _commit(self, ticket: Ticket, reinitialised: str, target, generation: int, caught: _CaughtUp) -> Track:
        """Make the caught-up target a track, unless a request sent later was applied meanwhile."""
        engine = self._engine
        with engine.lock:
            self._check_not_overtaken(ticket, reinitialised)
            self._check_model(generation)
            registry = engine.registry
            if reinitialised and reinitialised not in registry:
                raise TargetRejected(f'track {reinitialised} no longer exists (cleared, or dropped after '
                                     'lost_track_timeout): not re-initialised')
            if not reinitialised and engine.one_target:
                for replaced in registry.clear():
                    self.order.record_change(ticket, replaced.track_id)
            elif not reinitialised and registry.full:
                raise TargetRejected(self._full_reason())
            new_id = reinitialised or registry.new_id()
            track = Track(new_id, target, generation, caught.last_seq, caught.box, caught.score,
                          frame_count=caught.frames)
            track.set_state(TRACKING if caught.finite else LOST, time.monotonic())
            registry.put(track)
            self.order.record_change(Ticket(ticket.sent_ns, ticket.arrival, f'{ticket.source}, track {new_id}'),
                                     new_id)
            self.order.forget({item.track_id for item in registry.tracks()})
            return track

    # ------------------------------------------------------------ clicks

    def click(self, u: float, v: float, source: str, sent_ns: int = 0) -> TargetOutcome:
        """A single click sets a square box; a second click within ``double_click_timeout`` the box by
        the corners. Above one target a single click starts a new track and the corner box
        re-initialises that track."""
        settings = self._settings()
        box, kind = self._clicks.click(u, v, time.monotonic(), settings.click_box_size,
                                       settings.double_click_timeout)
        several = not self._engine.one_target
        track_id = self._click_track if several and kind == 'corners' and self._click_track in self._engine.registry \
            else ''
        outcome = self.set_target(box, 0, f'{source} ({kind})', sent_ns, track_id, click=(u, v))
        if several:
            self._click_track = outcome.track_id if outcome.accepted and kind == 'single' else ''
        return outcome

    def clicked_point(self, frame_id: str, x: float, y: float, z: float, sent_ns: int = 0) -> None:
        """An RViz "Publish Point" click: projected into the image with the camera's intrinsics."""
        camera_frame, info = self._frames.camera_frame, self._images.camera_info
        if not camera_frame or frame_id != camera_frame:
            self._logger().warning(
                f"ignored a clicked point in frame '{frame_id}': only points in the camera frame "
                f"('{camera_frame or 'no image yet'}', the images' frame_id) can be projected",
                throttle_duration_sec=WARN_PERIOD_S)
            return
        pixel = project_point(x, y, z, info.k, info.p) if info else None
        if pixel is None:
            reason = 'no CameraInfo received yet' if info is None else 'point behind the camera or no intrinsics'
            self._logger().warning(f'ignored a clicked point: {reason}', throttle_duration_sec=WARN_PERIOD_S)
            return
        self.click(*pixel, 'RViz click', sent_ns)

    # ------------------------------------------------------------ clear

    def clear_all(self, sent_ns: int = 0) -> ClearOutcome:
        """Clear every track changed by a request sent before this one."""
        ticket = self.order.take(sent_ns, '~/clear_target')
        with self._engine.lock:
            registry = self._engine.registry
            kept = [track for track in registry.tracks() if self.order.last_change_of(track.track_id) > ticket]
            cleared = [registry.remove(track.track_id) for track in registry.tracks() if track not in kept]
            self.order.record_clear_all(ticket, [track.track_id for track in cleared])
        self.order.done(ticket)
        cancelled = self.order.earlier_in_progress(ticket)
        self._clicks.reset()
        ids = [track.track_id for track in cleared]
        message = (f"track{'s' if len(ids) > 1 else ''} {', '.join(ids)} cleared" if ids else 'no target was set')
        if kept:
            message += (f"; kept track{'s' if len(kept) > 1 else ''} {', '.join(t.track_id for t in kept)}, set by "
                        'a request sent after this one')
        if cancelled:
            message += f'; {cancelled} earlier target request(s) still in progress will not be applied'
        self._logger().info(message)
        return ClearOutcome(True, message)

    def clear_track(self, track_id: str, sent_ns: int = 0) -> ClearOutcome:
        ticket = self.order.take(sent_ns, f'~/clear_track {track_id}')
        with self._engine.lock:
            registry = self._engine.registry
            later = self.order.last_change_of(track_id)
            if track_id in registry and later > ticket:
                reason = (f'not applied: track {track_id} was changed by a request sent later ({later.source}); '
                          'requests apply in the order they were sent')
                track = None
            else:
                track = registry.remove(track_id)
                reason = ''
                if track is not None:
                    self.order.record_change(ticket, track_id)
            live = ', '.join(other.track_id for other in registry.tracks()) or 'none'
        self.order.done(ticket)
        if track is None:
            return ClearOutcome(False, reason or f"no live track '{track_id}' (live tracks: {live})")
        self._logger().info(f'track {track.track_id} cleared (~/clear_track); live tracks: {live}')
        return ClearOutcome(True, '')
