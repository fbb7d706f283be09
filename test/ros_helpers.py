"""Helpers for tests that start ROS 2 nodes (rclpy), shared by the project's ROS tests.

DDS must stay on loopback on CI / development machines, and concurrent test runs must not see
each other's nodes. Every ROS test therefore runs with

* ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (forced), and
* a ``ROS_DOMAIN_ID`` per test run: the one already in the environment (``scripts/env.sh`` picks
  one per shell), else one derived from the process id.

Typical use::

    from .ros_helpers import ros_context, spin_until   # test/ is a package

    def test_something():
        with ros_context():
            node = rclpy.create_node('probe')
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            ...
            assert spin_until(executor, lambda: got, timeout_s=10.0)

For subprocesses (a node started with ``subprocess``), pass ``env=ros_env()``.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

LOCALHOST = 'LOCALHOST'


def run_domain_id() -> int:
    """The ROS domain id of this test run: $ROS_DOMAIN_ID if set, else one derived from the pid.

    The derived id is in 1..101, the range that is safe on Linux (ports below the ephemeral range).
    """
    value = os.environ.get('ROS_DOMAIN_ID', '').strip()
    if value:
        return int(value)
    return 1 + os.getpid() % 101


def ros_env(domain_id: int | None = None) -> dict[str, str]:
    """Set the ROS test environment in ``os.environ`` and return a copy of the whole environment.

    Forces DDS discovery onto loopback and fixes the domain id (see the module docstring); the
    returned dict is meant for ``subprocess.run(..., env=ros_env())``.
    """
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = LOCALHOST
    os.environ.pop('ROS_STATIC_PEERS', None)
    os.environ['ROS_DOMAIN_ID'] = str(run_domain_id() if domain_id is None else domain_id)
    return dict(os.environ)


@contextlib.contextmanager
def ros_context(domain_id: int | None = None, args: list[str] | None = None) -> Iterator[object]:
    """``rclpy.init`` / ``shutdown`` of the default context, with the ROS test environment.

    Yields the (default) :class:`rclpy.context.Context`, so nodes and executors can be created
    without a ``context`` argument. Nodes still alive at exit are destroyed by the shutdown.
    """
    import rclpy  # imported here so that ROS-free tests can import this module

    ros_env(domain_id)
    rclpy.init(args=args, domain_id=int(os.environ['ROS_DOMAIN_ID']))
    try:
        yield rclpy.get_default_context()
    finally:
        rclpy.try_shutdown()


def spin_until(executor, predicate: Callable[[], bool], timeout_s: float = 10.0,
               step_s: float = 0.05) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout_s`` passed; return the predicate."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return bool(predicate())
        executor.spin_once(timeout_sec=step_s)
    return True
