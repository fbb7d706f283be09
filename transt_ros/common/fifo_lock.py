"""A lock granted in the order it was asked for."""
from __future__ import annotations

import threading
from collections import deque


class FifoLock:
    """A lock granted in the order it was asked for (``threading.Lock`` is not fair: a thread
    that releases and re-acquires in a loop, like a catch-up, could starve the frame step)."""

    def __init__(self):
        self._condition = threading.Condition()
        self._queue: deque[object] = deque()
        self._held = False

    def __enter__(self) -> FifoLock:
        me = object()
        with self._condition:
            self._queue.append(me)
            self._condition.wait_for(lambda: not self._held and self._queue[0] is me)
            self._queue.popleft()
            self._held = True
        return self

    def __exit__(self, *exc) -> None:
        with self._condition:
            self._held = False
            self._condition.notify_all()
