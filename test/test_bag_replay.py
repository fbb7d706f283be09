"""Evaluation on a tracking bag: offline (in process) and live (the real nodes over DDS on loopback)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy')
pytest.importorskip('vision_msgs.msg')
pytest.importorskip('transt_ros.srv')
pytestmark = pytest.mark.ros

from rclpy.serialization import serialize_message  # noqa: E402

from transt_ros.bags import open_bag  # noqa: E402
from transt_ros.bags.messages import image_message  # noqa: E402
from transt_ros.common.stamps import stamp_to_ns  # noqa: E402
from transt_ros.evaluation.live_run import LiveSettings, run_live  # noqa: E402
from transt_ros.evaluation.make_bag import SequenceSource, synthetic_sources, write_sequences_bag  # noqa: E402
from transt_ros.evaluation.tracking_bag import header_stamp_ns, read_tracking_bag  # noqa: E402

from .ros_helpers import ros_env  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
@pytest.fixture(scope='module')
def short_bag(tmp_path_factory):
    """2 generated scenes x 10 frames, 160x120, 30 fps."""
    return write_sequences_bag(tmp_path_factory.mktemp('bag') / 'short', synthetic_sources(2, 10, 160, 120), 30.0)


def test_header_stamp_is_read_without_decoding():
    stamp = 1_234_567_890_987_654_321
    assert header_stamp_ns(serialize_message(image_message(np.zeros((4, 6, 3), np.uint8), stamp))) == stamp


def test_sequences_are_split_by_ground_truth_id(tmp_path):
    frames = np.zeros((7, 24, 32, 3), np.uint8)
    nan = [np.nan] * 4
    first = SequenceSource('a', np.array([nan, [1, 1, 5, 5], [2, 2, 5, 5]], float), lambda i: frames[i])
    second = SequenceSource('b', np.array([[3, 3, 6, 6], nan, nan, [4, 4, 6, 6]], float), lambda i: frames[i])
    bag = read_tracking_bag(write_sequences_bag(tmp_path / 'bag', [first, second], fps=20.0))
    assert [(s.name, len(s), s.init_frame) for s in bag.sequences] == [('a', 3, 1), ('b', 4, 0)]
    assert bag.locations == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert np.isnan(bag.sequences[0].ground_truth[0]).all()
    np.testing.assert_array_equal(bag.sequences[1].ground_truth[3], [4, 4, 6, 6])
    assert bag.frame_period_s == pytest.approx(0.05)
    assert bag.image_topic == '/camera/image_raw' and bag.camera_info_topic == '/camera/camera_info'


def test_offline_replay_gives_metrics(short_bag, light_checkpoint, tmp_path):
    """Through the ``transt-eval bag`` command line (a subprocess: it sets up torch's threads itself)."""
    out = tmp_path / 'report'
    completed = subprocess.run(
        [sys.executable, '-m', 'transt_ros.evaluation.cli', 'bag', str(short_bag), '--checkpoint',
         str(light_checkpoint), '--out', str(out), '--reference', 'kcf', '--quiet'],
        env=ros_env(), cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert 'AUC' in completed.stdout
    document = json.loads((out / 'metrics.json').read_text())
    assert set(document['trackers']) == {'transt', 'kcf'}
    for figures in document['trackers'].values():
        assert (figures['n_sequences'], figures['n_frames'], figures['n_valid'], figures['n_dropped']) == (2, 20, 20, 0)
        assert 0.0 <= figures['success_auc'] <= 1.0
        assert figures['latency']['n_frames'] == 18  # tracked frames: all but the two initial ones
        assert figures['latency']['p95_ms'] > 0
    assert document['metadata']['re_initialisation'] == 'none' and document['metadata']['mode'] == 'offline'
    for name in ('success.png', 'precision.png', 'comparison.md'):
        assert (out / name).is_file(), name
    assert list(out.glob('overlay_transt.*'))
    names = [s.name for s in read_tracking_bag(short_bag).sequences]
    assert all((out / 'results' / 'transt' / f'{name}.txt').is_file() for name in names)


def _tracked_prefix(live_boxes: np.ndarray, init_frame: int) -> int:
    """Frames after ``init_frame`` tracked without a gap (after a skipped frame the live tracker
    has seen different frames than the offline one)."""
    count = 0
    for box in live_boxes[init_frame + 1:]:
        if not np.all(np.isfinite(box)):
            break
        count += 1
    return count


def test_live_replay_runs_through_the_nodes(short_bag, light_checkpoint, tmp_path):
    """``transt-eval bag --mode live``: the bag through the real nodes at its recorded rate."""
    out = tmp_path / 'report'
    completed = subprocess.run(
        [sys.executable, '-m', 'transt_ros.evaluation.cli', 'bag', str(short_bag), '--checkpoint',
         str(light_checkpoint), '--out', str(out), '--mode', 'live', '--rate', '1', '--reference', '',
         '--no-video', '--quiet'], env=ros_env(), cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads((out / 'metrics.json').read_text())
    assert set(document['trackers']) == {'transt-live', 'transt-offline'}
    live = document['metadata']['live']
    assert all(answer['accepted'] for answer in live['set_target'].values()), live['set_target']
    assert live['frames_to_track'] == 18
    assert live['frames_tracked'] + live['frames_dropped'] == 18
    assert live['frames_tracked'] >= 2  # each sequence's last frame is always processed
    assert live['detections_not_matching_a_bag_frame'] == 0
    assert live['end_to_end_latency']['n'] == live['frames_tracked']
    assert document['trackers']['transt-live']['n_dropped'] == live['frames_dropped']
    assert live['bringup_exit_code'] == 0
    # the node's boxes are the in-process tracker's boxes, as long as it skipped no frame
    compared = 0
    for sequence in read_tracking_bag(short_bag).sequences:
        live_boxes = np.loadtxt(out / 'results' / 'transt-live' / f'{sequence.name}.txt', delimiter=',', ndmin=2)
        offline_boxes = np.loadtxt(out / 'results' / 'transt-offline' / f'{sequence.name}.txt', delimiter=',',
                                   ndmin=2)
        end = sequence.init_frame + 1 + _tracked_prefix(live_boxes, sequence.init_frame)
        np.testing.assert_allclose(live_boxes[:end], offline_boxes[:end], atol=0.01)
        compared += end - sequence.init_frame - 1
    assert compared >= 1


def test_live_replay_counts_frames_the_node_skipped(short_bag, light_checkpoint, tmp_path):
    ros_env()
    settings = LiveSettings(light_checkpoint, rate=25.0, record=tmp_path / 'detections',
                            log_path=tmp_path / 'bringup.log')
    bag = read_tracking_bag(short_bag)
    result = run_live(bag, settings, progress=False)
    stats = result.stats
    assert stats['frames_dropped'] > 0, stats  # 750 fps is faster than any tracker here
    assert stats['frames_tracked'] >= 1
    assert stats['frames_tracked'] + stats['frames_dropped'] == stats['frames_to_track'] == 18
    assert stats['detections_not_matching_a_bag_frame'] == 0
    bag_stamps = {int(stamp) for sequence in bag.sequences for stamp in sequence.stamps_ns}
    with open_bag(tmp_path / 'detections') as reader:
        recorded = [stamp_to_ns(msg.header.stamp) for _, msg in reader.decoded()]
    assert len(recorded) == stats['detections_received'] > 0
    assert set(recorded) <= bag_stamps
    for sequence in bag.sequences:
        run = result.runs[sequence.name]
        tracked = np.all(np.isfinite(run.boxes), axis=1)
        assert tracked.sum() - 1 == np.isfinite(run.tracking_latencies_s).sum()  # init frame has no latency
    assert stats['bringup_exit_code'] == 0


def _write_got10k_split(root: Path, split: str, annotated: bool) -> list[str]:
    import cv2

    sources = synthetic_sources(2, 6, 96, 72, seed=11)
    for source in sources:
        folder = root / split / source.name
        folder.mkdir(parents=True)
        for index in range(len(source)):
            cv2.imwrite(str(folder / f'{index + 1:08d}.jpg'), cv2.cvtColor(source.frame(index), cv2.COLOR_RGB2BGR))
        rows = source.boxes if annotated else source.boxes[:1]
        np.savetxt(folder / 'groundtruth.txt', rows, fmt='%.1f', delimiter=',')
    return [source.name for source in sources]


def test_dataset_command_scores_annotated_splits_and_writes_submissions(light_checkpoint, tmp_path):
    root = tmp_path / 'got10k'
    names = _write_got10k_split(root, 'val', annotated=True)
    _write_got10k_split(root, 'test', annotated=False)
    for split in ('val', 'test'):
        out = tmp_path / split
        completed = subprocess.run(
            [sys.executable, '-m', 'transt_ros.evaluation.cli', 'dataset', 'got10k', str(root), '--split', split,
             '--checkpoint', str(light_checkpoint), '--out', str(out), '--reference', 'kcf', '--quiet'],
            cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
        assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads((tmp_path / 'val' / 'metrics.json').read_text())
    assert set(document['trackers']) == {'transt', 'kcf'}
    assert document['trackers']['transt']['n_valid'] == 2 * 5  # GOT-10k drops the first frame
    assert not (tmp_path / 'test' / 'metrics.json').exists()
    for name in names:
        rows = np.loadtxt(tmp_path / 'test' / 'submission' / 'got10k' / 'transt' / name / f'{name}_001.txt',
                          delimiter=',')
        assert rows.shape == (6, 4)
        assert (tmp_path / 'val' / 'results' / 'kcf' / f'{name}.txt').is_file()
