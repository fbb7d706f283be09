"""Multi-object tracking bags: ``transt-make-bag --objects K`` writes generated scenes with several
ground-truth tracks (Detection2DArray with ids); ``transt-eval bag`` scores every track and their mean,
offline and live (the real nodes over DDS with max_targets = the tracks per image)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from transt_ros.common.seeds import MULTI_OBJECT_SEED
from transt_ros.evaluation.multi_object_scenes import generate_scenes

from .ros_helpers import write_light_checkpoint

TRACK_NAMES = [f'multi_{MULTI_OBJECT_SEED}_00{scene}/{track}' for scene in (0, 1) for track in range(3)]

pytestmark = pytest.mark.ros


@pytest.fixture(scope='module')
def multi_bag(tmp_path_factory):
    from transt_ros.evaluation.make_bag import main

    directory = tmp_path_factory.mktemp('multi_object')
    bag = directory / 'scenes'
    assert main([str(bag), '--synthetic', '2', '--objects', '3', '--frames', '12']) == 0
    return bag, write_light_checkpoint(directory / 'light.pth')


def test_scenes_are_deterministic_and_inside_the_image():
    first, again = generate_scenes(1, 30, 4, seed=5)[0], generate_scenes(1, 30, 4, seed=5)[0]
    assert first.boxes.shape == (4, 30, 4) and np.array_equal(first.boxes, again.boxes)
    assert np.array_equal(first.frame(7), again.frame(7)) and first.frame(7).shape == (240, 320, 3)
    x, y, w, h = np.moveaxis(first.boxes, -1, 0)
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= 320).all() and (y + h <= 240).all()
    assert not np.array_equal(first.boxes[:, 0], first.boxes[:, -1])  # they move
    assert first.track_names == [f'{first.name}/{index}' for index in range(4)]
    with pytest.raises(ValueError, match='at least'):
        generate_scenes(1, 30, 2, width=64, height=64)


def test_bag_holds_one_track_per_object(multi_bag):
    from transt_ros.bags import open_bag
    from transt_ros.evaluation.tracking_bag import read_tracking_bag

    bag_path, _ = multi_bag
    with open_bag(bag_path) as reader:
        assert reader.topics['/ground_truth'].type == 'vision_msgs/msg/Detection2DArray'
        arrays = [msg for _, msg in reader.decoded(['/ground_truth'])]
    assert len(arrays) == 24 and all(len(array.detections) == 3 for array in arrays)
    assert all(d.header == arrays[0].header for d in arrays[0].detections)
    bag = read_tracking_bag(bag_path)
    assert bag.multi_object and bag.max_tracks_per_image == 3 and bag.n_frames == 24
    assert [s.name for s in bag.sequences] == TRACK_NAMES
    assert all(len(s) == 12 and s.init_frame == 0 for s in bag.sequences)
    assert bag.tracks_of(13) == [(3, 1), (4, 1), (5, 1)]
    scene = generate_scenes(2, 12, 3)[1]
    assert np.array_equal(bag.sequences[4].ground_truth, scene.boxes[1])


def test_offline_and_live_score_every_track(multi_bag, tmp_path):
    from transt_ros.evaluation.bag_evaluation import evaluate_bag, format_summary

    bag_path, checkpoint = multi_bag
    offline = evaluate_bag(bag_path, checkpoint, tmp_path / 'offline', references=('kcf',), progress=False,
                           print_table=False, video=True)
    for name in ('transt', 'kcf'):
        metrics = offline.results[name]
        assert [s.name for s in metrics.sequences] == TRACK_NAMES
        assert metrics.success_auc == pytest.approx(np.mean([s.success_auc for s in metrics.sequences]))
    assert offline.metadata['multi_object']['tracks'] == 6 and offline.paths['video'].exists()
    assert 'per track' in format_summary(offline)
    live = evaluate_bag(bag_path, checkpoint, tmp_path / 'live', mode='live', rate=0.5, references=(),
                        progress=False, print_table=False, video=False, offline_transt_in_live=False)
    stats = live.live
    assert all(answer['accepted'] for answer in stats['set_target'].values()), stats['set_target']
    assert len({answer['track_id'] for answer in stats['set_target'].values()}) == 6
    assert stats['frames_tracked'] >= 0.8 * stats['frames_to_track'], stats
    tracks = live.results['transt-live'].sequences
    assert len(tracks) == 6
    # the light model keeps every box: live and offline agree on the frames the node tracked
    for offline_track, live_track in zip(offline.results['transt'].sequences, tracks):
        assert live_track.success_auc == pytest.approx(offline_track.success_auc, abs=0.1)
    params = json.loads((tmp_path / 'live' / 'results' / 'transt-live' / 'live_stats.json').read_text())
    assert params['frames_in_bag'] == 24
