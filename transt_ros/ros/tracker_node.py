"""``transt_tracker``: images in, the tracked targets' boxes out.

Only the newest frame is ever tracked: the image callback puts each frame into a one-frame slot
(replacing an unprocessed one, counted as skipped) and into a ring buffer of recent frames, then
wakes the processing callback (own mutually exclusive callback group), which takes whatever is
newest. Services, clicks and parameters run in other callback groups and stay answerable while
a frame is tracked.

Up to ``max_targets`` tracks (default 1: a new target replaces the current one), all tracked with
one batched forward per frame (:class:`~transt_ros.tracking.track_registry.TrackRegistry`), the frame
converted once. Publishes ``~/detection`` (vision_msgs/Detection2D, header = the image header; one
message per live track and frame), ``~/detections`` (Detection2DArray: one Detection2D per live track,
empty while no target is set), ``~/status`` (transt_ros/TrackerStatus, with every track),
``/diagnostics`` and ``~/overlay`` (rgb8, drawn only while someone subscribes).
Targets come from ``~/set_target``, ``~/target``, ``~/targets``, rqt_image_view and RViz clicks;
``~/clear_track`` forgets one track, ``~/clear_target`` all of them. The model comes from the shared
:class:`ModelHandle` (transt_model_manager).

Target requests apply in the order they arrive: each takes a ticket on arrival, and a request that
finishes after a later one was applied (a slow stamped SetTarget overtaken by a clear_target or a
newer target; above one target: a later change of the same track, or a clear_target) is answered as
not applied. A new track's template and catch-up run outside the frame step, one model call at a
time (a fair lock), so the other tracks wait at most one step. Frames the node can see going missing
(DDS reports lost samples, a publisher with incompatible QoS, a publisher present and no frame for
``input_timeout``) are reported in the log (throttled) and in /diagnostics.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PointStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray

from transt_ros.msg import TrackerStatus
from transt_ros.srv import ClearTrack, SetTarget

from ..common.ros_environment import TRACKER_NODE_NAME
from ..tracking import Tracker, TrackerInputError
from ..tracking.box_limits import BoxLimitError, is_clamped, limit_box
from ..tracking.track_registry import MAX_TARGETS_LIMIT, FifoLock, Hysteresis, Track, TrackRegistry, track_one
from ..tracking.tracker import check_box
from .detection_messages import detection_box, detection_message
from .image_conversion import (
    ImageConversionError,
    check_pixels,
    compressed_dimensions,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    rgb_to_image_fields,
)
from .model_handle import ModelHandle, ModelUnavailable
from .parameters import (
    AUTO_RELIABILITY,
    TRACKER_PARAMETERS,
    declare_parameters,
    qos_profile,
    service_qos,
    sibling_topic,
)
from .targeting import INACTIVE, LOST, STATE_NAMES, TRACKING, ClickBoxer, inside_image, project_point
from .tracker_outputs import draw_overlay, overall_state, track_diagnostics, track_statuses

NODE_NAME = TRACKER_NODE_NAME
DYNAMIC_PARAMETERS = ('label', 'lost_threshold', 'recover_threshold', 'lost_frames', 'window_influence',
                      'click_box_size', 'double_click_timeout', 'max_image_pixels', 'input_timeout',
                      'catch_up_timeout', 'lost_track_timeout')
WARN_PERIOD_S = 5.0
LARGE_FRAMES_HINT = ('best-effort frames larger than the publisher\'s shared-memory segment (Fast DDS: 512 KiB) '
                     'are mostly lost: publish reliable, or give the camera a larger segment '
                     '(config/fastdds_large_frames.xml), see docs/ros.md "Camera QoS"')


class _SilentLogger:
    """Stands in for the node's logger after shutdown: every call does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: False


SILENT_LOGGER = _SilentLogger()


class TargetRejected(Exception):
    """A target request that cannot be applied; the message is the reason given back."""


@dataclass
class Frame:
    msg: Image | CompressedImage
    seq: int
    stamp_ns: int
    received_ns: int


def publisher_reliability(publishers) -> str:
    """'reliable' when every publisher offers reliable delivery (and there is one), else 'best_effort'."""
    if publishers and all(info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers):
        return 'reliable'
    return 'best_effort'


def stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def format_stamp(nanoseconds: int) -> str:
    return f'{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}'


def check_thresholds(lost_threshold: float, recover_threshold: float) -> str | None:
    if lost_threshold > recover_threshold:
        return (f'lost_threshold ({lost_threshold}) must not exceed recover_threshold ({recover_threshold})')
    return None


class TrackerNode(Node):
    def __init__(self, handle: ModelHandle, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self.model_handle = handle
        values = declare_parameters(self, TRACKER_PARAMETERS)
        problem = check_thresholds(values['lost_threshold'], values['recover_threshold'])
        if problem:
            raise ValueError(f'invalid parameters: {problem}')
        self._specs = {spec.name: spec for spec in TRACKER_PARAMETERS}
        self._settings = {name: values[name] for name in DYNAMIC_PARAMETERS}
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._frames_lock = threading.Lock()   # slot, buffer, counters of the image callback
        self._track_lock = threading.Lock()    # the tracks, the applied requests
        self._stats_lock = threading.Lock()
        self._request_lock = threading.Lock()
        self._newest: Frame | None = None
        self._buffer: deque[Frame] = deque(maxlen=values['frame_buffer_size'])
        self._seq = 0
        self._counts = {'received': 0, 'processed': 0, 'skipped': 0, 'dropped': 0, 'lost': 0,
                        'qos_incompatible': 0, 'overlays': 0, 'non_finite': 0}
        self._period_ms: dict[str, list[float]] = defaultdict(list)
        self._processed_times: deque[float] = deque(maxlen=30)
        self._max_targets = values['max_targets']
        self._registry = TrackRegistry(self._max_targets)
        self._engine: Tracker | None = None   # the batched engine of all tracks (one per model and window)
        self._engine_key: tuple | None = None
        self._engine_lock = threading.Lock()  # making the engine
        self._model_turn = FifoLock()          # one model call at a time: frame steps and catch-ups interleave
        self._request_counter = 0            # tickets, in order of arrival
        self._applied_request = (0, '')      # (ticket, source) of the last request that changed any track
        self._cleared_all = (0, '')          # ... of the last clear_target
        self._track_applied: dict[str, tuple[int, str]] = {}  # ... of the last change of each track
        self._click_track = ''               # the track the pending single click started (max_targets > 1)
        self._requests_in_progress: set[int] = set()
        self._clicks = ClickBoxer()
        self._camera_frame = ''
        self._camera_info: CameraInfo | None = None
        self._last_status = TrackerStatus(state=INACTIVE)
        self._status_since_tick = False
        self._last_tick = (time.monotonic(), dict(self._counts))
        self._last_frame_time = time.monotonic()
        self._warned_no_clock = False

        processing_group = MutuallyExclusiveCallbackGroup()
        self._input_group = MutuallyExclusiveCallbackGroup()
        command_group = ReentrantCallbackGroup()   # services: answer even while another one works
        target_group = MutuallyExclusiveCallbackGroup()  # clicks and ~/target: one at a time, in order
        image_topic = values['image_topic']
        self._image_reliability_setting = values['image_qos_reliability']
        self._image_depth = values['image_qos_depth']
        if values['image_transport'] == 'compressed':
            self._image_type, self._image_topic = CompressedImage, image_topic + '/compressed'
            self._convert = compressed_msg_to_rgb
        else:
            self._image_type, self._image_topic = Image, image_topic
            self._convert = image_msg_to_rgb
        self._image_sub = None
        self._image_reliability = ''
        initial = 'best_effort' if self._image_reliability_setting == AUTO_RELIABILITY else \
            self._image_reliability_setting
        self._subscribe_images(initial)
        if self._image_reliability_setting == AUTO_RELIABILITY:
            self._match_publishers()
        self.create_subscription(
            CameraInfo, values['camera_info_topic'] or sibling_topic(image_topic, 'camera_info'),
            self._on_camera_info, qos_profile('best_effort', 1), callback_group=self._input_group)
        self.create_subscription(Point, values['mouse_click_topic'] or image_topic + '_mouse_left',
                                 self._on_mouse_click, 10, callback_group=target_group)
        self.create_subscription(PointStamped, values['clicked_point_topic'], self._on_clicked_point, 10,
                                 callback_group=target_group)
        self.create_subscription(Detection2D, '~/target', self._on_target, 10, callback_group=target_group)
        self.create_subscription(Detection2DArray, '~/targets', self._on_targets, 10, callback_group=target_group)
        self.create_service(SetTarget, '~/set_target', self._on_set_target, qos_profile=service_qos(),
                            callback_group=command_group)
        self.create_service(Trigger, '~/clear_target', self._on_clear_target, qos_profile=service_qos(),
                            callback_group=command_group)
        self.create_service(ClearTrack, '~/clear_track', self._on_clear_track, qos_profile=service_qos(),
                            callback_group=command_group)

        self._detection_pub = self.create_publisher(Detection2D, '~/detection', 10)
        self._detections_pub = self.create_publisher(Detection2DArray, '~/detections', 10)
        self._status_pub = self.create_publisher(TrackerStatus, '~/status', 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._overlay_pub = self.create_publisher(Image, '~/overlay', qos_profile('reliable', 1))

        self._frame_ready = self.create_guard_condition(self._process_newest, callback_group=processing_group)
        # steady clock: diagnostics go on under use_sim_time without /clock
        self.create_timer(values['diagnostics_period'], self._on_tick, callback_group=self._input_group,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        handle.add_listener(self._on_model_changed)
        self.get_logger().info(
            f"tracking images from '{self._image_topic_name}' ({values['image_transport']}, "
            f"{self._image_reliability_setting}, depth {values['image_qos_depth']}); max_targets "
            f'{self._max_targets}; {handle.describe()}')

    @property
    def _image_topic_name(self) -> str:
        return self._image_sub.topic_name

    def _live_logger(self):
        """The node's logger, or a silent one once the context is gone (shutdown): rosout cannot take
        messages then. Call it at the logging site (throttling is per call site)."""
        return self.get_logger() if self.context.ok() else SILENT_LOGGER

    # ---------------------------------------------------------------- image subscription and its health

    def _subscribe_images(self, reliability: str) -> None:
        """(Re)create the image subscription with ``reliability``; events report lost frames and QoS
        mismatches."""
        if self._image_sub is not None:
            self.destroy_subscription(self._image_sub)
        events = SubscriptionEventCallbacks(message_lost=self._on_frames_lost,
                                            incompatible_qos=self._on_incompatible_qos)
        self._image_sub = self.create_subscription(
            self._image_type, self._image_topic, self._on_image, qos_profile(reliability, self._image_depth),
            callback_group=self._input_group, event_callbacks=events)
        self._image_reliability = reliability

    def _match_publishers(self) -> None:
        """``image_qos_reliability: auto``: subscribe with what the publishers offer."""
        wanted = publisher_reliability(self.get_publishers_info_by_topic(self._image_topic_name))
        if wanted != self._image_reliability:
            self._subscribe_images(wanted)
            self._live_logger().info(
                f"image subscription on '{self._image_topic_name}' now {wanted} (auto: matches the publishers)")

    def _on_frames_lost(self, event) -> None:
        with self._frames_lock:
            self._counts['lost'] += event.total_count_change
        self._live_logger().warning(f"{event.total_count} frames on '{self._image_topic_name}' lost in transport "
                                    f'(reported by DDS); {LARGE_FRAMES_HINT}', throttle_duration_sec=WARN_PERIOD_S)

    def _on_incompatible_qos(self, event) -> None:
        with self._frames_lock:
            self._counts['qos_incompatible'] = event.total_count
        self._live_logger().warning(f"a publisher on '{self._image_topic_name}' offers a QoS incompatible with this "
                                    f'{self._image_reliability} subscription (policy id {event.last_policy_kind}): its '
                                    "frames never arrive; set image_qos_reliability to 'auto' or 'best_effort'",
                  throttle_duration_sec=WARN_PERIOD_S)

    def _input_problem(self, counts) -> str | None:
        """A publisher on the image topic and no frame for ``input_timeout`` -> the reason, else None."""
        publishers = self.count_publishers(self._image_topic_name)
        silent_s = time.monotonic() - self._last_frame_time
        if publishers == 0 or silent_s < self._settings['input_timeout']:
            return None
        return (f"{publishers} publisher(s) on '{self._image_topic_name}' but no frame for {silent_s:.1f} s "
                f"(lost in transport: {counts['lost']}, QoS incompatible: {counts['qos_incompatible']})")

    # ---------------------------------------------------------------- parameters

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        settings = dict(self._settings)
        for parameter in parameters:
            spec = self._specs.get(parameter.name)
            problem = spec.check(parameter.value) if spec else None
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            if parameter.name in settings:
                settings[parameter.name] = parameter.value
        problem = check_thresholds(settings['lost_threshold'], settings['recover_threshold'])
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        changed = {name: value for name, value in settings.items() if self._settings[name] != value}
        self._settings = settings
        if changed:
            self._live_logger().info(f'parameters changed: {changed}')
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- input

    def _frame_pixels_problem(self, msg) -> str | None:
        """Why ``msg`` is too large to keep (checked before buffering; compressed: header only)."""
        limit = self._settings['max_image_pixels']
        try:
            if self._image_type is Image:
                check_pixels(int(msg.width), int(msg.height), limit)
            else:
                dimensions = compressed_dimensions(msg.data)
                if dimensions is not None:
                    check_pixels(*dimensions, limit)
        except ImageConversionError as error:
            return str(error)
        return None

    def _on_image(self, msg) -> None:
        received_ns = self.get_clock().now().nanoseconds
        self._last_frame_time = time.monotonic()
        problem = self._frame_pixels_problem(msg)
        if problem:
            with self._frames_lock:
                self._counts['dropped'] += 1
            self._live_logger().warning(f"dropped an image from '{self._image_topic_name}': {problem}",
                                        throttle_duration_sec=WARN_PERIOD_S)
            return
        with self._frames_lock:
            self._seq += 1
            frame = Frame(msg, self._seq, stamp_ns(msg.header.stamp), received_ns)
            if self._newest is not None:
                self._counts['skipped'] += 1
            self._newest = frame
            self._buffer.append(frame)
            self._counts['received'] += 1
            self._camera_frame = msg.header.frame_id
        self._frame_ready.trigger()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg

    def _to_rgb(self, msg) -> np.ndarray:
        return self._convert(msg, self._settings['max_image_pixels'])

    # ---------------------------------------------------------------- processing

    def _process_newest(self) -> None:
        with self._frames_lock:
            frame, self._newest = self._newest, None
        if frame is None:
            return
        try:
            self._process(frame)
        except Exception as error:  # a bad frame or a failing model must not stop the node
            self._live_logger().error(f'frame {format_stamp(frame.stamp_ns)} failed: {type(error).__name__}: {error}',
                                      throttle_duration_sec=WARN_PERIOD_S)

    def _latency_ms(self, frame: Frame) -> float:
        """Image stamp -> now on the node's clock; NaN while use_sim_time waits for /clock."""
        now_ns = self.get_clock().now().nanoseconds
        if now_ns == 0:
            return float('nan')
        return (now_ns - (frame.stamp_ns or frame.received_ns)) / 1e6

    def _engine_for_tracks(self) -> tuple[Tracker, int]:
        """The batched engine on the active model and the generation it belongs to; made again when
        the model or ``window_influence`` changes (the device step bakes the window into constants)."""
        influence = self._settings['window_influence']
        with self._engine_lock:
            if self._engine is None or self._engine_key != (self.model_handle.generation, influence):
                self._engine, generation = self.model_handle.new_tracker(window_influence=influence)
                self._engine_key = (generation, influence)
            return self._engine, self._engine_key[0]

    def _hysteresis(self) -> Hysteresis:
        settings = self._settings
        return Hysteresis(settings['lost_threshold'], settings['recover_threshold'], settings['lost_frames'])

    def _process(self, frame: Frame) -> None:
        start_ns = self.get_clock().now().nanoseconds
        start = time.perf_counter()
        header = frame.msg.header
        if not self.model_handle.active:
            self._last_status = self._status(header, INACTIVE, [])
            return
        try:
            rgb = self._to_rgb(frame.msg)  # once, for every track
        except ImageConversionError as error:
            with self._frames_lock:
                self._counts['dropped'] += 1
            self._live_logger().warning(f"dropped an image from '{self._image_topic_name}': {error}",
                                        throttle_duration_sec=WARN_PERIOD_S)
            return
        converted = time.perf_counter()
        with self._track_lock:
            registry = self._registry
            if len(registry) and all(frame.seq <= track.last_seq for track in registry.tracks()):
                return  # already tracked while catching up after a SetTarget with a stamp
            now = time.monotonic()
            steps = []
            if len(registry):
                engine, _ = self._engine_for_tracks()
                with self._model_turn:
                    steps = registry.step(engine, rgb, frame.seq, now, self._hysteresis())
            dropped = registry.drop_lost(now, self._settings['lost_track_timeout'])
            tracked = time.perf_counter()
            tracks = registry.tracks()
            live = set(map(id, tracks))
            self._publish_results(header, rgb, [step.track for step in steps if step.finite and id(step.track) in live],
                                  tracks)
            published = time.perf_counter()
            latency_ms = self._latency_ms(frame)
            track_ms = (tracked - converted) * 1000.0
            self._processed_times.append(published)
            status = self._status(header, overall_state(tracks), tracks, latency_ms, track_ms)
        failed = [step.track.track_id for step in steps if not step.finite]
        if failed:
            with self._frames_lock:
                self._counts['non_finite'] += len(failed)
            self._live_logger().warning(f"track {', '.join(failed)}: the model answered a non-finite score or box: "
                                        'LOST (no detection published)', throttle_duration_sec=WARN_PERIOD_S)
        for track in dropped:
            self._live_logger().info(f'track {track.track_id} dropped: LOST for {track.lost_for(now):.1f} s '
                                     f"(lost_track_timeout {self._settings['lost_track_timeout']:g} s)")
        self._status_pub.publish(status)
        with self._stats_lock:
            self._last_status, self._status_since_tick = status, True
            self._counts['processed'] += 1
            timings = self._period_ms
            if latency_ms == latency_ms:  # not NaN
                timings['latency'].append(latency_ms)
                timings['receive'].append((frame.received_ns - frame.stamp_ns) / 1e6 if frame.stamp_ns else 0.0)
            timings['wait'].append((start_ns - frame.received_ns) / 1e6)
            timings['convert'].append((converted - start) * 1000.0)
            timings['track'].append(track_ms)
            timings['publish'].append((published - tracked) * 1000.0)

    def _publish_results(self, header: Header, rgb: np.ndarray, detected: list[Track], tracks: list[Track]) -> None:
        """``detected``: the tracks whose box on this frame is usable (each gets a Detection2D on
        ``~/detection`` and in ``~/detections``); ``tracks``: every live track, for the overlay."""
        label = self._settings['label']
        detections = [detection_message(header, track.box, track.score, label, track.track_id) for track in detected]
        for detection in detections:
            self._detection_pub.publish(detection)
        self._detections_pub.publish(Detection2DArray(header=header, detections=detections))
        if self._overlay_pub.get_subscription_count() > 0:
            canvas = draw_overlay(rgb, tracks, label, several=self._max_targets > 1)
            self._overlay_pub.publish(Image(header=header, **rgb_to_image_fields(canvas)))
            with self._frames_lock:
                self._counts['overlays'] += 1

    def _status(self, header: Header, state: int, tracks: list[Track], latency_ms: float = 0.0,
                track_ms: float = 0.0) -> TrackerStatus:
        """``state``, the most recently set track's score / id / frame count, and every track."""
        times = self._processed_times
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        latest = self._registry.latest() if tracks else None
        return TrackerStatus(header=header, state=state, score=float(latest.score) if latest else 0.0,
                             track_id=latest.track_id if latest else '',
                             frame_count=latest.frame_count if latest else 0, latency_ms=float(latency_ms),
                             track_ms=float(track_ms), fps=float(fps),
                             tracks=track_statuses(tracks, time.monotonic()))

    # ---------------------------------------------------------------- targets

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
            checked = check_box(box, height, width)
            limited = limit_box(checked, height, width)
            engine, generation = self._engine_for_tracks()
        except (TrackerInputError, BoxLimitError, ModelUnavailable) as error:
            raise TargetRejected(str(error)) from None
        notes = []
        if is_clamped(checked, limited):
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

    def _on_model_changed(self) -> None:
        with self._track_lock:
            cleared = self._registry.clear()
        with self._engine_lock:
            self._engine = None
        if cleared:
            ids = ', '.join(track.track_id for track in cleared)
            self._live_logger().info(f"model replaced or released: track{'s' if len(cleared) > 1 else ''} {ids} "
                                     'cleared')

    # ---------------------------------------------------------------- periodic

    def current_state(self) -> int:
        if not self.model_handle.active:
            return INACTIVE
        return overall_state(self._registry.tracks())

    def _waiting_for_clock(self) -> bool:
        """use_sim_time is on and no /clock message has arrived yet (the node's time is zero)."""
        clock = self.get_clock()
        return bool(getattr(clock, 'ros_time_is_active', False)) and clock.now().nanoseconds == 0

    def _on_tick(self) -> None:
        if self._image_reliability_setting == AUTO_RELIABILITY:
            self._match_publishers()
        with self._stats_lock:
            timings, self._period_ms = self._period_ms, defaultdict(list)
            status, since_tick, self._status_since_tick = self._last_status, self._status_since_tick, False
        with self._frames_lock:
            counts = dict(self._counts)
        state = self.current_state()
        tracks = self._registry.tracks()
        if not since_tick or status.state != state:
            status = self._status(status.header, state, tracks if state != INACTIVE else [])
            self._status_pub.publish(status)
        now = time.monotonic()
        (last_time, last_counts), self._last_tick = self._last_tick, (now, dict(counts))
        elapsed = max(now - last_time, 1e-6)
        input_problem = self._input_problem(counts)
        if input_problem:
            self._live_logger().warning(f'{input_problem}; {LARGE_FRAMES_HINT}', throttle_duration_sec=WARN_PERIOD_S)
        waiting_for_clock = self._waiting_for_clock()
        if waiting_for_clock and not self._warned_no_clock:
            self._warned_no_clock = True
            self._live_logger().warning('use_sim_time is true and no /clock received yet: latencies are unknown '
                                        '(NaN in ~/status) until /clock is published; tracking goes on')
        self._diagnostics_pub.publish(self._diagnostics(state, status, counts, last_counts, elapsed, timings,
                                                        input_problem, waiting_for_clock, tracks))

    def _diagnostics(self, state, status, counts, last_counts, elapsed, timings, input_problem=None,
                     waiting_for_clock=False, tracks=()) -> DiagnosticArray:
        input_rate = (counts['received'] - last_counts['received']) / elapsed
        output_rate = (counts['processed'] - last_counts['processed']) / elapsed
        lost = counts['lost'] - last_counts['lost']
        level, message = DiagnosticStatus.OK, STATE_NAMES[state].lower()
        if state == INACTIVE:
            level, message = DiagnosticStatus.WARN, f'inactive: {self.model_handle.describe()}'
            if input_problem:
                message += f'; {input_problem}'
        elif input_problem:
            level, message = DiagnosticStatus.WARN, input_problem
        elif waiting_for_clock:
            level, message = DiagnosticStatus.WARN, 'use_sim_time is true and no /clock received: latency unknown'
        elif input_rate == 0.0:
            level, message = DiagnosticStatus.WARN, f"no images on '{self._image_topic_name}'"
        elif state == LOST and len(tracks) > 1:
            level, message = DiagnosticStatus.WARN, f'all {len(tracks)} tracks lost'
        elif state == LOST:
            level, message = DiagnosticStatus.WARN, f'target lost (score {status.score:.2f})'
        elif lost > 0:
            level, message = DiagnosticStatus.WARN, f'{lost} frames lost in transport in the last {elapsed:.1f} s'
        elif state == TRACKING and len(tracks) > 1:
            lost_ids = [track.track_id for track in tracks if track.state == LOST]
            message = f'tracking {len(tracks) - len(lost_ids)} of {len(tracks)} tracks' + (
                f" (lost: #{', #'.join(lost_ids)})" if lost_ids else '')
        elif state == TRACKING:
            message = f'tracking #{status.track_id} (score {status.score:.2f})'
        values = {
            'state': STATE_NAMES[state], 'track_id': status.track_id, 'score': f'{status.score:.3f}',
            'input_rate_hz': f'{input_rate:.2f}', 'processing_rate_hz': f'{output_rate:.2f}',
            'frames_received': counts['received'], 'frames_processed': counts['processed'],
            'frames_skipped': counts['skipped'], 'frames_dropped': counts['dropped'],
            'frames_lost': counts['lost'], 'qos_incompatible_publishers': counts['qos_incompatible'],
            'image_publishers': self.count_publishers(self._image_topic_name),
            'image_qos_reliability': self._image_reliability, 'non_finite_results': counts['non_finite'],
            'overlays_published': counts['overlays'], 'model': self.model_handle.describe(),
            'max_targets': self._max_targets, 'tracks': len(tracks),
        }
        values.update(track_diagnostics(list(tracks), time.monotonic()))
        for name in ('latency', 'receive', 'wait', 'convert', 'track', 'publish'):
            samples = timings.get(name)
            values[f'{name}_ms'] = f'{float(np.mean(samples)):.2f}' if samples else 'n/a'
        diagnostic = DiagnosticStatus(level=level, name=f'{self.get_name()}: tracking', message=message,
                                      hardware_id='transt_ros',
                                      values=[KeyValue(key=key, value=str(value)) for key, value in values.items()])
        return DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[diagnostic])
