"""Calling a service from a thread while an executor spins the client's node in another thread.

The calls of :class:`~transt_ros.ros.client.TrackerClient` (the tracker's and the manager's services) go
through :func:`call_service`; use the client rather than calling this directly."""
from __future__ import annotations

import time

POLL_S = 0.005


class ServiceCallError(RuntimeError):
    """The service was not available, or did not answer in time; the message names it."""


def call_service(client, request, timeout_s: float):
    """The response of ``client`` to ``request``: waits up to ``timeout_s`` for the service, then
    up to ``timeout_s`` for the answer (the client's node must be spun by another thread)."""
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise ServiceCallError(f'service {client.srv_name} is not available')
    future = client.call_async(request)
    deadline = time.monotonic() + timeout_s
    while not future.done():
        if time.monotonic() > deadline:
            raise ServiceCallError(f'service {client.srv_name} did not answer within {timeout_s:.0f} s')
        time.sleep(POLL_S)
    return future.result()
