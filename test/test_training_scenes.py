"""The generated scenes' effects (presets ``mixed`` / ``hard``), their ground truth, and the budgeted trainer."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from transt_ros.common.seeds import HARD_DEMO_SEED
from transt_ros.evaluation.make_bag import synthetic_sources, write_sequences_bag
from transt_ros.evaluation.metrics import valid_frame_mask
from transt_ros.evaluation.tracking_bag import read_tracking_bag
from transt_ros.training.config import ConfigError, load_config
from transt_ros.training.scene_video import EFFECTS, MIN_VISIBLE_FRACTION
from transt_ros.training.synthetic import SyntheticVideos

REPOSITORY = Path(__file__).resolve().parents[1]
SMALL = dict(num_videos=4, frames_per_video=60, frame_width=160, frame_height=120, min_object_size=16,
             max_object_size=36)
GEOMETRIC = ['rotation', 'zoom', 'camera_shake', 'perspective', 'deformation']


def scenes(effects, seed=3, **options) -> SyntheticVideos:
    return SyntheticVideos(**{**SMALL, **options}, seed=seed, preset='hard', effects=effects)


def frames(videos: SyntheticVideos, index: int) -> np.ndarray:
    return np.stack([videos.frame(index, t) for t in range(videos.frames_per_video)]).astype(np.int16)


def laplacian_energy(image: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2GRAY), cv2.CV_32F)).mean())


@pytest.mark.parametrize('effect', EFFECTS)
def test_each_effect_changes_the_frames(effect):
    """Every random parameter is drawn whether its effect is on or not: turning one effect on
    changes the video, and nothing but that effect."""
    plain, with_effect = scenes([]), scenes([effect])
    assert plain.scenes.video(0).enabled == frozenset() and with_effect.scenes.video(0).enabled == {effect}
    difference = np.abs(frames(with_effect, 0) - frames(plain, 0)).mean(axis=(1, 2, 3))
    assert (difference > 1.0).sum() >= 3, f'{effect}: frames unchanged ({difference.max():.2f})'


def test_effects_do_what_they_say():
    index = 0
    plain = scenes([])
    plain_boxes = plain.boxes(index)
    assert np.isfinite(plain_boxes).all()  # nothing hides the target without occlusion / out of view
    # Out of view: the target leaves (absent frames) and comes back.
    leaving = scenes(['out_of_view'])
    absent = np.flatnonzero(~np.isfinite(leaving.boxes(index)).all(axis=1))
    assert len(absent) > 0 and absent.max() < leaving.frames_per_video - 1
    assert np.isfinite(leaving.boxes(index)[absent.max() + 1:]).all()
    # Occlusion: part of the target is hidden for a while.
    occluded = scenes(['occlusion'])
    fractions = [occluded.scenes.target_state(index, t)[1] for t in range(occluded.frames_per_video)]
    assert min(fractions) < 0.9 and max(fractions) == 1.0
    # Rotation: the box's aspect ratio changes with the turning target.
    turning = scenes(['rotation']).boxes(index)
    assert np.ptp(turning[:, 2] / turning[:, 3]) > np.ptp(plain_boxes[:, 2] / plain_boxes[:, 3]) + 0.1
    # Zoom: a larger scale change.
    zooming = scenes(['zoom']).boxes(index)
    assert np.ptp(np.log(zooming[:, 2] * zooming[:, 3])) > np.ptp(np.log(plain_boxes[:, 2] * plain_boxes[:, 3]))
    # Illumination: the frame's brightness drifts more.
    lit = frames(scenes(['illumination']), index).mean(axis=(1, 2, 3))
    assert np.ptp(lit) > np.ptp(frames(plain, index).mean(axis=(1, 2, 3))) + 5
    # Low texture: the target's texture has far less contrast.
    for seed in range(4):
        flat, textured = scenes(['low_texture'], seed=seed), scenes([], seed=seed)
        assert flat.scenes._assets_of(index)['target'].texture.std() < textured.scenes._assets_of(index)[
            'target'].texture.std()
    # Look-alikes: layers with the target's own texture.
    alike = scenes(['distractors']).scenes.video(index)
    assert any(layer.texture.source == 'target' for layer in alike.behind + alike.front)
    # Motion blur: the same fast-moving target, with fewer sharp edges than at a zero exposure time.
    full_size = dict(frame_width=320, frame_height=240, min_object_size=32, max_object_size=64)
    blurred, sharp = scenes(['motion_blur'], **full_size), scenes(['motion_blur'], **full_size)
    blurred.scenes.video(index).exposure, sharp.scenes.video(index).exposure = 1.0, 0.0
    boxes = blurred.boxes(index)
    moving = [t for t in range(1, blurred.frames_per_video)
              if np.isfinite(boxes[t - 1:t + 1]).all() and np.abs(boxes[t, :2] - boxes[t - 1, :2]).max() >= 4]
    assert len(moving) >= 5
    energy = {name: np.mean([laplacian_energy(videos.frame(index, t)[int(boxes[t, 1]):int(boxes[t, 1] + boxes[t, 3]),
                                                                    int(boxes[t, 0]):int(boxes[t, 0] + boxes[t, 2])])
                             for t in moving]) for name, videos in (('blurred', blurred), ('sharp', sharp))}
    assert energy['blurred'] < 0.8 * energy['sharp'], energy


@pytest.mark.parametrize('index', range(3))
def test_box_is_the_bounding_box_of_the_rendered_target(index):
    """With every geometric effect on, the box is where the target's pixels are, in every frame: the
    box is the 50 % contour of the anti-aliased silhouette, whose soft rim (up to a texture pixel,
    more when zoomed in) may add a pixel or two of faint colour outside it."""
    videos = scenes(GEOMETRIC, seed=11)
    boxes = videos.boxes(index)
    for t in range(0, videos.frames_per_video, 3):
        with_target = videos.frame(index, t).astype(np.int16)
        without = videos.scenes.frame(index, t, draw_target=False).astype(np.int16)
        rows, cols = np.nonzero(np.abs(with_target - without).max(axis=2) > 0)
        if not np.isfinite(boxes[t]).all():
            assert len(rows) == 0 or videos.scenes.target_state(index, t)[1] < MIN_VISIBLE_FRACTION
            continue
        x, y, w, h = boxes[t]
        assert 0 <= x and 0 <= y and x + w <= 160 and y + h <= 120
        texture_pixel = np.sqrt(w * h / np.prod(videos.scenes.video(index).target.texture_size()))
        rim = 1 + int(np.ceil(1.5 * texture_pixel))  # image pixels per texture pixel, rotation included
        assert abs(cols.min() - x) <= rim and abs(cols.max() + 1 - (x + w)) <= rim, (t, x, w, cols.min(), cols.max())
        assert abs(rows.min() - y) <= rim and abs(rows.max() + 1 - (y + h)) <= rim, (t, y, h, rows.min(), rows.max())


def test_absent_frames_are_invisible_and_everything_is_deterministic():
    first = SyntheticVideos(**SMALL, seed=5, preset='hard')
    again = SyntheticVideos(**SMALL, seed=5, preset='hard')
    other = SyntheticVideos(**SMALL, seed=6, preset='hard')
    again.frame(1, 40)  # another order of requests
    assert np.array_equal(first.frame(1, 17), again.frame(1, 17))
    assert np.array_equal(first.boxes(1), again.boxes(1), equal_nan=True)
    assert not np.array_equal(first.frame(1, 17), other.frame(1, 17))
    for index in range(SMALL['num_videos']):
        info = first.sequence_info(index)
        assert np.array_equal(info.visible, np.isfinite(info.boxes).all(axis=1))
        assert (info.boxes[info.visible, 2:] > 0).all()
    assert first.sequence_name(0) == 'synthetic-hard-5-000000'


def test_mixed_preset_draws_effects_per_video_and_default_is_unchanged():
    mixed = SyntheticVideos(**{**SMALL, 'num_videos': 40}, preset='mixed', effect_probability=0.5)
    counts = [len(mixed.scenes.video(index).enabled) for index in range(40)]
    assert 0 < np.mean(counts) < len(EFFECTS) and max(counts) > min(counts)
    default = SyntheticVideos(**SMALL)
    assert default.scenes is None and np.isfinite(default.boxes(0)).all()
    with pytest.raises(ValueError, match='preset'):
        SyntheticVideos(preset='extreme')
    with pytest.raises(ValueError, match='unknown scene effects'):
        SyntheticVideos(preset='hard', effects=['snow'])


def test_config_accepts_scene_options(tmp_path):
    config = load_config(None, ['data.datasets.0.preset=mixed', 'data.datasets.0.effect_probability=0.3',
                                'data.datasets.0.effects=[rotation, zoom]', 'train.max_wall_seconds=30'])
    assert config.data.datasets[0].options == {'preset': 'mixed', 'effect_probability': 0.3,
                                               'effects': ['rotation', 'zoom']}
    with pytest.raises(ConfigError, match='max_wall_seconds'):
        load_config(None, ['train.max_wall_seconds=0'])
    gpu = load_config(REPOSITORY / 'config' / 'train_demo_gpu.yaml')
    assert gpu.train.max_wall_seconds and gpu.train.amp == 'bf16' and gpu.data.num_workers >= 12
    json.loads('\n'.join(line for line in (REPOSITORY / 'config' / 'train_demo_gpu.yaml').read_text().splitlines()
                         if not line.startswith('#')))  # loads without PyYAML too


def test_hard_bag_marks_absent_frames_and_evaluation_skips_them(tmp_path):
    sources = synthetic_sources(6, 60, 160, 120, preset='hard')
    assert sources[0].name.startswith(f'synthetic-hard-{HARD_DEMO_SEED}-')
    source = next(s for s in sources if (~np.isfinite(s.boxes).all(axis=1)).any())
    bag = write_sequences_bag(tmp_path / 'hard.mcap', [source], fps=30.0)
    sequence = read_tracking_bag(bag).sequences[0]
    absent = ~np.isfinite(source.boxes).all(axis=1)
    valid = valid_frame_mask(sequence.ground_truth, sequence.visible)
    assert np.array_equal(valid, ~absent)
    assert np.allclose(sequence.ground_truth[~absent], source.boxes[~absent])


BARE_MACHINE = r'''
import sys
from importlib.machinery import PathFinder

HIDDEN = {'yaml', 'tqdm', 'tensorboard', 'pycocotools', 'rclpy'}


class Hiding(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        return None if name.partition('.')[0] in HIDDEN else PathFinder.find_spec(name, path, target)


sys.meta_path[:] = [Hiding if finder is PathFinder else finder for finder in sys.meta_path]
import logging

logging.basicConfig(level=logging.INFO)
from transt_ros.training.config import load_config
from transt_ros.training.trainer import Trainer

config = load_config(sys.argv[1], ['train.device=cpu', 'data.num_workers=0', 'train.batch_size=2',
                                   'data.samples_per_epoch=8', 'train.max_wall_seconds=2', 'train.log_every=1',
                                   'data.datasets.0.num_videos=4', 'data.datasets.1.num_videos=4',
                                   'train.output_dir=' + sys.argv[2]])
trainer = Trainer(config)
history = trainer.train()
assert 1 <= len(history) < 4000, len(history)
print('loaded', sorted(HIDDEN & set(name.partition('.')[0] for name in sys.modules)))
'''


def test_gpu_recipe_trains_on_a_bare_machine_and_stops_on_its_wall_clock_budget(tmp_path):
    """Without PyYAML, tqdm, TensorBoard or pycocotools the recipe's config loads and the trainer
    runs; train.max_wall_seconds ends the run with a checkpoint and model.pth."""
    out = tmp_path / 'run'
    completed = subprocess.run([sys.executable, '-c', BARE_MACHINE, str(REPOSITORY / 'config' / 'train_demo_gpu.yaml'),
                                str(out)], cwd=REPOSITORY, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert 'loaded []' in completed.stdout
    assert 'train.max_wall_seconds (2 s) reached' in completed.stderr
    assert (out / 'model.pth').is_file() and list((out / 'checkpoints').glob('*.pth'))
    assert (out / 'log.csv').read_text().count('\n') >= 2 and not (out / 'tensorboard').exists()
