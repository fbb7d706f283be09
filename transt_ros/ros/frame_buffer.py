"""The tracker node's frames: a one-frame slot (the newest, not yet tracked) and a ring buffer of
recent frames (for stamped targets), with the input counters. ROS-free (messages are duck-typed).

The image callback :meth:`FrameBuffer.put`\\ s every accepted frame; the processing callback
:meth:`FrameBuffer.take_newest`\\ s whatever is newest (an unprocessed frame that is replaced counts as
skipped); target requests read :meth:`FrameBuffer.frames`. One lock guards all of it.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Frame:
    """One received image: ``seq`` counts frames in order of arrival (1, 2, ...); stamps in ns."""

    msg: object
    seq: int
    stamp_ns: int
    received_ns: int


@dataclass
class InputCounts:
    """Frames since start: received (kept), skipped (replaced before being tracked), dropped (too large
    or unconvertible), lost (in transport, reported by DDS), and publishers with an incompatible QoS."""

    received: int = 0
    skipped: int = 0
    dropped: int = 0
    lost: int = 0
    qos_incompatible: int = 0


class FrameBuffer:
    def __init__(self, capacity: int):
        self._lock = threading.Lock()
        self._newest: Frame | None = None
        self._ring: deque[Frame] = deque(maxlen=capacity)
        self._seq = 0
        self._counts = InputCounts()
        self.camera_frame = ''
        """The ``frame_id`` of the newest image ('' before the first)."""
        self.last_arrival = time.monotonic()
        """When the last image arrived (accepted or not), ``time.monotonic()`` seconds; start-up before."""

    def put(self, msg, stamp_ns: int, received_ns: int, frame_id: str) -> Frame:
        with self._lock:
            self._seq += 1
            frame = Frame(msg, self._seq, stamp_ns, received_ns)
            if self._newest is not None:
                self._counts.skipped += 1
            self._newest = frame
            self._ring.append(frame)
            self._counts.received += 1
            self.camera_frame = frame_id
        return frame

    def take_newest(self) -> Frame | None:
        with self._lock:
            frame, self._newest = self._newest, None
        return frame

    def frames(self) -> list[Frame]:
        """The buffered frames, oldest first."""
        with self._lock:
            return list(self._ring)

    def note_arrival(self) -> None:
        self.last_arrival = time.monotonic()

    def count_dropped(self) -> None:
        with self._lock:
            self._counts.dropped += 1

    def count_lost(self, count: int) -> None:
        with self._lock:
            self._counts.lost += count

    def set_qos_incompatible(self, total: int) -> None:
        with self._lock:
            self._counts.qos_incompatible = total

    def counts(self) -> InputCounts:
        with self._lock:
            return InputCounts(**asdict(self._counts))
