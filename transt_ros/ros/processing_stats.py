"""The tracker node's processing figures: frames processed, overlays drawn, non-finite answers, the
processing rate, and per-stage timings collected between two /diagnostics ticks. ROS-free, thread-safe."""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

TIMING_STAGES = ('latency', 'receive', 'wait', 'convert', 'track', 'publish', 'reacquire')
"""Reported in /diagnostics as ``<stage>_ms``: latency (image stamp -> published), receive (stamp ->
arrival), wait (arrival -> processing start), convert (message -> RGB), track (the model), publish,
reacquire (the part of track spent searching wider for LOST tracks, over the frames that had one)."""


@dataclass
class ProcessedCounts:
    processed: int = 0
    overlays: int = 0
    non_finite: int = 0


@dataclass
class FrameTimings:
    """One processed frame's stage times in ms (latency and receive: None when unknown; reacquire:
    None when no track was LOST or ``reacquire`` is off)."""

    wait: float
    convert: float
    track: float
    publish: float
    latency: float | None = None
    receive: float | None = None
    reacquire: float | None = None


@dataclass
class PeriodTimings:
    """The stage times (ms) of the frames processed in one diagnostics period."""

    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def means_ms(self) -> dict[str, str]:
        """``<stage>_ms`` -> the mean with 2 decimals, or 'n/a' without samples."""
        return {f'{stage}_ms': (f'{sum(values) / len(values):.2f}' if (values := self.samples.get(stage)) else 'n/a')
                for stage in TIMING_STAGES}


class ProcessingStats:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts = ProcessedCounts()
        self._period = PeriodTimings()
        self._processed_times: deque[float] = deque(maxlen=30)

    def record_frame(self, timings: FrameTimings) -> None:
        with self._lock:
            self._counts.processed += 1
            self._processed_times.append(time.perf_counter())
            for stage in TIMING_STAGES:
                value = getattr(timings, stage)
                if value is not None:
                    self._period.samples[stage].append(value)

    def count_overlay(self) -> None:
        with self._lock:
            self._counts.overlays += 1

    def count_non_finite(self, count: int) -> None:
        with self._lock:
            self._counts.non_finite += count

    def counts(self) -> ProcessedCounts:
        with self._lock:
            return ProcessedCounts(self._counts.processed, self._counts.overlays, self._counts.non_finite)

    def fps(self) -> float:
        """Frames processed per second over the last 30."""
        with self._lock:
            times = list(self._processed_times)
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def take_period(self) -> PeriodTimings:
        """The timings since the last call (and start a new period)."""
        with self._lock:
            period, self._period = self._period, PeriodTimings()
        return period
