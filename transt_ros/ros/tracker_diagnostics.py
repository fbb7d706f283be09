"""The tracker node's /diagnostics status, from one typed snapshot (:class:`DiagnosticsInput`)."""
from __future__ import annotations

from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ..tracking.track_registry import INACTIVE, LOST, STATE_NAMES, TRACKING, Track
from .frame_buffer import InputCounts
from .processing_stats import PeriodTimings, ProcessedCounts
from .tracker_outputs import track_diagnostics


@dataclass
class DiagnosticsInput:
    """Everything one /diagnostics status reports. Rates are over ``elapsed_s`` (the last period)."""

    node_name: str
    state: int
    track_id: str
    score: float
    tracks: list[Track]
    now: float
    counts: InputCounts
    previous_counts: InputCounts
    processed: ProcessedCounts
    previous_processed: ProcessedCounts
    elapsed_s: float
    timings: PeriodTimings
    image_topic: str
    image_publishers: int
    image_reliability: str
    model: str
    max_targets: int
    input_problem: str | None = None
    waiting_for_clock: bool = False


def _level_and_message(report: DiagnosticsInput, input_rate: float, lost: int) -> tuple[bytes, str]:
    state, tracks = report.state, report.tracks
    if state == INACTIVE:
        message = f'inactive: {report.model}' + (f'; {report.input_problem}' if report.input_problem else '')
        return DiagnosticStatus.WARN, message
    if report.input_problem:
        return DiagnosticStatus.WARN, report.input_problem
    if report.waiting_for_clock:
        return DiagnosticStatus.WARN, 'use_sim_time is true and no /clock received: latency unknown'
    if input_rate == 0.0:
        return DiagnosticStatus.WARN, f"no images on '{report.image_topic}'"
    if state == LOST and len(tracks) > 1:
        return DiagnosticStatus.WARN, f'all {len(tracks)} tracks lost'
    if state == LOST:
        return DiagnosticStatus.WARN, f'target lost (score {report.score:.2f})'
    if lost > 0:
        return DiagnosticStatus.WARN, f'{lost} frames lost in transport in the last {report.elapsed_s:.1f} s'
    if state == TRACKING and len(tracks) > 1:
        lost_ids = [track.track_id for track in tracks if track.state == LOST]
        return DiagnosticStatus.OK, (f'tracking {len(tracks) - len(lost_ids)} of {len(tracks)} tracks'
                                     + (f" (lost: #{', #'.join(lost_ids)})" if lost_ids else ''))
    if state == TRACKING:
        return DiagnosticStatus.OK, f'tracking #{report.track_id} (score {report.score:.2f})'
    return DiagnosticStatus.OK, STATE_NAMES[state].lower()


def diagnostic_status(report: DiagnosticsInput) -> DiagnosticStatus:
    elapsed = max(report.elapsed_s, 1e-6)
    counts, previous = report.counts, report.previous_counts
    input_rate = (counts.received - previous.received) / elapsed
    output_rate = (report.processed.processed - report.previous_processed.processed) / elapsed
    level, message = _level_and_message(report, input_rate, counts.lost - previous.lost)
    values = {
        'state': STATE_NAMES[report.state], 'track_id': report.track_id, 'score': f'{report.score:.3f}',
        'input_rate_hz': f'{input_rate:.2f}', 'processing_rate_hz': f'{output_rate:.2f}',
        'frames_received': counts.received, 'frames_processed': report.processed.processed,
        'frames_skipped': counts.skipped, 'frames_dropped': counts.dropped,
        'frames_lost': counts.lost, 'qos_incompatible_publishers': counts.qos_incompatible,
        'image_publishers': report.image_publishers,
        'image_qos_reliability': report.image_reliability or 'waiting for a publisher',
        'non_finite_results': report.processed.non_finite,
        'overlays_published': report.processed.overlays, 'model': report.model,
        'max_targets': report.max_targets, 'tracks': len(report.tracks),
    }
    values.update(track_diagnostics(list(report.tracks), report.now))
    values.update(report.timings.means_ms())
    return DiagnosticStatus(level=level, name=f'{report.node_name}: tracking', message=message,
                            hardware_id='transt_ros',
                            values=[KeyValue(key=key, value=str(value)) for key, value in values.items()])
