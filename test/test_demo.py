"""The demo end to end on a tiny configuration: generated bag, the ROS pipeline live, the report."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('rclpy')
pytest.importorskip('vision_msgs.msg')
pytest.importorskip('transt_ros.srv')
pytestmark = pytest.mark.ros

from transt_ros.bags import open_bag  # noqa: E402
from transt_ros.demo import DEFAULT_CHECKPOINT, _parse_args, ensure_demo_bag  # noqa: E402

from .ros_helpers import ros_env  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
TINY = ['--sequences', '1', '--frames', '12', '--width', '160', '--height', '120']


def test_demo_end_to_end(light_checkpoint, tmp_path):
    out = tmp_path / 'demo'
    completed = subprocess.run(
        [sys.executable, '-m', 'transt_ros.demo', '--checkpoint', str(light_checkpoint), '--out', str(out), '--quiet',
         *TINY], env=ros_env(), cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    for line in ('transt-live', 'transt-offline', 'csrt', 'kcf', 'frames tracked', 'report:'):
        assert line in completed.stdout, line
    assert (out / 'demo.mcap').is_file() and (out / 'metadata.yaml').is_file()
    report = out / 'report'
    for name in ('metrics.json', 'success.png', 'precision.png', 'normalized_precision.png', 'comparison.md'):
        assert (report / name).stat().st_size > 0, name
    assert list(report.glob('overlay_transt-live.*'))
    document = json.loads((report / 'metrics.json').read_text())
    assert set(document['trackers']) == {'transt-live', 'transt-offline', 'csrt', 'kcf'}
    live = document['metadata']['live']
    assert live['frames_to_track'] == 11 and live['frames_tracked'] >= 1
    assert live['detections_not_matching_a_bag_frame'] == 0
    assert document['trackers']['transt-live']['n_dropped'] == live['frames_dropped']
    assert '| transt-live |' in (report / 'comparison.md').read_text()
    with open_bag(out / 'detections') as reader:
        assert reader.topics['/transt_tracker/detection'].message_count == live['detections_received']


def test_demo_bag_is_reused_only_when_its_settings_match(tmp_path, capsys):
    args = argparse.Namespace(out=tmp_path, sequences=1, frames=3, width=64, height=48, seed=2026, fps=30.0,
                              regenerate=False)
    bag = ensure_demo_bag(args)
    written = bag.stat().st_mtime_ns
    assert ensure_demo_bag(args) == bag and bag.stat().st_mtime_ns == written
    assert '(exists)' in capsys.readouterr().out
    args.frames = 4
    ensure_demo_bag(args)
    with open_bag(bag) as reader:
        assert reader.topics['/camera/image_raw'].message_count == 4


def test_default_checkpoint_is_the_bundled_demo_model():
    """The default checkpoint is a file that loads as a TransT model (not a path compared with itself)."""
    from transt_ros.checkpoint import load_model

    assert DEFAULT_CHECKPOINT.is_file(), DEFAULT_CHECKPOINT
    model = load_model(DEFAULT_CHECKPOINT)
    assert sum(parameter.numel() for parameter in model.parameters()) > 0


def test_hard_preset_has_its_own_seed_output_and_bag(tmp_path, capsys):
    from transt_ros.common.seeds import HARD_DEMO_SEED, HELD_OUT_DEMO_SEED
    from transt_ros.evaluation.tracking_bag import read_tracking_bag

    assert (_parse_args([]).seed, _parse_args([]).out) == (HELD_OUT_DEMO_SEED, Path('out/demo'))
    hard = _parse_args(['--preset', 'hard'])
    assert (hard.seed, hard.out) == (HARD_DEMO_SEED, Path('out/demo-hard'))
    args = argparse.Namespace(out=tmp_path, sequences=2, frames=3, width=64, height=48, seed=HARD_DEMO_SEED, fps=30.0,
                              regenerate=False, preset='hard')
    bag = ensure_demo_bag(args)
    assert 'preset hard' in capsys.readouterr().out
    names = [sequence.name for sequence in read_tracking_bag(bag).sequences]
    assert names == [f'synthetic-hard-{HARD_DEMO_SEED}-00000{i}' for i in range(2)]
    args.preset = 'default'
    args.seed = HELD_OUT_DEMO_SEED
    ensure_demo_bag(args)  # another preset: written again
    assert '(exists)' not in capsys.readouterr().out
    assert read_tracking_bag(bag).sequences[0].name == f'synthetic-{HELD_OUT_DEMO_SEED}-000000'
