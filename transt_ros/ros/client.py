"""A client of the tracker over DDS: the one probe of the ROS tests, the live evaluation and the benchmarks.

:class:`TrackerClient` owns a node (``rclpy`` must be initialised: the default context, or the one
passed) and spins it in a thread of its own, so its methods block the caller only:

* the tracker's outputs are captured from construction on (:class:`Capture`: every message with
  its arrival times, found by header stamp or by a condition): ``~/detection``, ``~/detections``,
  ``~/status`` and ``/diagnostics`` (read as :class:`TrackerDiagnostics`);
* its services: :meth:`~TrackerClient.set_target` (also :meth:`~TrackerClient.set_target_async`),
  :meth:`~TrackerClient.clear_target`, :meth:`~TrackerClient.clear_track` (``*_async``: the future, for
  requests sent back to back; :meth:`~TrackerClient.answer` waits for it), the parameters of both
  nodes and the manager's lifecycle (:meth:`~TrackerClient.change_state`,
  :meth:`~TrackerClient.manager_state`); each call waits for its service first
  (:func:`~.service_calls.call_service`), answers are the services' typed responses;
* its target topics (``~/target``, ``~/targets``), published once the tracker subscribes;
* waiting for conditions, never for time: :meth:`~TrackerClient.wait_until` (any condition; woken by
  every captured message), :meth:`~TrackerClient.wait_for_services`,
  :meth:`~TrackerClient.wait_until_answering`, :meth:`~TrackerClient.wait_for_outputs` and
  :meth:`~TrackerClient.wait_for_subscriber` (discovery), :meth:`Capture.wait_for` (a message).

Every wait takes ``check``: called on each poll, it may raise to end the wait early (e.g. when the
bringup process died). A wait that runs out raises :class:`WaitTimeout` naming what it waited for.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2D, Detection2DArray

from transt_ros.msg import TrackerStatus
from transt_ros.srv import ClearTrack, SetTarget

from ..common.ros_environment import MODEL_MANAGER_NODE_NAME, TRACKER_NODE_NAME
from ..common.stamps import ns_to_sec_nanosec, stamp_to_ns
from .parameters import service_qos
from .service_calls import ServiceCallError, call_service

M = TypeVar('M')

POLL_S = 0.05
"""Longest sleep of a wait between two looks at its condition (a captured message wakes it at once)."""
SERVICE_TIMEOUT_S = 20.0
LIFECYCLE_TIMEOUT_S = 60.0
"""A configure transition loads and warms up the model: slower than the other calls."""
CAPTURE_DEPTH = 100
CLOSE_TIMEOUT_S = 30.0
"""How long :meth:`TrackerClient.close` waits for the spin thread (a loaded machine can take seconds)."""


class WaitTimeout(TimeoutError):
    """A wait of the client ran out; the message names what it waited for."""


def stamp_of(msg) -> int:
    """The header stamp of ``msg`` in integer nanoseconds."""
    return stamp_to_ns(msg.header.stamp)


def reliable_qos(depth: int) -> QoSProfile:
    """What the tracker's outputs offer (reliable, volatile), keeping the last ``depth`` messages."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


@dataclass(frozen=True)
class Received(Generic[M]):
    """A captured message and when it arrived."""

    msg: M
    monotonic_s: float
    """``time.monotonic()`` on arrival: compare with other monotonic times of this process."""
    wall_ns: int
    """``time.time_ns()`` on arrival: compare with header stamps (system clock)."""

    @property
    def stamp_ns(self) -> int:
        return stamp_of(self.msg)


@dataclass(frozen=True)
class TrackerDiagnostics:
    """The tracker's ``/diagnostics`` status (``<node>: tracking``), its counters as integers."""

    level: int
    message: str
    state: str
    frames_received: int
    frames_processed: int
    frames_skipped: int
    frames_dropped: int
    frames_lost: int
    overlays_published: int
    image_qos_reliability: str
    values: dict[str, str] = field(repr=False)
    """Every key/value of the status as published (rates, timings, the model, per-track values)."""

    @classmethod
    def from_status(cls, status) -> TrackerDiagnostics:
        values = {item.key: item.value for item in status.values}
        counters = {name: int(values[name]) for name in ('frames_received', 'frames_processed', 'frames_skipped',
                                                        'frames_dropped', 'frames_lost', 'overlays_published')}
        level = status.level
        return cls(level=level[0] if isinstance(level, bytes) else int(level), message=status.message,
                   state=values['state'], image_qos_reliability=values['image_qos_reliability'], values=values,
                   **counters)


class Capture(Generic[M]):
    """Every message of one subscription, in arrival order, with arrival times; safe across threads."""

    def __init__(self, client: TrackerClient, msg_type: type[M], topic: str, depth: int):
        self.topic = topic
        self._client = client
        self._lock = threading.Lock()
        self._received: list[Received[M]] = []
        self._by_stamp: dict[int, list[Received[M]]] = {}
        self._listeners: list[Callable[[Received[M]], None]] = []
        self.subscription = client.node.create_subscription(msg_type, topic, self._on_message, reliable_qos(depth))

    def _on_message(self, msg: M) -> None:
        item = Received(msg, time.monotonic(), time.time_ns())
        with self._lock:
            self._received.append(item)
            if hasattr(msg, 'header'):
                self._by_stamp.setdefault(item.stamp_ns, []).append(item)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(item)
        self._client._notify()

    def add_listener(self, listener: Callable[[Received[M]], None]) -> None:
        """Call ``listener`` with each message from now on (in the client's spinning thread)."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def matched(self) -> bool:
        """Whether a publisher of the topic matched this subscription."""
        return self.subscription.get_publisher_count() > 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._received)

    def received(self, since: float | None = None) -> list[Received[M]]:
        """The captured messages (arrived at or after monotonic time ``since``), oldest first."""
        with self._lock:
            items = list(self._received)
        return items if since is None else [item for item in items if item.monotonic_s >= since]

    def messages(self, since: float | None = None) -> list[M]:
        return [item.msg for item in self.received(since)]

    def latest(self) -> Received[M] | None:
        with self._lock:
            return self._received[-1] if self._received else None

    def with_stamp(self, stamp_ns: int) -> list[M]:
        """The messages whose header stamp is ``stamp_ns``, in arrival order."""
        with self._lock:
            return [item.msg for item in self._by_stamp.get(int(stamp_ns), ())]

    def find(self, predicate: Callable[[M], bool] = lambda msg: True, since: float | None = None) -> M | None:
        """The first message (arrived at or after ``since``) for which ``predicate`` is true, else None."""
        return next((item.msg for item in self.received(since) if predicate(item.msg)), None)

    def wait_for(self, predicate: Callable[[M], bool] = lambda msg: True, since: float | None = None,
                 timeout_s: float = SERVICE_TIMEOUT_S, what: str | None = None, check=None) -> M:
        """The first message arriving at or after ``since`` (default: now) that ``predicate`` accepts."""
        since = time.monotonic() if since is None else since
        return self._client.wait_until(lambda: self.find(predicate, since), timeout_s,
                                       what or f'a matching message on {self.topic}', check)

    def wait_for_stamp(self, stamp_ns: int, timeout_s: float = SERVICE_TIMEOUT_S, check=None) -> M:
        """The (first) message with header stamp ``stamp_ns``, waiting for it."""
        return self._client.wait_until(lambda: next(iter(self.with_stamp(stamp_ns)), None), timeout_s,
                                       f'the message stamped {stamp_ns} on {self.topic}', check)

    def wait_for_count(self, count: int, since: float | None = None, timeout_s: float = SERVICE_TIMEOUT_S,
                       check=None) -> list[M]:
        """``count`` messages arriving at or after ``since`` (default: now); -> those messages."""
        since = time.monotonic() if since is None else since

        def enough() -> list[M] | None:
            items = self.messages(since)
            return items[:count] if len(items) >= count else None
        return self._client.wait_until(enough, timeout_s, f'{count} messages on {self.topic}', check)


class TrackerClient:
    """A node that talks to ``transt_tracker`` and ``transt_model_manager`` over DDS (see the module doc).

    ``namespace``: where the two nodes run (a bringup started with ``-r __ns:=/name``); ``context``: the
    rclpy context (default: the default one); ``depth``: the history of the output subscriptions.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, name: str = 'transt_client', *, namespace: str = '', context=None,
                 depth: int = CAPTURE_DEPTH):
        prefix = '/' + namespace.strip('/') if namespace.strip('/') else ''
        self.tracker_name = f'{prefix}/{TRACKER_NODE_NAME}'
        self.manager_name = f'{prefix}/{MODEL_MANAGER_NODE_NAME}'
        self.node = rclpy.create_node(name, context=context)
        self._condition = threading.Condition()
        self.detection: Capture[Detection2D] = Capture(self, Detection2D, f'{self.tracker_name}/detection', depth)
        self.detections: Capture[Detection2DArray] = Capture(self, Detection2DArray,
                                                             f'{self.tracker_name}/detections', depth)
        self.status: Capture[TrackerStatus] = Capture(self, TrackerStatus, f'{self.tracker_name}/status', depth)
        self.diagnostics: Capture[DiagnosticArray] = Capture(self, DiagnosticArray, '/diagnostics', depth)
        # the tracker's own depth (100, not rclpy's 10): a burst of calls sent without waiting must not lose
        # requests or answers from a full keep-last queue while this process is slow to take them
        queue = service_qos()
        self._set_target = self.node.create_client(SetTarget, f'{self.tracker_name}/set_target', qos_profile=queue)
        self._clear_target = self.node.create_client(Trigger, f'{self.tracker_name}/clear_target', qos_profile=queue)
        self._clear_track = self.node.create_client(ClearTrack, f'{self.tracker_name}/clear_track', qos_profile=queue)
        self._change_state = self.node.create_client(ChangeState, f'{self.manager_name}/change_state')
        self._get_state = self.node.create_client(GetState, f'{self.manager_name}/get_state')
        self._parameters = {
            'tracker': (self.node.create_client(SetParameters, f'{self.tracker_name}/set_parameters'),
                        self.node.create_client(GetParameters, f'{self.tracker_name}/get_parameters')),
            'manager': (self.node.create_client(SetParameters, f'{self.manager_name}/set_parameters'),
                        self.node.create_client(GetParameters, f'{self.manager_name}/get_parameters')),
        }
        self._target_pub = self.node.create_publisher(Detection2D, f'{self.tracker_name}/target', 10)
        self._targets_pub = self.node.create_publisher(Detection2DArray, f'{self.tracker_name}/targets', 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._spin_lock = threading.Lock()
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, name=f'{name}_spin', daemon=True)
        self._spinner.start()

    # -- spinning and waiting
    def _spin(self) -> None:
        while not self._stop.is_set():
            try:
                with self._spin_lock:
                    self.executor.spin_once(timeout_sec=POLL_S)
            except ExternalShutdownException:
                return
            except Exception:  # the context was shut down under the executor
                if self._stop.is_set() or not self.executor.context.ok():
                    return
                raise

    def _notify(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def wait_until(self, condition: Callable[[], M], timeout_s: float = SERVICE_TIMEOUT_S,
                   what: str = 'a condition', check: Callable[[], None] | None = None) -> M:
        """The first true value of ``condition()``, looked at after every captured message (and every
        :data:`POLL_S`); raises :class:`WaitTimeout` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = condition()
            if value:
                return value
            if check is not None:
                check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f'timed out after {timeout_s:.1f} s waiting for {what}')
            with self._condition:
                self._condition.wait(min(POLL_S, remaining))

    def wait_for_services(self, timeout_s: float = SERVICE_TIMEOUT_S, check=None, lifecycle: bool = False) -> None:
        """Until the tracker's services (and with ``lifecycle`` the manager's) are discovered."""
        clients = [self._set_target, self._clear_target, self._clear_track]
        if lifecycle:
            clients += [self._change_state, self._get_state]
        for client in clients:
            self.wait_until(lambda client=client: client.service_is_ready(), timeout_s,
                            f'service {client.srv_name}', check)

    def wait_until_answering(self, timeout_s: float = 90.0, check=None) -> str:
        """Until the manager answers ``get_state``; -> its state. Discovery alone can be fooled by a node
        of an earlier run still in the graph cache, and a request sent before the server matched is lost."""
        deadline = time.monotonic() + timeout_s

        def answered():
            try:
                return self.manager_state(timeout_s=min(2.0, max(0.1, deadline - time.monotonic())))
            except ServiceCallError:
                return None
        return self.wait_until(answered, timeout_s, f'{self.manager_name}/get_state to answer', check)

    def wait_for_outputs(self, timeout_s: float = SERVICE_TIMEOUT_S, check=None) -> None:
        """Until the tracker's ``~/detection``, ``~/detections`` and ``~/status`` publishers matched."""
        for capture in (self.detection, self.detections, self.status):
            self.wait_until(lambda capture=capture: capture.matched, timeout_s, f'a publisher on {capture.topic}',
                            check)

    def wait_for_subscriber(self, publisher, timeout_s: float = SERVICE_TIMEOUT_S, check=None) -> None:
        """Until a subscription matched ``publisher`` (what is published before is lost)."""
        self.wait_until(lambda: publisher.get_subscription_count() > 0, timeout_s,
                        f'a subscriber on {publisher.topic_name}', check)

    def next_diagnostics(self, since: float | None = None, timeout_s: float = SERVICE_TIMEOUT_S) -> TrackerDiagnostics:
        """The tracker's next ``/diagnostics`` status (arriving at or after ``since``, default now)."""
        name = f'{TRACKER_NODE_NAME}: '

        def ours(array) -> bool:
            return any(status.name.startswith(name) for status in array.status)
        array = self.diagnostics.wait_for(ours, since, timeout_s, f'the tracker status on {self.diagnostics.topic}')
        return TrackerDiagnostics.from_status(next(status for status in array.status if status.name.startswith(name)))

    # -- stamps
    def now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def stamp_now(self, msg) -> int:
        """Set ``msg.header.stamp`` to now (the node's clock); -> the stamp in nanoseconds."""
        msg.header.stamp = self.node.get_clock().now().to_msg()
        return stamp_of(msg)

    # -- services
    def set_target_request(self, x: float, y: float, width: float, height: float, *, stamp_ns: int = 0,
                           track_id: str = '') -> SetTarget.Request:
        request = SetTarget.Request(x=float(x), y=float(y), width=float(width), height=float(height),
                                    track_id=track_id)
        request.stamp.sec, request.stamp.nanosec = ns_to_sec_nanosec(stamp_ns)
        return request

    def set_target(self, x: float, y: float, width: float, height: float, *, stamp_ns: int = 0, track_id: str = '',
                   timeout_s: float = SERVICE_TIMEOUT_S) -> SetTarget.Response:
        """``~/set_target`` on the box (``stamp_ns`` 0: the newest frame; ``track_id``: re-initialise)."""
        request = self.set_target_request(x, y, width, height, stamp_ns=stamp_ns, track_id=track_id)
        return call_service(self._set_target, request, timeout_s)

    def set_target_async(self, x: float, y: float, width: float, height: float, *, stamp_ns: int = 0,
                         track_id: str = '', timeout_s: float = SERVICE_TIMEOUT_S):
        """Send a ``~/set_target`` request without waiting for the answer; -> its future (see :meth:`answer`)."""
        return _send(self._set_target, self.set_target_request(x, y, width, height, stamp_ns=stamp_ns,
                                                               track_id=track_id), timeout_s)

    def answer(self, future, timeout_s: float = SERVICE_TIMEOUT_S):
        """The response of a request sent with a ``*_async`` method, waiting for it."""
        self.wait_until(future.done, timeout_s, 'a service answer')
        return future.result()

    def clear_target(self, timeout_s: float = SERVICE_TIMEOUT_S) -> Trigger.Response:
        """``~/clear_target``: forget every track."""
        return call_service(self._clear_target, Trigger.Request(), timeout_s)

    def clear_target_async(self, timeout_s: float = SERVICE_TIMEOUT_S):
        """Send a ``~/clear_target`` request without waiting for the answer; -> its future (see :meth:`answer`)."""
        return _send(self._clear_target, Trigger.Request(), timeout_s)

    def clear_track(self, track_id: str, timeout_s: float = SERVICE_TIMEOUT_S) -> ClearTrack.Response:
        """``~/clear_track``: forget one track."""
        return call_service(self._clear_track, ClearTrack.Request(track_id=track_id), timeout_s)

    def clear_track_async(self, track_id: str, timeout_s: float = SERVICE_TIMEOUT_S):
        """Send a ``~/clear_track`` request without waiting for the answer; -> its future (see :meth:`answer`)."""
        return _send(self._clear_track, ClearTrack.Request(track_id=track_id), timeout_s)

    def change_state(self, transition_id: int, timeout_s: float = LIFECYCLE_TIMEOUT_S) -> bool:
        """A lifecycle transition of the manager (``lifecycle_msgs/Transition`` id); -> success."""
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return bool(call_service(self._change_state, request, timeout_s).success)

    def manager_state(self, timeout_s: float = SERVICE_TIMEOUT_S) -> str:
        """The manager's lifecycle state label ('unconfigured', 'inactive', 'active', 'finalized')."""
        return call_service(self._get_state, GetState.Request(), timeout_s).current_state.label

    def set_parameters(self, node: str, timeout_s: float = SERVICE_TIMEOUT_S, **values) -> list[SetParametersResult]:
        """Set parameters of ``node`` ('tracker' or 'manager'); -> one result per parameter, in order."""
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()
                                                    for name, value in values.items()])
        return list(call_service(self._parameters[node][0], request, timeout_s).results)

    def get_parameters(self, node: str, names: Sequence[str], timeout_s: float = SERVICE_TIMEOUT_S) -> dict:
        """The values of parameters of ``node`` ('tracker' or 'manager'), by name."""
        response = call_service(self._parameters[node][1], GetParameters.Request(names=list(names)), timeout_s)
        return {name: Parameter.from_parameter_msg(ParameterMsg(name=name, value=value)).value
                for name, value in zip(names, response.values)}

    # -- target topics
    def publish_target(self, x: float, y: float, width: float, height: float, *, track_id: str = '',
                       stamp_ns: int = 0, timeout_s: float = SERVICE_TIMEOUT_S) -> None:
        """A box on ``~/target`` (once the tracker subscribes)."""
        self.wait_for_subscriber(self._target_pub, timeout_s)
        self._target_pub.publish(target_detection((x, y, width, height), track_id, stamp_ns))

    def publish_targets(self, boxes: Iterable[Sequence[float]], stamp_ns: int = 0,
                        timeout_s: float = SERVICE_TIMEOUT_S) -> None:
        """Several boxes at once on ``~/targets`` (once the tracker subscribes)."""
        self.wait_for_subscriber(self._targets_pub, timeout_s)
        array = Detection2DArray(detections=[target_detection(box) for box in boxes])
        array.header.stamp.sec, array.header.stamp.nanosec = ns_to_sec_nanosec(stamp_ns)
        self._targets_pub.publish(array)

    # -- more entities
    def subscribe(self, msg_type, topic: str, callback: Callable, qos: QoSProfile | int = 10):
        """A subscription of the client's node (e.g. to ``~/overlay``); end it with :meth:`destroy`."""
        with self._spin_lock:
            return self.node.create_subscription(msg_type, topic, callback, qos)

    def destroy(self, entity) -> None:
        """Destroy a subscription or publisher of the client's node between two spins (never under one)."""
        with self._spin_lock:
            if not self.node.destroy_subscription(entity):
                self.node.destroy_publisher(entity)

    # -- end
    def close(self) -> None:
        """Stop the spin thread, then destroy the node. The node is never destroyed under a running
        spin (that crashes rclpy): if the thread does not stop in time, the node is left to the
        context's shutdown."""
        self._stop.set()
        self._spinner.join(timeout=CLOSE_TIMEOUT_S)
        if self._spinner.is_alive():
            return
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()

    def __enter__(self) -> TrackerClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _send(client, request, timeout_s: float):
    """``client.call_async(request)`` once the service is there (waiting up to ``timeout_s``); -> the future."""
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise ServiceCallError(f'service {client.srv_name} is not available')
    return client.call_async(request)


def target_detection(box: Sequence[float], track_id: str = '', stamp_ns: int = 0) -> Detection2D:
    """A ``~/target`` message: the box (x, y, width, height; top-left corner) as a Detection2D."""
    x, y, width, height = (float(value) for value in box)
    detection = Detection2D(id=track_id)
    detection.bbox.center.position.x, detection.bbox.center.position.y = x + width / 2, y + height / 2
    detection.bbox.size_x, detection.bbox.size_y = width, height
    detection.header.stamp.sec, detection.header.stamp.nanosec = ns_to_sec_nanosec(stamp_ns)
    return detection
