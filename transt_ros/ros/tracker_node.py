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

Target requests (:mod:`.target_requests`) apply in the order they arrive; frames the node can see going
missing (:mod:`.image_input`: DDS reports lost samples, a publisher with incompatible QoS, a publisher
present and no frame for ``input_timeout``) are reported in the log (throttled) and in /diagnostics.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, PointStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray

from transt_ros.msg import TrackerStatus
from transt_ros.srv import ClearTrack, SetTarget

from ..common.ros_environment import TRACKER_NODE_NAME
from ..tracking import Tracker
from ..tracking.track_registry import FifoLock, Hysteresis, Track, TrackRegistry
from .detection_messages import detection_message
from .image_conversion import ImageConversionError, compressed_msg_to_rgb, image_msg_to_rgb, rgb_to_image_fields
from .image_input import LARGE_FRAMES_HINT, WARN_PERIOD_S, Frame, ImageInputMixin, format_stamp
from .model_handle import ModelHandle
from .parameters import (
    AUTO_RELIABILITY,
    TRACKER_PARAMETERS,
    declare_parameters,
    qos_profile,
    service_qos,
    sibling_topic,
)
from .target_requests import TargetRequestsMixin
from .targeting import INACTIVE, LOST, STATE_NAMES, TRACKING, ClickBoxer
from .tracker_outputs import draw_overlay, overall_state, track_diagnostics, track_statuses

NODE_NAME = TRACKER_NODE_NAME
DYNAMIC_PARAMETERS = ('label', 'lost_threshold', 'recover_threshold', 'lost_frames', 'window_influence',
                      'click_box_size', 'double_click_timeout', 'max_image_pixels', 'input_timeout',
                      'catch_up_timeout', 'lost_track_timeout')


class _SilentLogger:
    """Stands in for the node's logger after shutdown: every call does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: False


SILENT_LOGGER = _SilentLogger()


def check_thresholds(lost_threshold: float, recover_threshold: float) -> str | None:
    if lost_threshold > recover_threshold:
        return (f'lost_threshold ({lost_threshold}) must not exceed recover_threshold ({recover_threshold})')
    return None


class TrackerNode(ImageInputMixin, TargetRequestsMixin, Node):
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
        self._image_generation = 0
        self._image_topic_resolved = ''
        self._retired_subscriptions = []
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

    def _live_logger(self):
        """The node's logger, or a silent one once the context is gone (shutdown): rosout cannot take
        messages then. Call it at the logging site (throttling is per call site)."""
        return self.get_logger() if self.context.ok() else SILENT_LOGGER

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

    # ---------------------------------------------------------------- model changes

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
