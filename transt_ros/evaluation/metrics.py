"""One-pass evaluation metrics (OTB, LaSOT, GOT-10k conventions), numpy only.

Boxes are ``(N, 4)`` float arrays ``x, y, w, h`` with ``x, y`` the top-left corner, in pixels.

Conventions, matched to the reference toolkits:

* IoU uses ``x + w`` as the right edge (no ``+1``), with ``eps`` in the union, and is clipped
  to ``[0, 1]`` (``got10k.utils.metrics.rect_iou``).
* Centres are ``x + (w - 1) / 2`` (``got10k.utils.metrics.center_error``, pytracking
  ``calc_err_center``); the ``- 1`` cancels in a difference.
* Success rate at threshold ``t`` is the fraction of frames with IoU strictly ``> t``;
  precision at ``d`` is the fraction with centre error ``<= d`` (got10k ``ExperimentOTB``,
  pytracking). AUC is the mean of the 21-point success curve.
* Curves are computed per sequence, then averaged over sequences (OTB, LaSOT, pytracking).
  The got10k toolkit's GOT-10k AO pools the frames of all sequences instead; both are given.
* GOT-10k (``ExperimentGOT10k.report``) clips both boxes to the image before the IoU
  (``rect_iou(..., bound=(width, height))``): ``bound`` does the same here.
* Speed (fps), the toolkits' definition (got10k ``ExperimentOTB`` / ``ExperimentGOT10k``): the
  mean over timed frames of ``1 / time``, every recorded time counted (the initialisation frame
  included, times ``<= 0`` and NaN skipped); the data-set figure pools the frames of all
  sequences (GOT-10k's ``speed_fps``).

Frames excluded from every per-frame metric ("invalid" frames):

* ground truth that is NaN or has ``w <= 0`` or ``h <= 0`` (UAV123 marks an absent target
  with NaN, LaSOT with ``0,0,0,0``; pytracking's ``valid`` rule);
* frames where an explicit ``visible`` mask is False (GOT-10k: frames whose
  ``absence.label`` is 1, i.e. ``cover.label`` is 0, are dropped before AO/SR);
* the initialisation frame when ``exclude_first_frame`` is set (GOT-10k evaluates
  ``boxes[1:]``; OTB and the got10k ``ExperimentOTB`` include frame 0, where the recorded
  box is the ground truth itself).

Dropped frames: a prediction row that is NaN (the tracker produced no box) counts as a
failure on a valid frame: IoU 0 and an infinite centre error.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
"""IoU thresholds of the success curve (21 points, OTB / got10k ``nbins_iou``)."""
PRECISION_THRESHOLDS_PX = np.arange(0, 51, dtype=float)
"""Centre-error thresholds of the precision curve, pixels (51 points, ``nbins_ce``)."""
NORMALIZED_PRECISION_THRESHOLDS = np.arange(0, 51, dtype=float) / 100.0
"""Thresholds of the normalised precision curve, in units of ground-truth size (LaSOT)."""
PRECISION_AT_PX = 20.0
NORMALIZED_PRECISION_AT = 0.2


def _as_boxes(boxes) -> np.ndarray:
    array = np.asarray(boxes, dtype=float)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f'expected boxes of shape (N, 4), got {array.shape}')
    return array


def _box_centers(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, :2] + (boxes[:, 2:] - 1.0) / 2.0


def clip_boxes(boxes, bound) -> np.ndarray:
    """Boxes clipped to an image of ``bound = (width, height)``, as ``got10k.utils.metrics.rect_iou``
    does: ``x`` to ``[0, width]``, then ``w`` to ``[0, width - x]`` (same for ``y``, ``h``)."""
    boxes = _as_boxes(boxes).copy()
    width, height = float(bound[0]), float(bound[1])
    boxes[:, 0] = np.clip(boxes[:, 0], 0, width)
    boxes[:, 1] = np.clip(boxes[:, 1], 0, height)
    boxes[:, 2] = np.clip(boxes[:, 2], 0, width - boxes[:, 0])
    boxes[:, 3] = np.clip(boxes[:, 3], 0, height - boxes[:, 1])
    return boxes


def rect_iou(boxes_a, boxes_b, bound=None) -> np.ndarray:
    """Intersection over union of paired boxes, ``(N,)`` in ``[0, 1]``.

    Same formula as ``got10k.utils.metrics.rect_iou``: right edge ``x + w``, union ``+ eps``,
    clipped to ``[0, 1]``; with ``bound = (width, height)`` both boxes are first clipped to the
    image (:func:`clip_boxes`). NaN boxes give NaN.
    """
    a, b = _as_boxes(boxes_a), _as_boxes(boxes_b)
    if a.shape != b.shape:
        raise ValueError(f'box arrays differ in shape: {a.shape} vs {b.shape}')
    if bound is not None:
        a, b = clip_boxes(a, bound), clip_boxes(b, bound)
    left = np.maximum(a[:, 0], b[:, 0])
    top = np.maximum(a[:, 1], b[:, 1])
    right = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    bottom = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    area_inter = np.maximum(right - left, 0.0) * np.maximum(bottom - top, 0.0)
    area_union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - area_inter
    return np.clip(area_inter / (area_union + np.finfo(float).eps), 0.0, 1.0)


def center_error(boxes_a, boxes_b) -> np.ndarray:
    """Euclidean distance between paired box centres, pixels, ``(N,)``."""
    a, b = _as_boxes(boxes_a), _as_boxes(boxes_b)
    return np.sqrt(np.sum((_box_centers(a) - _box_centers(b)) ** 2, axis=-1))


def normalized_center_error(predicted, ground_truth) -> np.ndarray:
    """Centre distance with each axis divided by the ground-truth ``w, h`` (LaSOT), ``(N,)``.

    pytracking ``calc_err_center(normalized=True)``: both centres are divided by the
    ground-truth size before the Euclidean norm; unitless.
    """
    predicted, ground_truth = _as_boxes(predicted), _as_boxes(ground_truth)
    size = ground_truth[:, 2:]
    offset = (_box_centers(predicted) - _box_centers(ground_truth)) / size
    return np.sqrt(np.sum(offset ** 2, axis=-1))


def valid_frame_mask(ground_truth, visible=None, exclude_first_frame: bool = False) -> np.ndarray:
    """Boolean ``(N,)`` mask of frames that count in the metrics (see module docstring)."""
    ground_truth = _as_boxes(ground_truth)
    with np.errstate(invalid='ignore'):
        positive_size = (ground_truth[:, 2] > 0) & (ground_truth[:, 3] > 0)
        valid = np.all(np.isfinite(ground_truth), axis=1) & positive_size
    if visible is not None:
        visible = np.asarray(visible, dtype=bool)
        if visible.shape != valid.shape:
            raise ValueError(f'visible mask has shape {visible.shape}, expected {valid.shape}')
        valid &= visible
    if exclude_first_frame and len(valid):
        valid[0] = False
    return valid


def dropped_frame_mask(predictions) -> np.ndarray:
    """Boolean ``(N,)`` mask of frames without a prediction (any NaN in the row)."""
    return ~np.all(np.isfinite(_as_boxes(predictions)), axis=1)


@dataclass(frozen=True)
class FrameErrors:
    """Per-frame errors on the valid frames only (length ``n_valid``)."""

    iou: np.ndarray
    center_error_px: np.ndarray
    normalized_center_error: np.ndarray


def frame_errors(predictions, ground_truth, valid: np.ndarray, bound=None) -> FrameErrors:
    """Errors on the ``valid`` frames; dropped predictions get IoU 0 and infinite errors.
    ``bound``: ``(width, height)`` to clip the boxes to before the IoU (GOT-10k)."""
    predictions, ground_truth = _as_boxes(predictions), _as_boxes(ground_truth)
    if predictions.shape != ground_truth.shape:
        raise ValueError(f'{len(predictions)} predictions for {len(ground_truth)} ground-truth rows')
    predicted, truth = predictions[valid], ground_truth[valid]
    dropped = dropped_frame_mask(predicted)
    filled = np.where(dropped[:, None], 0.0, predicted)
    iou = np.where(dropped, 0.0, rect_iou(filled, truth, bound))
    error = np.where(dropped, np.inf, center_error(filled, truth))
    normalized = np.where(dropped, np.inf, normalized_center_error(filled, truth))
    return FrameErrors(iou, error, normalized)


def success_curve(ious, thresholds=SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with IoU ``> threshold`` for each threshold; zeros when empty."""
    ious = np.asarray(ious, dtype=float)
    if ious.size == 0:
        return np.zeros(len(thresholds))
    return np.mean(ious[:, None] > np.asarray(thresholds)[None, :], axis=0)


def precision_curve(errors, thresholds=PRECISION_THRESHOLDS_PX) -> np.ndarray:
    """Fraction of frames with error ``<= threshold`` for each threshold; zeros when empty."""
    errors = np.asarray(errors, dtype=float)
    if errors.size == 0:
        return np.zeros(len(thresholds))
    return np.mean(errors[:, None] <= np.asarray(thresholds)[None, :], axis=0)


@dataclass(frozen=True)
class LatencySummary:
    """Per-frame processing time (the speed in fps is :func:`toolkit_speed`, one definition)."""

    n_frames: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def latency_summary(latencies_s) -> LatencySummary:
    """Mean and percentiles (ms) of per-frame latencies given in seconds; NaN ignored."""
    latencies = np.asarray(latencies_s, dtype=float).ravel()
    latencies = latencies[np.isfinite(latencies)]
    if latencies.size == 0:
        return LatencySummary(0, float('nan'), float('nan'), float('nan'), float('nan'))
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1e3
    return LatencySummary(n_frames=int(latencies.size), mean_ms=float(latencies.mean() * 1e3),
                          p50_ms=float(p50), p95_ms=float(p95), p99_ms=float(p99))


def toolkit_speed(times_s) -> tuple[int, float]:
    """``(timed frames, sum of 1 / time)`` of per-frame times (s): NaN and times ``<= 0`` skipped,
    as the got10k toolkit reads a ``*_time.txt``. Speed in fps = sum / frames."""
    times = np.asarray(times_s, dtype=float).ravel()
    times = times[np.isfinite(times) & (times > 0)]
    return int(times.size), float(np.sum(1.0 / times))


class CurveFigures:
    """The single figures read off ``success_curve``, ``precision_curve``, ``normalized_precision_curve``."""

    @property
    def success_auc(self) -> float:
        return float(np.mean(self.success_curve))

    @property
    def precision_at_20px(self) -> float:
        return float(self.precision_curve[int(PRECISION_AT_PX)])

    @property
    def normalized_precision_at_0_2(self) -> float:
        return float(self.normalized_precision_curve[int(round(NORMALIZED_PRECISION_AT * 100))])


@dataclass
class SequenceMetrics(CurveFigures):
    """Figures of one tracker on one sequence (curves over the module's thresholds)."""

    name: str
    n_frames: int
    n_valid: int
    n_dropped: int
    success_curve: np.ndarray
    precision_curve: np.ndarray
    normalized_precision_curve: np.ndarray
    iou_sum: float
    n_iou_above_0_5: int
    n_iou_above_0_75: int
    latency: LatencySummary | None = None
    n_timed: int = 0
    inverse_time_sum: float = 0.0

    @property
    def speed_fps(self) -> float:
        """The toolkits' speed: mean over timed frames of ``1 / time`` (NaN when untimed)."""
        return self.inverse_time_sum / self.n_timed if self.n_timed else float('nan')

    @property
    def average_overlap(self) -> float:
        return self.iou_sum / self.n_valid if self.n_valid else float('nan')

    @property
    def success_rate_0_5(self) -> float:
        return self.n_iou_above_0_5 / self.n_valid if self.n_valid else float('nan')

    @property
    def success_rate_0_75(self) -> float:
        return self.n_iou_above_0_75 / self.n_valid if self.n_valid else float('nan')

    def to_dict(self) -> dict:
        """JSON-ready figures, curves as lists."""
        return {
            'name': self.name, 'n_frames': self.n_frames, 'n_valid': self.n_valid,
            'n_dropped': self.n_dropped, 'success_auc': self.success_auc,
            'precision_at_20px': self.precision_at_20px,
            'normalized_precision_at_0_2': self.normalized_precision_at_0_2,
            'average_overlap': self.average_overlap, 'success_rate_0_5': self.success_rate_0_5,
            'success_rate_0_75': self.success_rate_0_75, 'speed_fps': self.speed_fps,
            'success_curve': self.success_curve.tolist(), 'precision_curve': self.precision_curve.tolist(),
            'normalized_precision_curve': self.normalized_precision_curve.tolist(),
            'latency': asdict(self.latency) if self.latency is not None else None,
        }


def evaluate_sequence(name: str, predictions, ground_truth, visible=None,
                      exclude_first_frame: bool = False, latencies_s=None, times_s=None,
                      bound=None) -> SequenceMetrics:
    """Score one sequence: predictions and ground truth ``(N, 4)``, optional ``visible`` ``(N,)``.

    ``latencies_s`` holds per-frame tracking times in seconds (NaN for frames not tracked), for the
    latency percentiles; ``times_s`` every recorded time (init frame included), for the speed
    (default: ``latencies_s``). ``bound``: ``(width, height)`` to clip boxes to (GOT-10k).
    """
    ground_truth = _as_boxes(ground_truth)
    valid = valid_frame_mask(ground_truth, visible, exclude_first_frame)
    errors = frame_errors(predictions, ground_truth, valid, bound)
    timed = times_s if times_s is not None else latencies_s
    n_timed, inverse_time_sum = toolkit_speed(timed) if timed is not None else (0, 0.0)
    return SequenceMetrics(
        name=name, n_frames=len(ground_truth), n_valid=int(valid.sum()),
        n_dropped=int(dropped_frame_mask(_as_boxes(predictions)[valid]).sum()),
        success_curve=success_curve(errors.iou),
        precision_curve=precision_curve(errors.center_error_px),
        normalized_precision_curve=precision_curve(errors.normalized_center_error,
                                                   NORMALIZED_PRECISION_THRESHOLDS),
        iou_sum=float(errors.iou.sum()), n_iou_above_0_5=int(np.sum(errors.iou > 0.5)),
        n_iou_above_0_75=int(np.sum(errors.iou > 0.75)),
        latency=latency_summary(latencies_s) if latencies_s is not None else None,
        n_timed=n_timed, inverse_time_sum=inverse_time_sum)


@dataclass
class DatasetMetrics(CurveFigures):
    """Dataset-level figures: curves and per-sequence figures averaged over sequences.

    ``*_frame_weighted`` pool the frames of all sequences, as the got10k toolkit's
    ``ExperimentGOT10k.report`` does for AO and SR; the sequence means weigh each sequence
    equally (OTB, LaSOT, pytracking).
    """

    n_sequences: int
    n_frames: int
    n_valid: int
    n_dropped: int
    success_curve: np.ndarray
    precision_curve: np.ndarray
    normalized_precision_curve: np.ndarray
    average_overlap: float
    success_rate_0_5: float
    success_rate_0_75: float
    average_overlap_frame_weighted: float
    success_rate_0_5_frame_weighted: float
    success_rate_0_75_frame_weighted: float
    latency: LatencySummary | None = None
    sequences: list[SequenceMetrics] = field(default_factory=list)
    speed_fps: float = float('nan')
    """The toolkits' speed over the frames of all sequences (GOT-10k ``speed_fps``)."""

    def to_dict(self, include_sequences: bool = True) -> dict:
        """JSON-ready figures, curves as lists; per-sequence figures under ``sequences``."""
        figures = {
            'n_sequences': self.n_sequences, 'n_frames': self.n_frames, 'n_valid': self.n_valid,
            'n_dropped': self.n_dropped, 'success_auc': self.success_auc,
            'precision_at_20px': self.precision_at_20px,
            'normalized_precision_at_0_2': self.normalized_precision_at_0_2,
            'average_overlap': self.average_overlap, 'success_rate_0_5': self.success_rate_0_5,
            'success_rate_0_75': self.success_rate_0_75,
            'average_overlap_frame_weighted': self.average_overlap_frame_weighted,
            'success_rate_0_5_frame_weighted': self.success_rate_0_5_frame_weighted,
            'success_rate_0_75_frame_weighted': self.success_rate_0_75_frame_weighted,
            'speed_fps': self.speed_fps,
            'success_curve': self.success_curve.tolist(), 'precision_curve': self.precision_curve.tolist(),
            'normalized_precision_curve': self.normalized_precision_curve.tolist(),
            'latency': asdict(self.latency) if self.latency is not None else None,
        }
        if include_sequences:
            figures['sequences'] = [sequence.to_dict() for sequence in self.sequences]
        return figures


def aggregate(sequences: list[SequenceMetrics], latencies_s=None) -> DatasetMetrics:
    """Average per-sequence figures; sequences without valid frames are skipped in means.

    ``latencies_s``: optional pooled per-frame latencies (s) of all sequences for the
    dataset-level percentiles (percentiles cannot be averaged).
    """
    scored = [s for s in sequences if s.n_valid > 0]
    n_valid = sum(s.n_valid for s in sequences)

    def sequence_mean(values) -> float:
        return float(np.mean(values)) if scored else float('nan')

    def pooled(count) -> float:
        return count / n_valid if n_valid else float('nan')

    def mean_curve(curves, length) -> np.ndarray:
        return np.mean(curves, axis=0) if scored else np.zeros(length)

    n_timed = sum(s.n_timed for s in sequences)
    pooled_speed = sum(s.inverse_time_sum for s in sequences) / n_timed if n_timed else float('nan')

    return DatasetMetrics(
        n_sequences=len(sequences), n_frames=sum(s.n_frames for s in sequences), n_valid=n_valid,
        n_dropped=sum(s.n_dropped for s in sequences),
        success_curve=mean_curve([s.success_curve for s in scored], len(SUCCESS_THRESHOLDS)),
        precision_curve=mean_curve([s.precision_curve for s in scored], len(PRECISION_THRESHOLDS_PX)),
        normalized_precision_curve=mean_curve([s.normalized_precision_curve for s in scored],
                                              len(NORMALIZED_PRECISION_THRESHOLDS)),
        average_overlap=sequence_mean([s.average_overlap for s in scored]),
        success_rate_0_5=sequence_mean([s.success_rate_0_5 for s in scored]),
        success_rate_0_75=sequence_mean([s.success_rate_0_75 for s in scored]),
        average_overlap_frame_weighted=pooled(sum(s.iou_sum for s in sequences)),
        success_rate_0_5_frame_weighted=pooled(sum(s.n_iou_above_0_5 for s in sequences)),
        success_rate_0_75_frame_weighted=pooled(sum(s.n_iou_above_0_75 for s in sequences)),
        latency=latency_summary(latencies_s) if latencies_s is not None else None,
        sequences=list(sequences), speed_fps=pooled_speed)
