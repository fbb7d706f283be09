"""``transt-ros`` / ``ros2 run transt_ros transt_bringup``: both nodes in one process.

``transt_model_manager`` (lifecycle) loads the model into a shared :class:`ModelHandle`;
``transt_tracker`` uses it in memory. One MultiThreadedExecutor runs both; the tracker's
processing runs in its own callback group, so services, clicks, parameters and the lifecycle
services answer while a frame is tracked. Standard ROS arguments apply to both nodes, e.g.
``transt-ros --ros-args --params-file config/transt.yaml -p checkpoint:=transt.pth -p autostart:=true``.
"""
from __future__ import annotations

import sys

import rclpy
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

from .model_handle import ModelHandle
from .model_manager_node import ModelManagerNode
from .tracker_node import TrackerNode

EXECUTOR_THREADS = 4
GIL_SWITCH_INTERVAL_S = 1e-4
"""The tracking thread gives the GIL up for every torch operation; with the executor's other
threads busy in Python it would wait Python's default 5 ms to get it back each time, hundreds
of times per frame. A short switch interval keeps the track step near its single-thread time."""


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=sys.argv if args is None else args)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    handle = ModelHandle()
    nodes = []
    executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
    status = 0
    try:
        try:
            nodes.append(ModelManagerNode(handle))
            nodes.append(TrackerNode(handle))
        except (ValueError, ParameterException, NameValidationException) as error:
            print(f'transt_ros: invalid configuration: {type(error).__name__}: {error}', file=sys.stderr)
            status = 2
        else:
            for node in nodes:
                executor.add_node(node)
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        handle.release()
        executor.shutdown()
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == '__main__':
    sys.exit(main())
