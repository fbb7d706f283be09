"""Evaluation metrics against the got10k toolkit and hand-computed cases."""
from types import SimpleNamespace

import numpy as np
import pytest
from got10k.experiments.got10k import ExperimentGOT10k
from got10k.experiments.otb import ExperimentOTB
from got10k.utils import metrics as got10k_metrics

from transt_ros.evaluation.metrics import (
    SUCCESS_THRESHOLDS,
    aggregate,
    center_error,
    evaluate_sequence,
    latency_summary,
    normalized_center_error,
    precision_curve,
    rect_iou,
    success_curve,
    valid_frame_mask,
)

OTB_EXPERIMENT = SimpleNamespace(nbins_iou=21, nbins_ce=51)
"""Stands in for ``self`` so the toolkit's curve code runs without a dataset on disk."""


def random_boxes(rng: np.random.Generator, count: int, image_size: float = 200.0) -> np.ndarray:
    """Boxes partly outside a ``image_size`` square image, some tiny, some far apart."""
    corners = rng.uniform(-0.2 * image_size, image_size, size=(count, 2))
    sizes = rng.uniform(0.5, 0.6 * image_size, size=(count, 2))
    return np.concatenate([corners, sizes], axis=1)


def noisy_copy(rng: np.random.Generator, boxes: np.ndarray, scale: float) -> np.ndarray:
    noisy = boxes + rng.normal(0.0, scale, size=boxes.shape)
    noisy[:, 2:] = np.maximum(noisy[:, 2:], 0.5)
    return noisy


@pytest.mark.parametrize('seed', range(5))
def test_iou_and_center_error_match_got10k(seed):
    rng = np.random.default_rng(seed)
    truth = random_boxes(rng, 500)
    predicted = np.concatenate([noisy_copy(rng, truth[:250], 10.0), random_boxes(rng, 250)])
    np.testing.assert_allclose(rect_iou(predicted, truth), got10k_metrics.rect_iou(predicted, truth), atol=1e-12)
    np.testing.assert_allclose(center_error(predicted, truth), got10k_metrics.center_error(predicted, truth),
                               atol=1e-9)


def test_iou_edge_cases():
    truth = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [-5, -5, 10, 10]], float)
    predicted = np.array([[10, 0, 10, 10], [0, 0, 10, 10], [5, 0, 10, 10], [0, 0, 10, 10]], float)
    expected = [0.0, 1.0, 50 / 150, 25 / 175]
    np.testing.assert_allclose(rect_iou(predicted, truth), expected, atol=1e-12)
    np.testing.assert_allclose(rect_iou(predicted, truth), got10k_metrics.rect_iou(predicted, truth))


def test_normalized_center_error_divides_by_ground_truth_size():
    truth = np.array([[10, 20, 40, 10]], float)
    predicted = np.array([[14, 23, 40, 10]], float)
    np.testing.assert_allclose(normalized_center_error(predicted, truth), [np.hypot(4 / 40, 3 / 10)])


@pytest.mark.parametrize('seed', range(3))
def test_curves_match_otb_experiment(seed):
    rng = np.random.default_rng(seed)
    truth = random_boxes(rng, 300)
    predicted = noisy_copy(rng, truth, rng.uniform(2, 30))
    metrics = evaluate_sequence('random', predicted, truth)
    ious, errors = ExperimentOTB._calc_metrics(OTB_EXPERIMENT, predicted, truth)
    success, precision = ExperimentOTB._calc_curves(OTB_EXPERIMENT, ious, errors)
    np.testing.assert_allclose(metrics.success_curve, success)
    np.testing.assert_allclose(metrics.precision_curve, precision)
    assert metrics.success_auc == pytest.approx(np.mean(success))
    assert metrics.precision_at_20px == pytest.approx(precision[20])


def test_frame_weighted_ao_matches_got10k_experiment():
    rng = np.random.default_rng(7)
    truths = [random_boxes(rng, n) for n in (30, 120)]
    predictions = [noisy_copy(rng, t, 8.0) for t in truths]
    per_sequence = [evaluate_sequence(f's{i}', p, t, exclude_first_frame=True)
                    for i, (p, t) in enumerate(zip(predictions, truths))]
    dataset = aggregate(per_sequence)
    pooled_ious = np.concatenate([got10k_metrics.rect_iou(p[1:], t[1:]) for p, t in zip(predictions, truths)])
    ao, sr, _, _ = ExperimentGOT10k._evaluate(None, pooled_ious, np.array([]))
    assert dataset.average_overlap_frame_weighted == pytest.approx(ao)
    assert dataset.success_rate_0_5_frame_weighted == pytest.approx(sr)
    assert dataset.average_overlap == pytest.approx(np.mean([m.average_overlap for m in per_sequence]))


def test_ao_and_success_rates_by_hand():
    truth = np.tile([0.0, 0.0, 10.0, 10.0], (4, 1))
    predicted = np.array([[0, 0, 10, 10], [0, 0, 10, 8], [0, 0, 10, 6], [0, 0, 10, 4]], float)
    metrics = evaluate_sequence('hand', predicted, truth)
    assert metrics.average_overlap == pytest.approx((1.0 + 0.8 + 0.6 + 0.4) / 4)
    assert metrics.success_rate_0_5 == pytest.approx(0.75)
    assert metrics.success_rate_0_75 == pytest.approx(0.5)
    got10k_first_frame_excluded = evaluate_sequence('hand', predicted, truth, exclude_first_frame=True)
    assert got10k_first_frame_excluded.n_valid == 3
    assert got10k_first_frame_excluded.average_overlap == pytest.approx(0.6)


def test_success_is_strictly_greater_and_precision_inclusive():
    assert success_curve([0.5])[SUCCESS_THRESHOLDS.tolist().index(0.5)] == 0.0
    assert precision_curve([20.0])[20] == 1.0
    assert precision_curve([20.5])[20] == 0.0


def test_precision_and_normalized_precision_by_hand():
    truth = np.tile([100.0, 100.0, 50.0, 20.0], (4, 1))
    shifts = np.array([[0, 0], [10, 0], [0, 25], [30, 40]], float)
    predicted = truth.copy()
    predicted[:, :2] += shifts
    metrics = evaluate_sequence('hand', predicted, truth)
    assert metrics.precision_at_20px == pytest.approx(0.5)  # errors 0, 10, 25, 50 px
    # normalised errors: 0, 10/50=0.2, 25/20=1.25, hypot(0.6, 2)
    assert metrics.normalized_precision_at_0_2 == pytest.approx(0.5)
    assert metrics.normalized_precision_curve[19] == pytest.approx(0.25)


def test_absent_frames_are_excluded():
    truth = np.array([[0, 0, 10, 10], [np.nan] * 4, [0, 0, 0, 0], [5, 5, -1, 3], [0, 0, 10, 10]], float)
    visible = np.array([True, True, True, True, False])
    predicted = np.tile([50.0, 50.0, 10.0, 10.0], (5, 1))
    predicted[0] = truth[0]
    np.testing.assert_array_equal(valid_frame_mask(truth, visible), [True, False, False, False, False])
    metrics = evaluate_sequence('absent', predicted, truth, visible)
    assert metrics.n_valid == 1
    assert metrics.average_overlap == pytest.approx(1.0)
    assert metrics.success_auc == pytest.approx(20 / 21)  # IoU 1 is not > 1


def test_dropped_frames_count_as_failures():
    truth = np.tile([0.0, 0.0, 10.0, 10.0], (4, 1))
    predicted = truth.copy()
    predicted[2:] = np.nan
    metrics = evaluate_sequence('dropped', predicted, truth)
    assert metrics.n_dropped == 2
    assert metrics.average_overlap == pytest.approx(0.5)
    assert metrics.precision_curve[-1] == pytest.approx(0.5)
    assert metrics.normalized_precision_curve[-1] == pytest.approx(0.5)


def test_latency_summary_percentiles():
    latencies = np.arange(1, 101) / 1000.0  # 1 .. 100 ms
    summary = latency_summary(np.append(latencies, np.nan))
    assert summary.n_frames == 100
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p95_ms == pytest.approx(95.05)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.mean_ms == pytest.approx(50.5)
    assert not hasattr(summary, 'mean_fps')  # one fps definition: the toolkits' speed


def test_speed_is_the_toolkits_mean_of_inverse_times():
    """got10k ``_evaluate``: ``np.mean(1 / times)`` over times > 0 (NaN and 0 skipped), init frame included."""
    truth = np.tile([0.0, 0.0, 10.0, 10.0], (4, 1))
    first = evaluate_sequence('a', truth, truth, times_s=[0.5, 0.1, np.nan, 0.0])
    second = evaluate_sequence('b', truth, truth, times_s=[0.25, 0.25, 0.25, 0.25])
    assert first.speed_fps == pytest.approx(np.mean([2.0, 10.0]))
    assert aggregate([first, second]).speed_fps == pytest.approx(np.mean([2.0, 10.0, 4.0, 4.0, 4.0, 4.0]))
    assert np.isnan(evaluate_sequence('c', truth, truth).speed_fps)


def test_aggregate_averages_curves_over_sequences():
    truth = np.tile([0.0, 0.0, 10.0, 10.0], (2, 1))
    perfect = evaluate_sequence('perfect', truth, truth)
    lost = evaluate_sequence('lost', truth + [100, 0, 0, 0], truth)
    empty = evaluate_sequence('empty', truth, np.full((2, 4), np.nan))
    dataset = aggregate([perfect, lost, empty])
    np.testing.assert_allclose(dataset.success_curve, (perfect.success_curve + lost.success_curve) / 2)
    assert dataset.n_sequences == 3 and dataset.n_valid == 4
    assert dataset.average_overlap == pytest.approx(0.5)
    assert dataset.to_dict()['sequences'][2]['n_valid'] == 0
