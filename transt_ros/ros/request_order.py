"""The order of the tracker node's target requests. ROS-free.

Requests apply as if they had run one after the other **in the order they were sent**: each takes a
:class:`Ticket` ordered by its send time (the DDS source timestamp of the service request or the
message: the sender's system clock), then by arrival. Requests run concurrently (a SetTarget with a
stamp catches up through buffered frames), so the order is enforced when one applies:

* a target request is not applied when a request sent *later* already changed what it would change
  (with one target: any change; above one: a ``clear_target``, or a later change of the same track);
* ``clear_target`` clears only the tracks whose last change was sent before it; ``clear_track`` is not
  applied to a track changed by a request sent after it.

The outcome equals applying the requests one by one in send order, whatever order the executor runs
them in. Senders on other machines need synchronised clocks (chrony/NTP) for this across machines.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Ticket:
    """A request's place in the order: send time (ns since the epoch), then arrival."""

    sent_ns: int
    arrival: int
    source: str = field(compare=False, default='')


NEVER = Ticket(0, 0, '')


class RequestOrder:
    """Tickets and what was applied. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._arrivals = itertools.count(1)
        self._in_progress: set[Ticket] = set()
        self._last_change = NEVER          # the latest-sent request that changed any track
        self._last_clear_all = NEVER       # the latest-sent clear_target that was applied
        self._track_changes: dict[str, Ticket] = {}

    def take(self, sent_ns: int, source: str) -> Ticket:
        """The ticket of a request sent at ``sent_ns`` (0: unknown, then its arrival time counts)."""
        with self._lock:
            ticket = Ticket(int(sent_ns) or time.time_ns(), next(self._arrivals), source)
            self._in_progress.add(ticket)
            return ticket

    def done(self, ticket: Ticket) -> None:
        with self._lock:
            self._in_progress.discard(ticket)

    def earlier_in_progress(self, ticket: Ticket) -> int:
        """How many requests sent before ``ticket`` are still running."""
        with self._lock:
            return sum(1 for other in self._in_progress if other < ticket)

    def overtaking(self, ticket: Ticket, track_id: str, one_target: bool) -> Ticket | None:
        """The applied request sent after ``ticket`` that a target request for ``track_id`` ('' : a new
        track) must yield to, else None."""
        with self._lock:
            applied = [self._last_clear_all]
            if one_target:
                applied.append(self._last_change)
            elif track_id:
                applied.append(self._track_changes.get(track_id, NEVER))
            latest = max(applied)
        return latest if latest > ticket else None

    def last_change_of(self, track_id: str) -> Ticket:
        with self._lock:
            return self._track_changes.get(track_id, NEVER)

    def record_change(self, ticket: Ticket, track_id: str) -> None:
        """``ticket`` changed ``track_id`` (set, re-initialised or cleared it)."""
        with self._lock:
            self._track_changes[track_id] = max(ticket, self._track_changes.get(track_id, NEVER))
            self._last_change = max(ticket, self._last_change)

    def record_clear_all(self, ticket: Ticket, cleared: list[str]) -> None:
        with self._lock:
            self._last_clear_all = max(ticket, self._last_clear_all)
            self._last_change = max(ticket, self._last_change)
            for track_id in cleared:
                self._track_changes[track_id] = max(ticket, self._track_changes.get(track_id, NEVER))

    def forget(self, live: set[str]) -> None:
        """Drop the entries of tracks that no longer exist (ids are never reused)."""
        with self._lock:
            self._track_changes = {key: value for key, value in self._track_changes.items() if key in live}
