"""What the tracker node publishes about its tracks, built from :class:`~transt_ros.tracking.track_registry.Track`s:
the overall state, ``~/status``'s per-track entries, the overlay and the per-track /diagnostics values.

Boxes are ``(x, y, w, h)`` in pixels, top-left corner; images are RGB uint8.
"""
from __future__ import annotations

import cv2
import numpy as np

from transt_ros.msg import TrackStatus

from ..tracking.depth_position import TargetPosition
from ..tracking.track_registry import IDLE, LOST, STATE_NAMES, TRACKING, Track

STATE_COLOURS = {TRACKING: (0, 220, 0), LOST: (255, 150, 0)}  # RGB, one target
TRACK_PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                 (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
                 (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195))
"""Distinct RGB colours (Sasha Trubetskoy's list), one per track id."""
WHITE = (255, 255, 255)


def overall_state(tracks: list[Track]) -> int:
    """IDLE without tracks; TRACKING when any track is TRACKING; else LOST."""
    if not tracks:
        return IDLE
    return TRACKING if any(track.state == TRACKING for track in tracks) else LOST


def track_colour(track_id: str) -> tuple[int, int, int]:
    """The overlay colour of a track: a palette entry chosen by its id (ids are counters: neighbours differ)."""
    index = int(track_id) if track_id.isdigit() else sum(track_id.encode())
    return TRACK_PALETTE[(index - 1) % len(TRACK_PALETTE)]


def track_statuses(tracks: list[Track], now: float, positions: dict | None = None) -> list[TrackStatus]:
    """``positions``: track id -> TargetPosition or NoPosition on its last frame (with ``depth_topic``):
    ``distance_m`` (NaN without one) and ``position_problem`` (why not; '' with one or without depth)."""
    positions = positions or {}
    return [TrackStatus(track_id=track.track_id, state=track.state, score=float(track.score),
                        frame_count=track.frame_count, lost_s=float(track.lost_for(now)),
                        distance_m=_distance(positions.get(track.track_id)),
                        position_problem=getattr(positions.get(track.track_id), 'reason', ''))
            for track in tracks]


def _distance(position) -> float:
    return float(position.distance_m) if isinstance(position, TargetPosition) else float('nan')


def track_diagnostics(tracks: list[Track], now: float) -> dict[str, str]:
    """``track_<id>``: "STATE score S frames N lost_s T" for every live track."""
    return {f'track_{track.track_id}': f'{STATE_NAMES[track.state]} score {track.score:.3f} frames '
                                        f'{track.frame_count} lost_s {track.lost_for(now):.1f}' for track in tracks}


def state_text(track: Track) -> str:
    """The overlay's state of a track: its state's name; a LOST track that re-acquisition searches
    wider for (``Track.searching``): "LOST searching N", N its wider searches so far."""
    if track.state == LOST and track.searching:
        return f'LOST searching {track.target.search.steps}'
    return STATE_NAMES[track.state]


def _box_corners(box) -> tuple[tuple[int, int], tuple[int, int]]:
    x, y, width, height = (int(round(value)) for value in box)
    return (x, y), (x + width, y + height)


def draw_overlay(rgb: np.ndarray, tracks: list[Track], label: str, several: bool,
                 distances: dict[str, float] | None = None) -> np.ndarray:
    """A copy of ``rgb`` with the tracks drawn. One target (``several`` False): the box in its state's
    colour and "label #id score STATE" at the top, as always; several: every box in its own colour
    (:func:`track_colour`) with "#id score" above it (LOST: thin line, "LOST"), and a count at the top.
    A LOST track under re-acquisition reads "LOST searching N" (:func:`state_text`).
    ``distances``: track id -> metres (with ``depth_topic``), shown after the score."""
    distances = distances or {}
    canvas = np.array(rgb, dtype=np.uint8, order='C')
    if not tracks:
        text, colour = 'IDLE: click or call ~/set_target', WHITE
    elif not several:
        track = tracks[0]
        colour = STATE_COLOURS.get(track.state, WHITE)
        cv2.rectangle(canvas, *_box_corners(track.box), colour, 2)
        text = f'{label} #{track.track_id} {track.score:.2f}{_metres(distances, track)} {state_text(track)}'
    else:
        for track in tracks:
            track_colour_rgb = track_colour(track.track_id)
            top_left, bottom_right = _box_corners(track.box)
            lost = track.state == LOST
            cv2.rectangle(canvas, top_left, bottom_right, track_colour_rgb, 1 if lost else 2)
            state = f' {state_text(track)}' if lost else ''
            caption = f'#{track.track_id} {track.score:.2f}{_metres(distances, track)}{state}'
            cv2.putText(canvas, caption, (top_left[0], max(12, top_left[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        track_colour_rgb, 1, cv2.LINE_AA)
        lost_count = sum(track.state == LOST for track in tracks)
        searching = sum(track.state == LOST and track.searching for track in tracks)
        text = f"{label}: {len(tracks)} tracks, {lost_count} LOST{f', {searching} searching' if searching else ''}"
        colour = WHITE
    cv2.putText(canvas, text, (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return canvas


def _metres(distances: dict[str, float], track: Track) -> str:
    distance = distances.get(track.track_id)
    return f' {distance:.2f} m' if distance is not None else ''
