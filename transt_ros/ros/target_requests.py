"""The tracker node's target requests, as :class:`TargetRequestsMixin` (mixed into
:class:`~transt_ros.ros.tracker_node.TrackerNode`): ``~/set_target``, ``~/target``, ``~/targets``,
rqt_image_view and RViz clicks, ``~/clear_track`` and ``~/clear_target``.

Target requests apply in the order they arrive: each takes a ticket on arrival, and a request that
finishes after a later one was applied (a slow stamped SetTarget overtaken by a clear_target or a
newer target; above one target: a later change of the same track, or a clear_target) is answered as
not applied. A new track's template and catch-up run outside the frame step, one model call at a
time (a fair lock), so the other tracks wait at most one step.

Relies on these attributes of the node (set in ``TrackerNode.__init__``): ``model_handle``,
``_settings`` (``catch_up_timeout``, ``click_box_size``, ``double_click_timeout``), ``_max_targets``,
``_registry``, ``_track_lock``, ``_request_lock``, ``_request_counter``, ``_requests_in_progress``,
``_applied_request``, ``_cleared_all``, ``_track_applied``, ``_click_track``, ``_clicks``,
``_frames_lock``, ``_buffer``, ``_model_turn``, ``_camera_frame``, ``_camera_info``; and on its methods
``_engine_for_tracks()``, ``_to_rgb()``, ``_image_topic_name`` (:class:`~.image_input.ImageInputMixin`)
and ``_live_logger()``.
"""
from __future__ import annotations

import time

from geometry_msgs.msg import Point, PointStamped
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray

from transt_ros.srv import ClearTrack, SetTarget

from ..tracking import TrackerInputError
from ..tracking.box_limits import is_clamped, limit_box
from ..tracking.track_registry import MAX_TARGETS_LIMIT, Track, track_one
from .detection_messages import detection_box
from .image_conversion import ImageConversionError
from .image_input import WARN_PERIOD_S, format_stamp, stamp_ns
from .model_handle import ModelUnavailable
from .targeting import LOST, TRACKING, inside_image, project_point


class TargetRejected(Exception):
    """A target request that cannot be applied; the message is the reason given back."""


class TargetRequestsMixin:
    """The target requests of :class:`~transt_ros.ros.tracker_node.TrackerNode`, applied in order of arrival."""

    def _take_ticket(self) -> int:
        """A request's place in the order of arrival."""
        with self._request_lock:
            self._request_counter += 1
            self._requests_in_progress.add(self._request_counter)
            return self._request_counter

    def _done(self, ticket: int) -> None:
        with self._request_lock:
            self._requests_in_progress.discard(ticket)

    def _check_not_overtaken(self, ticket: int, track_id: str = '') -> None:
        """Raise TargetRejected when a later request was applied first: with one target any later
        change; above one a clear_target, or a later change of ``track_id`` (a new track: only a clear_target)."""
        applied = [self._cleared_all]
        if self._max_targets == 1:
            applied.append(self._applied_request)
        elif track_id:
            applied.append(self._track_applied.get(track_id, (0, '')))
        applied_ticket, applied_source = max(applied)
        if applied_ticket > ticket:
            raise TargetRejected(f'not applied: overtaken by a later request ({applied_source}), which was applied '
                                 'first; requests apply in the order they arrive')

    def _full_reason(self) -> str:
        return (f'{len(self._registry)} tracks exist (max_targets {self._max_targets}): clear one with '
                '~/clear_track, or re-initialise one by its track_id')

    def _track_to_set(self, track_id: str) -> str:
        """The live track a request re-initialises ('' : a new track); raises TargetRejected when the
        request cannot be applied (unknown id or no room, above one target)."""
        with self._track_lock:
            if track_id and track_id in self._registry:
                return track_id
            if self._max_targets == 1:
                return ''  # one target: a new target (also of an unknown id) replaces the current one
            if track_id:
                live = ', '.join(track.track_id for track in self._registry.tracks()) or 'none'
                raise TargetRejected(f"no live track '{track_id}' (live tracks: {live}); an empty track_id starts "
                                     'a new track')
            if self._registry.full:
                raise TargetRejected(self._full_reason())
            return ''

    def _start_track(self, box, stamp: int, ticket: int, source: str, track_id: str = '',
                     click: tuple[float, float] | None = None) -> tuple[Track, str]:
        """Initialise a target on the frame with ``stamp`` (0: the newest), catch up through the
        buffered frames after it (at most ``catch_up_timeout``), then make it a track (new, replacing
        the current one with one target, or re-initialising ``track_id``) unless a later request was
        applied meanwhile. -> (track, note for the reply). Raises TargetRejected."""
        if not self.model_handle.active:
            raise TargetRejected(f'model not active: {self.model_handle.describe()}')
        with self._frames_lock:
            frames = list(self._buffer)
        if not frames:
            raise TargetRejected(f"no image received yet on '{self._image_topic_name}'")
        if stamp == 0:
            start = frames[-1]
        else:
            matches = [frame for frame in frames if frame.stamp_ns == stamp]
            if not matches:
                raise TargetRejected(
                    f'no buffered frame with stamp {format_stamp(stamp)}: the buffer holds {len(frames)} frames '
                    f'stamped {format_stamp(frames[0].stamp_ns)} .. {format_stamp(frames[-1].stamp_ns)}')
            start = matches[-1]
        try:
            rgb = self._to_rgb(start.msg)
        except ImageConversionError as error:
            raise TargetRejected(f'the frame stamped {format_stamp(start.stamp_ns)} is unusable: {error}') from None
        height, width = rgb.shape[:2]
        if click is not None and not inside_image(*click, width, height):
            raise TargetRejected(f'click ({click[0]:.1f}, {click[1]:.1f}) is outside the {width}x{height} image')
        reinitialised = self._track_to_set(track_id)
        try:
            limited = limit_box(box, height, width)
            engine, generation = self._engine_for_tracks()
        except (TrackerInputError, ModelUnavailable) as error:
            raise TargetRejected(str(error)) from None
        notes = []
        if is_clamped(box, limited):
            x, y, w, h = limited
            notes.append(f'box clamped to the {width}x{height} image: ({x:.1f}, {y:.1f}, {w:.1f}, {h:.1f})')
        with self._model_turn:
            target = engine.new_target(rgb, limited)
        box, score, finite = limited, 1.0, True
        later = [frame for frame in frames if frame.seq > start.seq]
        last_seq, caught_up = start.seq, 0
        deadline = time.monotonic() + self._settings['catch_up_timeout']
        for frame in later:
            self._check_not_overtaken(ticket, reinitialised)
            if time.monotonic() > deadline:
                notes.append(f'caught up {caught_up} of {len(later)} buffered frames: cut short after '
                             f"{self._settings['catch_up_timeout']:.1f} s (catch_up_timeout)")
                break
            try:
                frame_rgb = self._to_rgb(frame.msg)
            except ImageConversionError:
                continue
            with self._model_turn:  # one step at a time: the frame step of the other tracks goes on between
                result_box, result_score, finite = track_one(engine, target, frame_rgb)
            last_seq, caught_up = frame.seq, caught_up + 1
            if finite:
                box, score = result_box, result_score
        with self._track_lock:
            self._check_not_overtaken(ticket, reinitialised)
            if generation != self.model_handle.generation:
                raise TargetRejected('the model was reloaded while the target was being set; try again')
            registry = self._registry
            if reinitialised and reinitialised not in registry:
                raise TargetRejected(f'track {reinitialised} no longer exists (cleared, or dropped after '
                                     'lost_track_timeout): not re-initialised')
            if not reinitialised and self._max_targets == 1:
                registry.clear()
            elif not reinitialised and registry.full:
                raise TargetRejected(self._full_reason())
            new_id = reinitialised or registry.new_id()
            track = Track(new_id, target, generation, last_seq, tuple(box), score, frame_count=caught_up)
            track.set_state(TRACKING if finite else LOST, time.monotonic())
            registry.put(track)
            applied = (ticket, f'{source}, track {new_id}')
            if len(self._track_applied) > 4 * MAX_TARGETS_LIMIT:  # keep the live tracks' entries only
                self._track_applied = {key: value for key, value in self._track_applied.items() if key in registry}
            self._applied_request = self._track_applied[new_id] = applied
            return track, '; '.join(notes)

    def _set_target(self, box, stamp: int, source: str, track_id: str = '', click=None) -> tuple[bool, str, str]:
        """-> (accepted, reason, track id); a rejection changes nothing. The reason of an accepted
        request notes a clamped box or a cut-short catch-up (else it is empty)."""
        ticket = self._take_ticket()
        try:
            track, note = self._start_track(box, stamp, ticket, source, track_id, click)
        except TargetRejected as error:
            self._live_logger().warning(f'target from {source} rejected: {error}', throttle_duration_sec=1.0)
            return False, str(error), ''
        except Exception as error:  # never let a request take the node down
            self._live_logger().error(f'target from {source} failed: {type(error).__name__}: {error}')
            return False, f'internal error: {type(error).__name__}: {error}', ''
        finally:
            self._done(ticket)
        x, y, width, height = box
        self._live_logger().info(
            f'track {track.track_id} from {source}: box ({x:.1f}, {y:.1f}, {width:.1f}, {height:.1f}) on frame '
            f"{format_stamp(stamp) if stamp else 'newest'}, caught up {track.frame_count} buffered frames"
            f"{' (re-initialised)' if track_id == track.track_id else ''}{'; ' + note if note else ''}")
        return True, note, track.track_id

    def _on_set_target(self, request: SetTarget.Request, response: SetTarget.Response) -> SetTarget.Response:
        box = (request.x, request.y, request.width, request.height)
        response.accepted, response.reason, response.track_id = self._set_target(
            box, stamp_ns(request.stamp), '~/set_target', request.track_id)
        return response

    def _on_target(self, msg: Detection2D) -> None:
        self._set_target(detection_box(msg), stamp_ns(msg.header.stamp), '~/target', msg.id)

    def _on_targets(self, msg: Detection2DArray) -> None:
        """Each detection as a ``~/target`` (its own stamp, else the array's)."""
        for detection in msg.detections:
            stamp = stamp_ns(detection.header.stamp) or stamp_ns(msg.header.stamp)
            self._set_target(detection_box(detection), stamp, '~/targets', detection.id)

    def _on_mouse_click(self, msg: Point) -> None:
        self._click(msg.x, msg.y, 'image click')

    def _on_clicked_point(self, msg: PointStamped) -> None:
        camera_frame, info = self._camera_frame, self._camera_info
        if not camera_frame or msg.header.frame_id != camera_frame:
            self._live_logger().warning(
                f"ignored a clicked point in frame '{msg.header.frame_id}': only points in the camera frame "
                f"('{camera_frame or 'no image yet'}', the images' frame_id) can be projected",
                throttle_duration_sec=WARN_PERIOD_S)
            return
        pixel = project_point(msg.point.x, msg.point.y, msg.point.z, info.k, info.p) if info else None
        if pixel is None:
            reason = 'no CameraInfo received yet' if info is None else 'point behind the camera or no intrinsics'
            self._live_logger().warning(f'ignored a clicked point: {reason}', throttle_duration_sec=WARN_PERIOD_S)
            return
        self._click(*pixel, 'RViz click')

    def _click(self, u: float, v: float, source: str) -> None:
        """A single click sets a square box; a second click within ``double_click_timeout`` the box by
        the corners. Above one target a single click starts a new track and the corner box
        re-initialises that track."""
        box, kind = self._clicks.click(u, v, time.monotonic(), self._settings['click_box_size'],
                                       self._settings['double_click_timeout'])
        several = self._max_targets > 1
        track_id = self._click_track if several and kind == 'corners' and self._click_track in self._registry else ''
        accepted, _, new_id = self._set_target(box, 0, f'{source} ({kind})', track_id, click=(u, v))
        if several:
            self._click_track = new_id if accepted and kind == 'single' else ''

    def _on_clear_target(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        ticket = self._take_ticket()
        with self._track_lock:
            cleared = self._registry.clear()
            self._applied_request = self._cleared_all = (ticket, '~/clear_target')
            self._track_applied.clear()
        with self._request_lock:
            self._requests_in_progress.discard(ticket)
            cancelled = sum(1 for other in self._requests_in_progress if other < ticket)
        self._clicks.reset()
        response.success = True
        ids = [track.track_id for track in cleared]
        response.message = (f"track{'s' if len(ids) > 1 else ''} {', '.join(ids)} cleared" if ids
                            else 'no target was set')
        if cancelled:
            response.message += f'; {cancelled} earlier target request(s) still in progress will not be applied'
        self._live_logger().info(response.message)
        return response

    def _on_clear_track(self, request: ClearTrack.Request, response: ClearTrack.Response) -> ClearTrack.Response:
        ticket = self._take_ticket()
        with self._track_lock:
            track = self._registry.remove(request.track_id)
            if track is not None:
                self._applied_request = self._track_applied[track.track_id] = (
                    ticket, f'~/clear_track {track.track_id}')
            live = ', '.join(other.track_id for other in self._registry.tracks()) or 'none'
        self._done(ticket)
        response.success = track is not None
        response.reason = '' if track else f"no live track '{request.track_id}' (live tracks: {live})"
        if track is not None:
            self._live_logger().info(f'track {track.track_id} cleared (~/clear_track); live tracks: {live}')
        return response
