"""``transt-ros`` / ``ros2 run transt_ros transt_bringup``: both nodes in one process.

``transt_model_manager`` (lifecycle) loads the model into a shared :class:`ModelHandle`;
``transt_tracker`` uses it in memory. One MultiThreadedExecutor runs both; the tracker's
processing runs in its own callback group, so services, clicks, parameters and the lifecycle
services answer while a frame is tracked. Standard ROS arguments apply to both nodes, e.g.
``transt-ros --ros-args --params-file config/transt.yaml -p checkpoint:=transt.pth``.

Stopping: SIGINT (Ctrl-C, also twice in quick succession as ``ros2 launch`` sends it) and SIGTERM
end the process quietly with exit code 0. rclpy's signal handlers are not installed: with them,
a second SIGINT raised ``KeyboardInterrupt`` inside ``executor.shutdown()``, the context died under
callbacks that still logged ("Failed to publish log message to rosout") and a SIGTERM arriving
after rclpy restored the default handler killed the process. Instead one Python handler records
the request; the main thread spins in short slices (:data:`STOP_CHECK_S`), sees it, and shuts down
in order: executor (waits for running callbacks), nodes, then the context. Further signals are
ignored (SIG_IGN: Python's interpreter exit would otherwise restore the default handlers, and a
second SIGINT during the exit killed the process with -2).
"""
from __future__ import annotations

import signal
import sys

import rclpy
from rclpy._rclpy_pybind11 import InvalidHandle
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from .model_handle import ModelHandle
from .model_manager_node import ModelManagerNode
from .send_time import SendTimeExecutor
from .tracker_node import TrackerNode

EXECUTOR_THREADS = 4
GIL_SWITCH_INTERVAL_S = 1e-4
"""The tracking thread gives the GIL up for every torch operation; with the executor's other
threads busy in Python it would wait Python's default 5 ms to get it back each time, hundreds
of times per frame. A short switch interval keeps the track step near its single-thread time."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_CHECK_S = 0.1
"""The main thread returns to Python this often to see a stop request (Python runs signal handlers
only in the main thread, between bytecodes)."""
EXECUTOR_SHUTDOWN_TIMEOUT_S = 10.0


class StopRequest:
    """Set by SIGINT / SIGTERM (any number of times, in any order)."""

    def __init__(self):
        self.signal_name = ''

    def __call__(self, signum, frame) -> None:
        self.signal_name = self.signal_name or signal.Signals(signum).name

    def __bool__(self) -> bool:
        return bool(self.signal_name)


def _wait_for_running_callbacks(executor: MultiThreadedExecutor) -> None:
    """Let the callbacks already handed to the executor's threads finish.

    rclpy 9's ``Executor.shutdown`` does not wait for them (its wait sits behind a flag it has just
    set) and destroys its guard condition while they run; one of them then failed with "cannot use
    Destroyable" and rclpy printed "exception was never retrieved" (1 of 20 stops). The main thread
    no longer dispatches, so draining the thread pool is enough.
    """
    pool = getattr(executor, '_executor', None)  # rclpy's ThreadPoolExecutor (no public accessor)
    if pool is not None:
        pool.shutdown(wait=True)


def spin_once_tolerating_replaced_entities(executor) -> None:
    """``executor.spin_once``, surviving an entity destroyed while the executor gathered its wait set.

    The tracker node replaces its image subscription (with its QoS event handlers) when the publishers'
    QoS offer changes (``image_qos_reliability: auto``) and the bringup destroys the replaced one between
    two waits. rclpy's executor may be adding
    the old subscription's event handler to its wait set in this thread at that moment and then
    raises ``InvalidHandle`` ("cannot use Destroyable because destruction was requested"). Nothing is
    lost: the next call gathers the entities anew, without the destroyed one.
    """
    try:
        executor.spin_once(timeout_sec=STOP_CHECK_S)
    except InvalidHandle:
        pass


def main(args: list[str] | None = None) -> int:
    stop = StopRequest()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    rclpy.init(args=sys.argv if args is None else args, signal_handler_options=SignalHandlerOptions.NO)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    handle = ModelHandle()
    nodes = []
    executor = SendTimeExecutor(num_threads=EXECUTOR_THREADS)
    status = 0
    try:
        try:
            nodes.append(ModelManagerNode(handle))
            tracker = TrackerNode(handle)
            nodes.append(tracker)
        except (ValueError, ParameterException, NameValidationException) as error:
            print(f'transt_ros: invalid configuration: {type(error).__name__}: {error}', file=sys.stderr)
            status = 2
        else:
            for node in nodes:
                executor.add_node(node)
            while not stop and rclpy.ok():
                spin_once_tolerating_replaced_entities(executor)
                tracker.destroy_retired_subscriptions()  # replaced image subscriptions, between two waits
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for signum in STOP_SIGNALS:  # stopping: more signals change nothing (Python's own exit would
            signal.signal(signum, signal.SIG_IGN)  # otherwise restore the default, fatal handlers)
        _wait_for_running_callbacks(executor)
        executor.shutdown(timeout_sec=EXECUTOR_SHUTDOWN_TIMEOUT_S)
        for node in reversed(nodes):
            node.destroy_node()
        handle.close()           # listeners dropped first: their nodes are gone
        rclpy.try_shutdown()
    return status


if __name__ == '__main__':
    sys.exit(main())
