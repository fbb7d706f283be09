"""Service callbacks that receive the request's send time (the DDS source timestamp), so the tracker
node can apply requests in the order they were sent (:mod:`.request_order`).

rclpy hands a service callback only ``(request, response)``; the request header with the source
timestamp stays inside the executor. :class:`SendTimeExecutor` (the bringup's executor) passes it to
callbacks wrapped in :class:`WithSendTime`. Under any other executor such a callback still works: it is
called as a plain ``(request, response)`` callback with send time 0 (the request's arrival then counts).
"""
from __future__ import annotations

from collections.abc import Callable

from rclpy._rclpy_pybind11 import InvalidHandle
from rclpy.executors import MultiThreadedExecutor, await_or_execute


class WithSendTime:
    """``callback(request, response, sent_ns)`` as a service callback."""

    def __init__(self, callback: Callable):
        self.callback = callback

    def __call__(self, request, response):
        return self.callback(request, response, 0)


class SendTimeExecutor(MultiThreadedExecutor):
    """A MultiThreadedExecutor that gives :class:`WithSendTime` service callbacks the send time."""

    def _take_service(self, srv):
        if not isinstance(srv.callback, WithSendTime):
            return super()._take_service(srv)
        try:
            with srv.handle:
                request, header = srv.handle.service_take_request(srv.srv_type.Request)
        except InvalidHandle:  # destroyed while being taken: nothing to do (as rclpy's own take)
            return None
        if header is None:
            return None

        async def execute() -> None:
            response = await await_or_execute(srv.callback.callback, request, srv.srv_type.Response(),
                                              int(header.source_timestamp))
            srv.send_response(response, header)
        return execute


def message_send_time(info) -> int:
    """The source timestamp (ns) of a message from its MessageInfo (0 when unknown)."""
    try:
        return int(info['source_timestamp'])
    except (TypeError, KeyError):
        return 0
