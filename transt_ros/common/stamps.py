"""Message stamps as integer nanoseconds since the epoch: the one home of the conversion.

Duck-typed (any object with ``sec`` and ``nanosec``, e.g. ``builtin_interfaces/Time``): no ROS import.
"""
from __future__ import annotations

NANOSECONDS_PER_SECOND = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    """``builtin_interfaces/Time`` (or anything with ``sec`` / ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * NANOSECONDS_PER_SECOND + int(stamp.nanosec)


def ns_to_sec_nanosec(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec), the fields of ``builtin_interfaces/Time``."""
    seconds, nanoseconds = divmod(int(stamp_ns), NANOSECONDS_PER_SECOND)
    return seconds, nanoseconds


def format_stamp(stamp_ns: int) -> str:
    """``1712345678.000000123``: seconds and all nine digits of the nanoseconds."""
    seconds, nanoseconds = ns_to_sec_nanosec(stamp_ns)
    return f'{seconds}.{nanoseconds:09d}'
