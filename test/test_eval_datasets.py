"""Benchmark readers, submission writers, one-pass runs and the OpenCV reference trackers."""
import functools
from pathlib import Path

import cv2
import numpy as np
import pytest

from transt_ros.evaluation.datasets import (
    Sequence,
    read_dataset,
    read_got10k,
    read_lasot,
    read_nfs,
    read_otb,
    read_results,
    read_trackingnet,
    read_uav123,
    write_got10k_submission,
    write_results,
    write_trackingnet_submission,
)
from transt_ros.evaluation.reference_trackers import OpenCVTracker, TrackResult, build_reference_tracker
from transt_ros.evaluation.run_dataset import evaluate_sequences, run_sequence
from transt_ros.evaluation.scoring import score_runs

SQUARE_SIZE = 24


def moving_square_frames(count: int, seed: int = 0, size: int = 96) -> tuple[list[np.ndarray], np.ndarray]:
    """RGB frames of a textured square moving over dark noise, and its ``(count, 4)`` boxes."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (SQUARE_SIZE, SQUARE_SIZE, 3), dtype=np.uint8)
    frames, boxes = [], []
    for index in range(count):
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        x, y = 10 + 2 * index, 20 + index
        image[y:y + SQUARE_SIZE, x:x + SQUARE_SIZE] = texture
        frames.append(image)
        boxes.append((x, y, SQUARE_SIZE, SQUARE_SIZE))
    return frames, np.array(boxes, dtype=float)


def write_frames(directory: Path, frames, names) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name in names]
    for path, frame in zip(paths, frames):
        assert cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98])
    return paths


def tiny_frames(count: int) -> list[np.ndarray]:
    return [np.full((8, 8, 3), 10 * i, np.uint8) for i in range(count)]


def write_rows(path: Path, rows, separator: str = ',') -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(separator.join(str(v) for v in row) + '\n' for row in rows))


BOXES = [[1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 6]]


def test_otb_separators_targets_and_missing_frames(tmp_path):
    write_frames(tmp_path / 'Basketball' / 'img', tiny_frames(4), ['0001.jpg', '0002.jpg', '0003.jpg', '0004.jpg'])
    write_rows(tmp_path / 'Basketball' / 'groundtruth_rect.txt', BOXES, '\t')
    write_frames(tmp_path / 'Jogging' / 'img', tiny_frames(3), ['0001.jpg', '0003.jpg'])
    write_rows(tmp_path / 'Jogging' / 'groundtruth_rect.1.txt', BOXES, ',')
    write_rows(tmp_path / 'Jogging' / 'groundtruth_rect.2.txt', BOXES, ' ')
    sequences = {s.name: s for s in read_otb(tmp_path)}
    assert sorted(sequences) == ['Basketball', 'Jogging.1', 'Jogging.2']
    basketball = sequences['Basketball']
    assert len(basketball) == 3 and basketball.frame_paths[0].name == '0001.jpg'
    np.testing.assert_array_equal(basketball.ground_truth, BOXES)
    assert sequences['Jogging.2'].missing_frames == (1,)
    np.testing.assert_array_equal(sequences['Jogging.2'].ground_truth, BOXES)
    assert [s.name for s in read_otb(tmp_path, names=['Jogging'])] == ['Jogging.1', 'Jogging.2']


@pytest.mark.parametrize('reader', [read_otb, read_lasot, read_got10k, read_trackingnet, read_uav123, read_nfs])
def test_missing_root_is_a_clear_error(tmp_path, reader):
    with pytest.raises(FileNotFoundError, match='not found'):
        reader(tmp_path / 'nowhere')


def test_lasot_testing_set_and_attributes(tmp_path):
    for name in ('cat-1', 'cat-2'):
        folder = tmp_path / 'cat' / name
        write_frames(folder / 'img', tiny_frames(3), [f'{i:08d}.jpg' for i in range(1, 4)])
        write_rows(folder / 'groundtruth.txt', [BOXES[0], [0, 0, 0, 0], BOXES[2]])
        (folder / 'full_occlusion.txt').write_text('0,1,0')
        (folder / 'out_of_view.txt').write_text('0,0,0\n')
    assert [s.name for s in read_lasot(tmp_path)] == ['cat-1', 'cat-2']
    (tmp_path / 'testing_set.txt').write_text('cat-2\n')
    (sequence,) = read_lasot(tmp_path)
    assert sequence.name == 'cat-2' and sequence.absent is None and not sequence.missing_frames
    np.testing.assert_array_equal(sequence.attributes['full_occlusion'], [False, True, False])
    assert sequence.frame_paths[2] == tmp_path / 'cat' / 'cat-2' / 'img' / '00000003.jpg'


def test_got10k_val_absence_and_test_first_box(tmp_path):
    val = tmp_path / 'val' / 'GOT-10k_Val_000001'
    write_frames(val, tiny_frames(3), [f'{i:08d}.jpg' for i in range(1, 4)])
    write_rows(val / 'groundtruth.txt', BOXES)
    (val / 'absence.label').write_text('0\n1\n0\n')
    (sequence,) = read_got10k(tmp_path, 'val')
    np.testing.assert_array_equal(sequence.visible, [True, False, True])
    assert sequence.fully_annotated
    test = tmp_path / 'test' / 'GOT-10k_Test_000001'
    write_frames(test, tiny_frames(4), [f'{i:08d}.jpg' for i in (1, 2, 4)])
    write_rows(test / 'groundtruth.txt', BOXES[:1])
    (sequence,) = read_got10k(tmp_path, 'test')
    assert len(sequence) == 4 and sequence.missing_frames == (2,) and not sequence.fully_annotated
    np.testing.assert_array_equal(sequence.ground_truth[0], BOXES[0])
    assert np.isnan(sequence.ground_truth[1:]).all()


def test_trackingnet_numeric_frame_order(tmp_path):
    write_frames(tmp_path / 'TEST' / 'frames' / 'abc_1', tiny_frames(12), [f'{i}.jpg' for i in range(12)])
    write_rows(tmp_path / 'TEST' / 'anno' / 'abc_1.txt', BOXES[:1])
    (sequence,) = read_dataset('trackingnet', tmp_path)
    assert len(sequence) == 12 and sequence.frame_paths[10].name == '10.jpg'
    assert not sequence.fully_annotated and not sequence.missing_frames


def test_uav123_nan_rows_are_absent(tmp_path):
    write_frames(tmp_path / 'data_seq' / 'UAV123' / 'bike1', tiny_frames(3), [f'{i:06d}.jpg' for i in (1, 2, 3)])
    write_rows(tmp_path / 'anno' / 'UAV123' / 'bike1.txt', [BOXES[0], ['NaN'] * 4, BOXES[2]])
    (sequence,) = read_uav123(tmp_path)
    np.testing.assert_array_equal(sequence.absent, [False, True, False])
    assert not sequence.missing_frames


def test_nfs_corners_and_240fps_rows(tmp_path):
    folder = tmp_path / 'airboard_1' / '30'
    write_frames(folder / 'airboard_1', tiny_frames(2), ['00001.jpg', '00002.jpg'])
    rows = [f'{k} {10 + k} 20 {40 + k} 60 {k + 1} 0 0 0 "person"' for k in range(16)]
    (folder / 'airboard_1.txt').write_text('\n'.join(rows) + '\n')
    (sequence,) = read_nfs(tmp_path)
    np.testing.assert_array_equal(sequence.ground_truth, [[10, 20, 30, 40], [18, 20, 30, 40]])
    assert not sequence.missing_frames


def test_submission_and_result_files(tmp_path):
    boxes = np.array([[1.0, 2.0, 3.0, 4.0], [np.nan] * 4])
    path = write_got10k_submission(tmp_path / 'got', 'GOT-10k_Test_000001', boxes, [0.01, np.nan])
    assert path == tmp_path / 'got' / 'GOT-10k_Test_000001' / 'GOT-10k_Test_000001_001.txt'
    assert path.read_text().splitlines() == ['1.000,2.000,3.000,4.000', '0.000,0.000,0.000,0.000']
    times = np.loadtxt(path.parent / 'GOT-10k_Test_000001_time.txt')
    np.testing.assert_allclose(times, [0.01, 0.0])
    tracking_net = write_trackingnet_submission(tmp_path / 'tn', 'abc_1', boxes)
    assert tracking_net.name == 'abc_1.txt' and len(tracking_net.read_text().splitlines()) == 2
    write_results(tmp_path / 'generic', 'seq', boxes, times_s=[0.01, np.nan])
    results = read_results(tmp_path / 'generic')
    assert list(results) == ['seq']
    np.testing.assert_array_equal(results['seq'], boxes)


class NoisyGroundTruthTracker:
    """Returns the ground truth of the next frame plus Gaussian noise; checks its inputs."""

    def __init__(self, ground_truth: np.ndarray, noise_px: float = 1.0):
        self.ground_truth = ground_truth
        self.noise_px = noise_px
        self.rng = np.random.default_rng(0)
        self.index = 0

    def initialize(self, frame, box):
        assert frame.dtype == np.uint8 and frame.ndim == 3
        self.index = int(np.flatnonzero(np.all(self.ground_truth == box, axis=1))[0])

    def track(self, frame):
        self.index += 1
        box = self.ground_truth[self.index] + self.rng.normal(0, self.noise_px, 4)
        return TrackResult(tuple(box), 0.9)


def moving_square_sequence(tmp_path: Path, name: str, count: int = 16, seed: int = 0) -> Sequence:
    frames, boxes = moving_square_frames(count, seed)
    paths = write_frames(tmp_path / name, frames, [f'{i:04d}.jpg' for i in range(count)])
    return Sequence(name, paths, boxes)


def test_run_sequence_init_on_first_visible_box_and_missing_frame(tmp_path):
    sequence = moving_square_sequence(tmp_path, 'square', count=8)
    sequence.absent = np.zeros(8, bool)
    sequence.absent[0] = True
    sequence.frame_paths[5].unlink()
    sequence.missing_frames = (5,)
    run = run_sequence(NoisyGroundTruthTracker(sequence.ground_truth), sequence)
    assert run.init_frame == 1
    assert np.isnan(run.boxes[0]).all() and np.isnan(run.boxes[5]).all()
    np.testing.assert_array_equal(run.boxes[1], sequence.ground_truth[1])
    assert np.isfinite(run.latencies_s[[1, 2, 6]]).all() and np.isnan(run.tracking_latencies_s[1])
    metrics = score_runs({'square': run}, [sequence])
    assert metrics.n_dropped == 1 and metrics.n_valid == 7
    assert metrics.sequences[0].average_overlap < 6 / 7 + 1e-9


def test_evaluate_sequences_in_process(tmp_path):
    sequences = [moving_square_sequence(tmp_path, f'square{i}', seed=i) for i in range(2)]
    ground_truths = {s.name: s.ground_truth for s in sequences}
    built_on = []

    def factory(device):
        built_on.append(device)
        return OpenCVTracker('csrt')

    runs = evaluate_sequences(factory, sequences, device_list=['cpu'], progress=False)
    assert list(runs) == ['square0', 'square1'] and built_on == ['cpu']
    metrics = score_runs(runs, sequences)
    assert metrics.success_auc > 0.6 and metrics.precision_at_20px == pytest.approx(1.0)
    assert metrics.latency.n_frames == 2 * 15
    assert ground_truths['square0'].shape == runs['square0'].boxes.shape


def test_evaluate_sequences_over_worker_processes(tmp_path):
    sequences = [moving_square_sequence(tmp_path, f'square{i}', count=10, seed=i) for i in range(3)]
    factory = functools.partial(build_reference_tracker, 'kcf')
    runs = evaluate_sequences(factory, sequences, workers=2, device_list=['cpu:0', 'cpu:1'], progress=False)
    assert list(runs) == [s.name for s in sequences]
    assert {run.device for run in runs.values()} <= {'cpu:0', 'cpu:1'}
    assert score_runs(runs, sequences).success_auc > 0.6


@pytest.mark.parametrize('kind', ['csrt', 'kcf', 'mil'])
def test_reference_trackers_follow_the_square(kind):
    frames, boxes = moving_square_frames(12)
    tracker = build_reference_tracker(kind)
    tracker.initialize(frames[0], boxes[0])
    results = [tracker.track(frame) for frame in frames[1:]]
    predicted = np.array([r.box for r in results])
    assert np.abs(predicted[:, :2] - boxes[1:, :2]).max() <= 10
    assert all(r.score == 1.0 for r in results)


def test_reference_tracker_failure_scores_zero():
    frames, boxes = moving_square_frames(2)
    tracker = OpenCVTracker('csrt')
    tracker.initialize(frames[0], boxes[0])
    lost = tracker.track(np.zeros_like(frames[0]))
    assert lost.score == 0.0 and lost.box == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match='unknown'):
        OpenCVTracker('boosting').initialize(frames[0], boxes[0])
