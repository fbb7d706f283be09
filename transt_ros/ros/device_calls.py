"""Every model call of the process, one at a time in the order asked, and on CUDA all on one thread.

The node's callbacks run on several executor threads (frames, service requests, the catch-up of a new
target) and the manager configures and cleans up on its own. On a CUDA device the model's work must
not interleave across threads: a CUDA graph captured while another thread launches kernels or frees
memory fails or captures the other thread's work, and each thread has its own current stream. So on
CUDA one thread, owned here, runs every model call (templates for service requests, catch-up steps,
the frame step, graph capture and replay, the manager's warm-up and its release of cached memory):
callers hand it the call and wait for the answer. On the CPU the calls run on the caller's thread,
still one at a time (no thread hop: nothing to protect beyond the order).

ROS-free: :class:`~transt_ros.ros.model_handle.ModelHandle` owns one, shared by the manager and the node.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..common.fifo_lock import FifoLock

T = TypeVar('T')
THREAD_NAME = 'transt-device'


class DeviceCalls:
    """``run(fn, *args)``: ``fn(*args)`` in turn (FIFO), on the device thread when :attr:`own_thread` is on."""

    def __init__(self, own_thread: bool = False):
        self._turn = FifoLock()
        self._own_thread = own_thread
        self._executor: ThreadPoolExecutor | None = None
        self._thread_ident: int | None = None
        self._state_lock = threading.Lock()

    @property
    def own_thread(self) -> bool:
        return self._own_thread

    def use_own_thread(self, on: bool) -> None:
        """On for a CUDA model (the manager sets it before loading one); off: calls run on the caller's thread."""
        with self._turn:  # never switched under a running call
            self._own_thread = bool(on)

    def on_device_thread(self) -> bool:
        return self._thread_ident is not None and threading.get_ident() == self._thread_ident

    def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        if self.on_device_thread():  # a call made from inside a call (re-entrant): already in turn
            return fn(*args, **kwargs)
        with self._turn:
            if not self._own_thread:
                return fn(*args, **kwargs)
            return self._device_executor().submit(fn, *args, **kwargs).result()

    def _device_executor(self) -> ThreadPoolExecutor:
        with self._state_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
                self._thread_ident = self._executor.submit(threading.get_ident).result()
            return self._executor

    def close(self) -> None:
        """Stop the device thread (process exit); a later call starts a new one."""
        with self._state_lock:
            executor, self._executor, self._thread_ident = self._executor, None, None
        if executor is not None:
            executor.shutdown(wait=True)
