"""Report files: JSON round trip, plots readable as images, overlay video, comparison table."""
import json

import cv2
import numpy as np
import pytest

from transt_ros.evaluation.metrics import aggregate, evaluate_sequence
from transt_ros.evaluation.report import (
    comparison_table,
    metrics_document,
    plot_success,
    write_frames_overlay_video,
    write_report,
)


def dataset_metrics(offset_px: float, dropped: bool = False):
    truth = np.tile([20.0, 20.0, 30.0, 30.0], (10, 1))
    predicted = truth + [offset_px, 0, 0, 0]
    if dropped:
        predicted[-1] = np.nan
    sequence = evaluate_sequence('seq', predicted, truth, latencies_s=np.full(10, 0.01))
    return aggregate([sequence], latencies_s=np.full(10, 0.01))


@pytest.fixture
def results():
    return {'good': dataset_metrics(1.0), 'poor': dataset_metrics(12.0, dropped=True)}


def test_write_report_files_and_json_round_trip(tmp_path, results):
    paths = write_report(tmp_path / 'report', results, metadata={'dataset': 'synthetic'}, print_table=False)
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
    loaded = json.loads(paths['json'].read_text())
    assert loaded == metrics_document(results, {'dataset': 'synthetic'})
    assert loaded['trackers']['good']['success_auc'] == pytest.approx(results['good'].success_auc)
    assert loaded['trackers']['poor']['n_dropped'] == 1
    assert len(loaded['trackers']['good']['sequences'][0]['success_curve']) == 21
    for key in ('success_plot', 'precision_plot', 'normalized_precision_plot'):
        image = cv2.imread(str(paths[key]))
        assert image is not None and image.shape[0] > 100 and image.shape[2] == 3


def test_non_finite_numbers_become_null(tmp_path):
    empty = aggregate([])
    document = metrics_document({'none': empty})
    assert document['trackers']['none']['average_overlap'] is None
    json.dumps(document, allow_nan=False)


def test_success_plot_alone(tmp_path, results):
    path = plot_success(tmp_path / 'plots' / 'success.png', results, title='Synthetic')
    assert cv2.imread(str(path)) is not None


def test_comparison_table_sorted_by_auc(results):
    lines = comparison_table(results).splitlines()
    assert lines[0].startswith('| Tracker | Sequences | Dropped | Success AUC')
    assert lines[2].startswith('| good |') and lines[3].startswith('| poor |')


def test_write_report_prints_the_table(tmp_path, results, capsys):
    write_report(tmp_path, results)
    assert '| good |' in capsys.readouterr().out


def make_frames(tmp_path, count=6):
    paths = []
    for index in range(count):
        path = tmp_path / f'{index:04d}.jpg'
        cv2.imwrite(str(path), np.full((48, 64, 3), 40 * index % 255, np.uint8))
        paths.append(path)
    return paths


def test_overlay_video_mp4_or_gif(tmp_path):
    paths = make_frames(tmp_path)
    truth = np.tile([10.0, 10.0, 20.0, 15.0], (len(paths), 1))
    predicted = truth + 2.0
    predicted[3] = np.nan
    written = write_frames_overlay_video(tmp_path / 'overlay.mp4', paths, predicted, truth, scores=np.linspace(0, 1, 6))
    assert written.suffix in ('.mp4', '.gif') and written.stat().st_size > 0
    if written.suffix == '.mp4':
        capture = cv2.VideoCapture(str(written))
        ok, frame = capture.read()
        capture.release()
        assert ok and frame.shape[:2] == (48, 64)


def test_overlay_gif_when_asked(tmp_path):
    paths = make_frames(tmp_path, count=3)
    boxes = np.tile([5.0, 5.0, 10.0, 10.0], (3, 1))
    written = write_frames_overlay_video(tmp_path / 'overlay.gif', paths, boxes)
    assert written.suffix == '.gif'
    import imageio.v2 as imageio

    frames = imageio.mimread(written)
    assert len(frames) == 3
    for index, frame in enumerate(frames):
        assert frame.shape[:2] == (48, 64)
        rgb = np.asarray(frame)[..., :3].astype(int)
        # the prediction (red in BGR -> (255, 0, 0) in RGB) is drawn on every frame, on the frame's own grey
        assert (np.abs(rgb - [255, 0, 0]).sum(axis=-1) < 60).sum() > 20, index
        background = 40 * index % 255
        assert abs(int(np.median(rgb[30:45, 40:60])) - background) < 12, index


def test_overlay_gif_fallback_keeps_every_frame(tmp_path, monkeypatch):
    """When OpenCV cannot write the MP4 (no encoder), the GIF written instead holds the same frames."""
    class NoEncoder:
        def __init__(self, *args):
            pass

        def isOpened(self):
            return False

    monkeypatch.setattr(cv2, 'VideoWriter', NoEncoder)
    paths = make_frames(tmp_path, count=4)
    truth = np.tile([10.0, 10.0, 20.0, 15.0], (4, 1))
    written = write_frames_overlay_video(tmp_path / 'overlay.mp4', paths, truth + 2.0, truth)
    assert written == tmp_path / 'overlay.gif'
    import imageio.v2 as imageio

    frames = imageio.mimread(written)
    assert len(frames) == 4
    for index, frame in enumerate(frames):
        rgb = np.asarray(frame)[..., :3].astype(int)
        assert (np.abs(rgb - [0, 255, 0]).sum(axis=-1) < 60).sum() > 20, index  # ground truth, green
        assert abs(int(np.median(rgb[35:45, 40:60])) - 40 * index % 255) < 12, index
