"""Evaluation reports: JSON figures, OTB-style plots, overlay videos and a comparison table.

Plots are drawn on a bare ``matplotlib.figure.Figure`` (Agg canvas), so no pyplot backend
is selected or needed.

``results`` arguments map a tracker name to its :class:`metrics.DatasetMetrics` on one data set.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence as SequenceOf
from pathlib import Path

import cv2
import numpy as np
from matplotlib.figure import Figure

from ..common.files import atomic_write_text
from .metrics import (
    NORMALIZED_PRECISION_THRESHOLDS,
    PRECISION_THRESHOLDS_PX,
    SUCCESS_THRESHOLDS,
    DatasetMetrics,
)

PREDICTION_COLOUR_BGR = (0, 0, 255)
GROUND_TRUTH_COLOUR_BGR = (0, 255, 0)
FPS_DEFINITION = ('mean over timed frames of 1 / per-frame time, the initialisation frame included, frames of all '
                  'sequences pooled (got10k toolkit speed_fps)')
AO_DEFINITION = ('AO / SR: frames of all sequences pooled (got10k ExperimentGOT10k.report); per-sequence means are '
                 'in metrics.json as average_overlap / success_rate_*')


def _json_ready(value):
    """Replace NaN / infinity by None (strict JSON) and numpy scalars by Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def metrics_document(results: dict[str, DatasetMetrics], metadata: dict | None = None) -> dict:
    """Every figure of every tracker as a JSON-ready dict (non-finite numbers become null)."""
    return _json_ready({'metadata': metadata or {},
                        'trackers': {name: metrics.to_dict() for name, metrics in results.items()}})


def write_metrics_json(path: Path, results: dict[str, DatasetMetrics], metadata: dict | None = None) -> Path:
    """Write :func:`metrics_document` to ``path`` atomically (temporary file, then rename)."""
    return atomic_write_text(path, json.dumps(metrics_document(results, metadata), indent=2, allow_nan=False))


def _plot_curves(path: Path, thresholds: np.ndarray, curves: dict[str, np.ndarray],
                 scores: dict[str, float], title: str, x_label: str, y_label: str, score_format: str) -> Path:
    figure = Figure(figsize=(6, 5))
    axes = figure.subplots()
    for name in sorted(curves, key=lambda n: scores[n], reverse=True):
        label = f'{name} [{score_format.format(scores[name])}]'
        axes.plot(thresholds, curves[name], linewidth=2, label=label)
    axes.set(xlabel=x_label, ylabel=y_label, title=title,
             xlim=(thresholds[0], thresholds[-1]), ylim=(0, 1.05))
    axes.grid(True, linestyle=':')
    axes.legend(loc='lower left' if y_label.startswith('Success') else 'lower right', fontsize='small')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches='tight')
    return path


def plot_success(path: Path, results: dict[str, DatasetMetrics], title: str = 'Success plots of OPE') -> Path:
    """Success rate vs IoU threshold, one curve per tracker, AUC in the legend (OTB style)."""
    return _plot_curves(path, SUCCESS_THRESHOLDS, {n: m.success_curve for n, m in results.items()},
                        {n: m.success_auc for n, m in results.items()}, title,
                        'Overlap threshold', 'Success rate', '{:.3f}')


def plot_precision(path: Path, results: dict[str, DatasetMetrics],
                   title: str = 'Precision plots of OPE') -> Path:
    """Precision vs centre-error threshold (px), precision at 20 px in the legend."""
    return _plot_curves(path, PRECISION_THRESHOLDS_PX, {n: m.precision_curve for n, m in results.items()},
                        {n: m.precision_at_20px for n, m in results.items()}, title,
                        'Location error threshold (px)', 'Precision', '{:.3f}')


def plot_normalized_precision(path: Path, results: dict[str, DatasetMetrics],
                              title: str = 'Normalized precision plots of OPE') -> Path:
    """Normalised precision vs threshold (LaSOT), value at 0.2 in the legend."""
    return _plot_curves(path, NORMALIZED_PRECISION_THRESHOLDS,
                        {n: m.normalized_precision_curve for n, m in results.items()},
                        {n: m.normalized_precision_at_0_2 for n, m in results.items()}, title,
                        'Normalized location error threshold', 'Normalized precision', '{:.3f}')


def _draw_box(image: np.ndarray, box, colour) -> None:
    if box is None or not np.all(np.isfinite(box)):
        return
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(image, (x, y), (x + w, y + h), colour, 2)


def draw_evaluation_overlay(frame_bgr: np.ndarray, index: int, predicted=None, ground_truth=None,
                 score: float | None = None) -> np.ndarray:
    """Copy of ``frame_bgr`` with ground truth (green), prediction (red), frame index and score."""
    image = frame_bgr.copy()
    _draw_box(image, ground_truth, GROUND_TRUTH_COLOUR_BGR)
    _draw_box(image, predicted, PREDICTION_COLOUR_BGR)
    label = f'#{index}' + (f' score {score:.2f}' if score is not None and math.isfinite(score) else '')
    cv2.putText(image, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def write_frames_overlay_video(path: Path, frame_paths: SequenceOf, predicted_boxes, ground_truth=None,
                        scores=None, fps: float = 30.0) -> Path:
    """Overlay video of a run; MP4 (``mp4v``) when OpenCV can encode it, else a GIF (imageio).

    Returns the path written (``path`` with suffix ``.gif`` on fallback). Unreadable frames
    are skipped.
    """
    frames = []
    for index, frame_path in enumerate(frame_paths):
        image = cv2.imread(str(frame_path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        frames.append(draw_evaluation_overlay(
            image, index, predicted_boxes[index], None if ground_truth is None else ground_truth[index],
            None if scores is None else float(scores[index])))
    if not frames:
        raise ValueError('no readable frame to write')
    return write_video(path, frames, fps)


def write_video(path: Path, frames_bgr: SequenceOf, fps: float = 30.0) -> Path:
    """BGR frames (resized to the first one's size) to an MP4 (``mp4v``) when OpenCV can
    encode it, else to a GIF (imageio); returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames_bgr[0].shape[:2]
    if path.suffix.lower() != '.gif':
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
        if writer.isOpened():
            for frame in frames_bgr:
                writer.write(cv2.resize(frame, (width, height)))
            writer.release()
            if path.is_file() and path.stat().st_size > 0:
                return path
    import imageio.v2 as imageio

    gif_path = path.with_suffix('.gif')
    rgb_frames = [cv2.cvtColor(cv2.resize(f, (width, height)), cv2.COLOR_BGR2RGB) for f in frames_bgr]
    imageio.mimsave(gif_path, rgb_frames, duration=1.0 / fps, loop=0)
    return gif_path


TABLE_COLUMNS = (
    ('Success AUC', lambda m: m.success_auc), ('Precision@20px', lambda m: m.precision_at_20px),
    ('Norm. precision@0.2', lambda m: m.normalized_precision_at_0_2),
    ('AO', lambda m: m.average_overlap_frame_weighted), ('SR0.5', lambda m: m.success_rate_0_5_frame_weighted),
    ('SR0.75', lambda m: m.success_rate_0_75_frame_weighted), ('FPS', lambda m: m.speed_fps),
    ('p95 ms', lambda m: m.latency.p95_ms if m.latency else float('nan')),
)


def comparison_table(results: dict[str, DatasetMetrics]) -> str:
    """Markdown table, one row per tracker sorted by success AUC (best first), with the AO and FPS
    definitions under it."""
    header = ['Tracker', 'Sequences', 'Dropped'] + [title for title, _ in TABLE_COLUMNS]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for name, metrics in sorted(results.items(), key=lambda item: item[1].success_auc, reverse=True):
        cells = [name, str(metrics.n_sequences), str(metrics.n_dropped)]
        values = [value(metrics) for _, value in TABLE_COLUMNS]
        cells += [f'{value:.3f}' if math.isfinite(value) else '-' for value in values]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', f'{AO_DEFINITION}. FPS: {FPS_DEFINITION}.']
    return '\n'.join(lines) + '\n'


def write_report(directory: Path, results: dict[str, DatasetMetrics], metadata: dict | None = None,
                 print_table: bool = True) -> dict[str, Path]:
    """``metrics.json``, ``success.png``, ``precision.png``, ``normalized_precision.png`` and
    ``comparison.md`` under ``directory``; prints the table when ``print_table``."""
    directory = Path(directory)
    table = comparison_table(results)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / 'comparison.md', table)
    if print_table:
        print(table)
    return {
        'json': write_metrics_json(directory / 'metrics.json', results, metadata),
        'success_plot': plot_success(directory / 'success.png', results),
        'precision_plot': plot_precision(directory / 'precision.png', results),
        'normalized_precision_plot': plot_normalized_precision(
            directory / 'normalized_precision.png', results),
        'table': directory / 'comparison.md',
    }
