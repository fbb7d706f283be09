"""``transt_tracker``: images in, the tracked targets' boxes out.

The node creates the ROS entities and wires four parts, each owning its state and lock:

* :class:`~.image_input.ImageInput` + :class:`~.frame_buffer.FrameBuffer`: the image subscription (QoS
  chosen from the publishers), the one-frame slot, the ring buffer of recent frames, input counters;
* :class:`~.target_requests.TargetRequests` + :class:`~.request_order.RequestOrder`: the target
  requests, applied in the order they were sent;
* :class:`~.track_engine.TrackEngine`: the tracks and the batched tracker on the shared model;
* the outputs: publishers here, messages from :mod:`.tracker_outputs`, :mod:`.tracker_diagnostics`
  and :class:`~.processing_stats.ProcessingStats`.

Only the newest frame is ever tracked: the image callback puts each frame into the slot (replacing an
unprocessed one, counted as skipped) and wakes the processing callback (own mutually exclusive
callback group), which takes whatever is newest. Services, clicks and parameters run in other
callback groups and stay answerable while a frame is tracked.

Up to ``max_targets`` tracks (default 1: a new target replaces the current one), all tracked with one
batched forward per frame, the frame converted once. Publishes ``~/detection`` (vision_msgs/Detection2D,
header = the image header; one message per live track and frame), ``~/detections`` (Detection2DArray:
one Detection2D per live track, empty while no target is set), ``~/status`` (transt_ros/TrackerStatus,
with every track), ``/diagnostics`` and ``~/overlay`` (rgb8, drawn only while someone subscribes).
The model comes from the shared :class:`ModelHandle` (transt_model_manager); the tracker node itself is
a plain node, not a lifecycle node.
"""
from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray, Detection3DArray

from transt_ros.msg import TrackerStatus
from transt_ros.srv import ClearTrack, SetTarget

from ..common.ros_environment import TRACKER_NODE_NAME
from ..common.stamps import format_stamp, stamp_to_ns
from ..tracking.depth_position import TargetPosition
from .depth_input import DepthInput
from .detection_messages import detection_3d_message, detection_box, detection_message, target_point
from .frame_buffer import Frame, FrameBuffer, InputCounts
from .image_conversion import ImageConversionError, rgb_to_image_fields
from .image_input import WARN_PERIOD_S, ImageInput
from .model_handle import ModelHandle
from .parameters import TRACKER_PARAMETERS, declare_parameters, qos_profile, service_qos
from .processing_stats import FrameTimings, ProcessedCounts, ProcessingStats
from .send_time import WithSendTime, message_send_time
from .target_requests import TargetRequests
from .targeting import INACTIVE
from .track_engine import FrameStep, TrackEngine
from .tracker_diagnostics import DiagnosticsInput, diagnostic_status
from .tracker_outputs import draw_overlay, overall_state, track_statuses
from .tracker_settings import TrackerSettings

NODE_NAME = TRACKER_NODE_NAME
DYNAMIC_PARAMETERS = TrackerSettings.names()


class _SilentLogger:
    """Stands in for the node's logger after shutdown: every call does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: False


SILENT_LOGGER = _SilentLogger()


class TrackerNode(Node):
    def __init__(self, handle: ModelHandle, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self.model_handle = handle
        values = declare_parameters(self, TRACKER_PARAMETERS)
        self._specs = {spec.name: spec for spec in TRACKER_PARAMETERS}
        self.settings = TrackerSettings.from_values(values)
        problem = self.settings.problem()
        if problem:
            raise ValueError(f'invalid parameters: {problem}')
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.frames = FrameBuffer(values['frame_buffer_size'])
        self.engine = TrackEngine(handle, values['max_targets'])
        self.stats = ProcessingStats()
        self._frame_ready = self.create_guard_condition(self._process_newest,
                                                        callback_group=MutuallyExclusiveCallbackGroup())
        self.images = ImageInput(
            self, self.frames, image_topic=values['image_topic'], transport=values['image_transport'],
            reliability=values['image_qos_reliability'], depth=values['image_qos_depth'],
            camera_info_topic=values['camera_info_topic'], settings=lambda: self.settings.input(),
            on_frame=self._frame_ready.trigger, logger=self._live_logger)
        self.depth = DepthInput(self, values['depth_topic'], values['depth_qos_reliability'],
                                values['depth_buffer_size'], self._live_logger) if values['depth_topic'] else None
        self._positions: dict = {}  # track id -> TargetPosition | NoPosition on its last frame (with depth_topic)
        self.requests = TargetRequests(self.engine, self.frames, self.images, lambda: self.settings,
                                       self._live_logger)
        self._create_request_entities(values)
        self._create_outputs()
        self._last_status = TrackerStatus(state=INACTIVE)
        self._status_since_tick = False
        self._last_tick = (time.monotonic(), InputCounts(), ProcessedCounts())
        self._warned_no_clock = False
        # steady clock: diagnostics go on under use_sim_time without /clock
        self.create_timer(values['diagnostics_period'], self._on_tick, callback_group=MutuallyExclusiveCallbackGroup(),
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        handle.add_listener(self._on_model_changed)
        handle.add_activity_listener(self.engine.on_activity_changed)
        self.get_logger().info(
            f"tracking images from '{self.images.topic}' ({values['image_transport']}, "
            f"{values['image_qos_reliability']}, depth {values['image_qos_depth']}); max_targets "
            f"{values['max_targets']}; {handle.describe()}")

    def _create_request_entities(self, values: dict) -> None:
        """Services (reentrant: answered while another one works) and target topics (one at a time)."""
        commands = ReentrantCallbackGroup()
        targets = MutuallyExclusiveCallbackGroup()
        requests = self.requests
        self.create_subscription(Point, values['mouse_click_topic'] or values['image_topic'] + '_mouse_left',
                                 lambda msg, info: requests.click(msg.x, msg.y, 'image click', message_send_time(info)),
                                 10, callback_group=targets)
        self.create_subscription(
            PointStamped, values['clicked_point_topic'],
            lambda msg, info: requests.clicked_point(msg.header.frame_id, msg.point.x, msg.point.y, msg.point.z,
                                                     message_send_time(info)), 10, callback_group=targets)
        self.create_subscription(Detection2D, '~/target', self._on_target, 10, callback_group=targets)
        self.create_subscription(Detection2DArray, '~/targets', self._on_targets, 10, callback_group=targets)
        self.create_service(SetTarget, '~/set_target', WithSendTime(self._on_set_target), qos_profile=service_qos(),
                            callback_group=commands)
        self.create_service(Trigger, '~/clear_target', WithSendTime(self._on_clear_target),
                            qos_profile=service_qos(), callback_group=commands)
        self.create_service(ClearTrack, '~/clear_track', WithSendTime(self._on_clear_track),
                            qos_profile=service_qos(), callback_group=commands)

    def _create_outputs(self) -> None:
        self._detection_pub = self.create_publisher(Detection2D, '~/detection', 10)
        self._detections_pub = self.create_publisher(Detection2DArray, '~/detections', 10)
        self._status_pub = self.create_publisher(TrackerStatus, '~/status', 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._overlay_pub = self.create_publisher(Image, '~/overlay', qos_profile('reliable', 1))
        if self.depth is not None:
            self._detections_3d_pub = self.create_publisher(Detection3DArray, '~/detections_3d', 10)
            self._target_point_pub = self.create_publisher(PointStamped, '~/target_point', 10)

    def _live_logger(self):
        """The node's logger, or a silent one once the context is gone (shutdown): rosout cannot take
        messages then. Call it at the logging site (throttling is per call site)."""
        return self.get_logger() if self.context.ok() else SILENT_LOGGER

    def destroy_retired_subscriptions(self) -> int:
        """Destroy replaced image subscriptions; call it from the thread that spins the executor,
        between two ``spin_once`` calls (the bringup does). Otherwise they go with the node."""
        return self.images.destroy_retired() + (self.depth.destroy_retired() if self.depth is not None else 0)

    # ---------------------------------------------------------------- parameters

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        changes = {}
        for parameter in parameters:
            spec = self._specs.get(parameter.name)
            problem = spec.check(parameter.value) if spec else None
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            changes[parameter.name] = parameter.value
        settings = self.settings.with_changes(changes)
        problem = settings.problem()
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        changed = {name: getattr(settings, name) for name in DYNAMIC_PARAMETERS
                   if getattr(settings, name) != getattr(self.settings, name)}
        self.settings = settings
        if changed:
            self._live_logger().info(f'parameters changed: {changed}')
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- target requests

    def _on_set_target(self, request: SetTarget.Request, response: SetTarget.Response, sent_ns: int
                       ) -> SetTarget.Response:
        box = (request.x, request.y, request.width, request.height)
        outcome = self.requests.set_target(box, stamp_to_ns(request.stamp), '~/set_target', sent_ns, request.track_id)
        response.accepted, response.reason, response.track_id = outcome.accepted, outcome.reason, outcome.track_id
        return response

    def _on_target(self, msg: Detection2D, info) -> None:
        self.requests.set_target(detection_box(msg), stamp_to_ns(msg.header.stamp), '~/target',
                                 message_send_time(info), msg.id)

    def _on_targets(self, msg: Detection2DArray, info) -> None:
        """Each detection as a ``~/target`` (its own stamp, else the array's), in the array's order."""
        sent_ns = message_send_time(info)
        for detection in msg.detections:
            stamp = stamp_to_ns(detection.header.stamp) or stamp_to_ns(msg.header.stamp)
            self.requests.set_target(detection_box(detection), stamp, '~/targets', sent_ns, detection.id)

    def _on_clear_target(self, request: Trigger.Request, response: Trigger.Response, sent_ns: int
                         ) -> Trigger.Response:
        outcome = self.requests.clear_all(sent_ns)
        response.success, response.message = outcome.success, outcome.message
        return response

    def _on_clear_track(self, request: ClearTrack.Request, response: ClearTrack.Response, sent_ns: int
                        ) -> ClearTrack.Response:
        outcome = self.requests.clear_track(request.track_id, sent_ns)
        response.success, response.reason = outcome.success, outcome.message
        return response

    # ---------------------------------------------------------------- processing

    def _process_newest(self) -> None:
        frame = self.frames.take_newest()
        if frame is None:
            return
        try:
            self._process(frame)
        except Exception as error:  # a bad frame or a failing model must not stop the node
            self._live_logger().error(f'frame {format_stamp(frame.stamp_ns)} failed: {type(error).__name__}: {error}',
                                      throttle_duration_sec=WARN_PERIOD_S)

    def _latency_ms(self, frame: Frame) -> float | None:
        """Image stamp -> now on the node's clock; None while use_sim_time waits for /clock."""
        now_ns = self.get_clock().now().nanoseconds
        if now_ns == 0:
            return None
        return (now_ns - (frame.stamp_ns or frame.received_ns)) / 1e6

    def _process(self, frame: Frame) -> None:
        start_ns = self.get_clock().now().nanoseconds
        start = time.perf_counter()
        header = frame.msg.header
        if not self.model_handle.active:
            self._last_status = self._status(header, INACTIVE, [])
            return
        try:
            rgb = self.images.to_rgb(frame.msg)  # once, for every track
        except ImageConversionError as error:
            self.frames.count_dropped()
            self._live_logger().warning(f"dropped an image from '{self.images.topic}': {error}",
                                        throttle_duration_sec=WARN_PERIOD_S)
            return
        converted = time.perf_counter()
        settings = self.settings
        published = {}

        def publish(outcome: FrameStep) -> None:
            positions = self._track_positions(frame, rgb.shape, outcome, settings)
            self._publish_results(header, rgb, outcome.detected, outcome.tracks, settings.label, positions)
            published['at'] = time.perf_counter()

        outcome = self.engine.step(rgb, frame.seq, settings.window_influence, settings.hysteresis(),
                                   settings.lost_track_timeout, publish,
                                   reacquire=settings.reacquire_params())
        if outcome is None:
            return  # already tracked while catching up after a SetTarget with a stamp
        latency_ms = self._latency_ms(frame)
        track_ms = outcome.track_s * 1000.0
        status = self._status(header, overall_state(outcome.tracks), outcome.tracks,
                              float('nan') if latency_ms is None else latency_ms, track_ms)
        failed = outcome.failed_ids
        if failed:
            self.stats.count_non_finite(len(failed))
            self._live_logger().warning(f"track {', '.join(failed)}: the model answered a non-finite score or box: "
                                        'LOST (no detection published)', throttle_duration_sec=WARN_PERIOD_S)
        for track in outcome.dropped:
            self._live_logger().info(f'track {track.track_id} dropped: LOST for {track.lost_for(outcome.now):.1f} s '
                                     f'(lost_track_timeout {settings.lost_track_timeout:g} s)')
        self._status_pub.publish(status)
        self._last_status, self._status_since_tick = status, True
        tracked = converted + outcome.track_s
        self.stats.record_frame(FrameTimings(
            wait=(start_ns - frame.received_ns) / 1e6, convert=(converted - start) * 1000.0, track=track_ms,
            publish=(published['at'] - tracked) * 1000.0, latency=latency_ms,
            reacquire=outcome.reacquire_s * 1000.0 if outcome.reacquire_s else None,
            receive=None if latency_ms is None else
            ((frame.received_ns - frame.stamp_ns) / 1e6 if frame.stamp_ns else 0.0)))

    def _track_positions(self, frame: Frame, shape, outcome: FrameStep, settings: TrackerSettings) -> dict:
        """With ``depth_topic``: each detected track's 3D position (or why it has none) on this frame."""
        if self.depth is None:
            return {}
        info = self.images.camera_info
        boxes = {track.track_id: track.box for track in outcome.detected}
        self._positions = self.depth.positions(frame.stamp_ns, shape, boxes, info.k if info is not None else None,
                                               settings.depth_stamp_tolerance, settings.depth())
        return self._positions

    def _publish_results(self, header: Header, rgb: np.ndarray, detected, tracks, label: str,
                         positions: dict) -> None:
        """``detected``: the tracks whose box on this frame is usable (each gets a Detection2D on
        ``~/detection`` and in ``~/detections``, and with ``depth_topic`` a Detection3D when it has a 3D
        position); ``tracks``: every live track, for the overlay."""
        detections = [detection_message(header, track.box, track.score, label, track.track_id) for track in detected]
        for detection in detections:
            self._detection_pub.publish(detection)
        self._detections_pub.publish(Detection2DArray(header=header, detections=detections))
        if self.depth is not None:
            self._publish_3d(header, detected, label, positions)
        if self._overlay_pub.get_subscription_count() > 0:
            distances = {track_id: position.distance_m for track_id, position in positions.items()
                         if isinstance(position, TargetPosition)}
            canvas = draw_overlay(rgb, tracks, label, several=not self.engine.one_target, distances=distances)
            self._overlay_pub.publish(Image(header=header, **rgb_to_image_fields(canvas)))
            self.stats.count_overlay()

    def _publish_3d(self, header: Header, detected, label: str, positions: dict) -> None:
        """``~/detections_3d`` (every detected track with a position) and ``~/target_point`` (the most
        recently set track, when it has one)."""
        located = [(track, positions[track.track_id]) for track in detected
                   if isinstance(positions.get(track.track_id), TargetPosition)]
        self._detections_3d_pub.publish(Detection3DArray(header=header, detections=[
            detection_3d_message(header, position, track.score, label, track.track_id) for track, position in located]))
        latest = self.engine.registry.latest()
        position = positions.get(latest.track_id) if latest is not None else None
        if isinstance(position, TargetPosition):
            self._target_point_pub.publish(target_point(header, position))

    def _status(self, header: Header, state: int, tracks, latency_ms: float = 0.0,
                track_ms: float = 0.0) -> TrackerStatus:
        """``state``, the most recently set track's score / id / frame count, and every track."""
        latest = self.engine.latest() if tracks else None
        return TrackerStatus(header=header, state=state, score=float(latest.score) if latest else 0.0,
                             track_id=latest.track_id if latest else '',
                             frame_count=latest.frame_count if latest else 0, latency_ms=float(latency_ms),
                             track_ms=float(track_ms), fps=float(self.stats.fps()),
                             tracks=track_statuses(tracks, time.monotonic(), self._positions))

    # ---------------------------------------------------------------- model changes

    def _on_model_changed(self) -> None:
        """A replaced or released model clears every track (decided: a template of one model must never
        reach another, and re-initialising from the last box would track what the old model saw)."""
        cleared = self.engine.on_model_changed()
        if cleared:
            ids = ', '.join(track.track_id for track in cleared)
            self._live_logger().info(f"model replaced or released: track{'s' if len(cleared) > 1 else ''} {ids} "
                                     'cleared; set the targets again')

    # ---------------------------------------------------------------- periodic

    def _waiting_for_clock(self) -> bool:
        """use_sim_time is on and no /clock message has arrived yet (the node's time is zero)."""
        clock = self.get_clock()
        return bool(getattr(clock, 'ros_time_is_active', False)) and clock.now().nanoseconds == 0

    def _on_tick(self) -> None:
        timings = self.stats.take_period()
        status, since_tick, self._status_since_tick = self._last_status, self._status_since_tick, False
        counts, processed = self.frames.counts(), self.stats.counts()
        tracks = self.engine.tracks()
        state = overall_state(tracks) if self.model_handle.active else INACTIVE
        if not since_tick or status.state != state:  # the last frame's timings: no made-up latency
            status = self._status(status.header, state, tracks if state != INACTIVE else [], status.latency_ms,
                                  status.track_ms)
            self._status_pub.publish(status)
        now = time.monotonic()
        (last_time, last_counts, last_processed), self._last_tick = self._last_tick, (now, counts, processed)
        input_problem = self.images.problem(counts)
        if input_problem:
            self._live_logger().warning(input_problem, throttle_duration_sec=WARN_PERIOD_S)
        waiting_for_clock = self._waiting_for_clock()
        if waiting_for_clock and not self._warned_no_clock:
            self._warned_no_clock = True
            self._live_logger().warning('use_sim_time is true and no /clock received yet: latencies are unknown '
                                        '(NaN in ~/status) until /clock is published; tracking goes on')
        report = DiagnosticsInput(
            node_name=self.get_name(), state=state, track_id=status.track_id, score=status.score, tracks=tracks,
            now=now, counts=counts, previous_counts=last_counts, processed=processed,
            previous_processed=last_processed, elapsed_s=now - last_time, timings=timings,
            image_topic=self.images.topic, image_publishers=self.images.publisher_count(),
            image_reliability=self.images.reliability, model=self.model_handle.describe(),
            max_targets=self.engine.max_targets, input_problem=input_problem, waiting_for_clock=waiting_for_clock)
        self._diagnostics_pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                      status=[diagnostic_status(report)]))
