"""The ROS layer's pieces that need no ROS: lost-target hysteresis, clicks, point projection, box
limits, the warm-up check, image size limits and the model config's bounds (no rclpy import)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from transt_ros.checkpoint import CheckpointError, load_model
from transt_ros.model import TransTConfig
from transt_ros.ros.image_conversion import (
    ImageConversionError,
    compressed_dimensions,
    compressed_to_rgb,
    image_to_rgb,
    jpeg_dimensions,
)
from transt_ros.ros.targeting import IDLE, INACTIVE, LOST, TRACKING, ClickBoxer, next_state, project_point
from transt_ros.tracking import Tracker, prepare_model
from transt_ros.tracking.box_limits import BoxLimitError, finite_result, is_clamped, limit_box
from transt_ros.tracking.warmup import WarmUpError, warm_up

from .ros_helpers import LIGHT, write_light_checkpoint


def test_state_values():
    assert (IDLE, TRACKING, LOST, INACTIVE) == (0, 1, 2, 3)


def test_lost_hysteresis():
    state, low = TRACKING, 0
    for _ in range(2):
        state, low = next_state(state, 0.2, low, 0.3, 0.5, 3)
        assert state == TRACKING
    state, low = next_state(state, 0.2, low, 0.3, 0.5, 3)
    assert (state, low) == (LOST, 3)
    state, low = next_state(state, 0.45, low, 0.3, 0.5, 3)  # between the thresholds: still lost
    assert state == LOST and low == 0
    assert next_state(state, 0.5, low, 0.3, 0.5, 3)[0] == TRACKING
    state, low = next_state(TRACKING, 0.1, 2, 0.3, 0.5, 3)
    assert state == LOST
    assert next_state(TRACKING, 0.9, 2, 0.3, 0.5, 3) == (TRACKING, 0)


def test_clicks_to_boxes():
    clicks = ClickBoxer()
    assert clicks.click(100, 50, 0.0, 64, 1.0) == ((68, 18, 64, 64), 'single')
    assert clicks.click(40, 90, 0.5, 64, 1.0) == ((40, 50, 60, 40), 'corners')
    assert clicks.click(10, 10, 0.7, 64, 1.0)[1] == 'single'        # the pair starts over
    assert clicks.click(20, 20, 2.0, 64, 1.0)[1] == 'single'        # too late for a pair
    assert clicks.click(21, 21, 2.1, 64, 1.0)[1] == 'single'        # too close for a box


def test_point_projection():
    k = [200.0, 0, 160, 0, 200.0, 120, 0, 0, 1]
    assert project_point(0.5, -0.25, 2.0, k, [0.0] * 12) == (210.0, 95.0)
    assert project_point(0.0, 0.0, -1.0, k, [0.0] * 12) is None
    p = [100.0, 0, 50, 0, 0, 100.0, 40, 0, 0, 0, 1, 0]
    assert project_point(1.0, 1.0, 1.0, [0.0] * 9, p) == (150.0, 140.0)
    assert project_point(1.0, 1.0, 1.0, [0.0] * 9, [0.0] * 12) is None


# ------------------------------------------------------------------------------------ box limits

def test_ordinary_boxes_pass_unchanged():
    for box in ((10.5, 20.25, 40.0, 30.0), (-20.0, 10.0, 60.0, 60.0), (300.0, 200.0, 40.0, 40.0)):
        assert limit_box(box, 240, 320) == box and not is_clamped(box, limit_box(box, 240, 320))


@pytest.mark.parametrize('box', [(10, 10, 3000, 3000), (10, 10, 6000, 6000), (0, 0, 1e10, 1e10),
                                 (-1e300, -1e300, 2e300, 2e300), (1e308 * -1, 5, 1.7e308, 1e308)])
def test_absurd_boxes_are_clamped_like_predicted_boxes(box):
    x, y, width, height = limit_box(box, 240, 320)
    assert all(math.isfinite(v) for v in (x, y, width, height))
    assert 0 <= x and 0 <= y and x + width <= 320 and y + height <= 240  # the part inside the image
    assert is_clamped(box, (x, y, width, height))


def test_a_box_covering_the_image_becomes_the_image():
    assert limit_box((10, 10, 3000, 3000), 240, 320) == (10.0, 10.0, 310.0, 230.0)
    assert limit_box((-2680, -2760, 6000, 6000), 240, 320) == (0.0, 0.0, 320.0, 240.0)


@pytest.mark.parametrize('box', [(math.nan, 0, 10, 10), (0, 0, math.inf, 10), (0, 0, -5, 10), ('a', 1, 2, 3),
                                 (1, 2, 3), (400, 10, 1000, 10)])
def test_unusable_boxes_are_refused(box):
    with pytest.raises(BoxLimitError):
        limit_box(box, 240, 320)


def test_finite_result():
    assert finite_result((1, 2, 3, 4), 0.5)
    assert not finite_result((1, 2, 3, 4), math.nan)
    assert not finite_result((math.nan, 2, 3, 4), 0.5)
    assert not finite_result((1, 2, math.inf, 4), 0.5)


def test_tracker_bounds_the_first_crop_of_a_huge_box():
    """Before the limit, a 6000x6000 box allocated a ~0.8 GB search crop; 1e300 raised OverflowError."""
    torch.manual_seed(0)
    from transt_ros.model import build_transt

    tracker = Tracker(build_transt(TransTConfig(**LIGHT)))
    frame = np.full((240, 320, 3), 100, np.uint8)
    for box in ((10, 10, 6000, 6000), (0, 0, 1e300, 1e300)):
        tracker.initialize(frame, box)
        assert tracker.size[0] <= 320 and tracker.size[1] <= 240
        result = tracker.track(frame)
        assert result.box[2] <= 320 and result.box[3] <= 240


# ------------------------------------------------------------------------------------ warm-up

def test_warm_up_accepts_a_finite_model_and_refuses_nan_weights(tmp_path):
    good = load_model(write_light_checkpoint(tmp_path / 'light.pth'))
    assert warm_up(prepare_model(good), 'cpu', 'fp32') > 0
    tracker = Tracker(good)
    assert warm_up(tracker) > 0 and tracker.state is None  # a tracker is reset afterwards
    broken = load_model(write_light_checkpoint(tmp_path / 'nan.pth', fill=math.nan))
    with pytest.raises(WarmUpError, match="not finite.*parameter '.*' holds NaN/Inf"):
        warm_up(prepare_model(broken), 'cpu', 'fp32')


# ------------------------------------------------------------------------------------ config bounds

@pytest.mark.parametrize('change, message', [({'search_size': 4096}, 'search_size'), ({'template_size': 8}, 'template'),
                                             ({'d_model': 100000, 'nhead': 1}, 'd_model'),
                                             ({'num_fusion_layers': 1000}, 'num_fusion_layers'),
                                             ({'template_size': 256, 'search_size': 128}, 'must not exceed'),
                                             ({'dropout': 1.5}, 'dropout'), ({'nhead': 2.5}, 'nhead')])
def test_config_bounds(change, message):
    with pytest.raises(ValueError, match=message):
        TransTConfig(**{**LIGHT, **change})


def test_hostile_checkpoint_config_is_refused_before_building(tmp_path):
    path = write_light_checkpoint(tmp_path / 'light.pth')
    stored = torch.load(path, weights_only=False)
    stored['config']['search_size'] = 4096
    torch.save(stored, tmp_path / 'hostile.pth')
    with pytest.raises(CheckpointError, match='search_size must be an integer in'):
        load_model(tmp_path / 'hostile.pth')


# ------------------------------------------------------------------------------------ image size limits

def test_compressed_dimensions_from_headers():
    image = np.zeros((48, 64, 3), np.uint8)
    for extension in ('.png', '.jpg'):
        encoded = cv2.imencode(extension, image)[1]
        assert compressed_dimensions(encoded) == (64, 48)
        assert compressed_dimensions(encoded.tobytes()) == (64, 48)
    progressive = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert compressed_dimensions(progressive) == (64, 48)
    assert compressed_dimensions(b'not an image') is None
    assert jpeg_dimensions(b'\xff\xd8\xff\xd9') is None


def test_decompression_bomb_is_refused_before_decoding():
    bomb = cv2.imencode('.png', np.zeros((8000, 8000, 3), np.uint8))[1]
    assert bomb.size < 300_000  # a few hundred KiB that decode to 192 MB
    with pytest.raises(ImageConversionError, match='exceeds max_image_pixels'):
        compressed_to_rgb('png', bomb, max_pixels=4096 * 4096)
    with pytest.raises(ImageConversionError, match='cannot read the dimensions'):
        compressed_to_rgb('jpeg', b'\x00' * 100, max_pixels=1000)
    small = cv2.imencode('.png', np.zeros((48, 64, 3), np.uint8))[1]
    assert compressed_to_rgb('png', small, max_pixels=64 * 48).shape == (48, 64, 3)


def test_raw_image_pixel_limit():
    data = bytes(64 * 48 * 3)
    assert image_to_rgb('rgb8', 48, 64, 64 * 3, data, max_pixels=64 * 48).shape == (48, 64, 3)
    with pytest.raises(ImageConversionError, match='exceeds max_image_pixels'):
        image_to_rgb('rgb8', 48, 64, 64 * 3, data, max_pixels=64 * 48 - 1)


def test_model_handle_passes_cuda_graph_and_tf32_to_its_trackers(tmp_path):
    from transt_ros.ros.model_handle import ModelHandle

    handle = ModelHandle()
    model = prepare_model(load_model(write_light_checkpoint(tmp_path / 'light.pth')))
    handle.load(model, 'cpu', 'fp32', cuda_graph=True, allow_tf32=True)
    handle.set_active(True)
    tracker, generation = handle.new_tracker(window_influence=0.3)
    # cuda_graph is ignored on the CPU (the eager step runs); allow_tf32 is passed on
    assert tracker._graph_step is None and tracker.allow_tf32 and tracker.params.window_influence == 0.3
    assert tracker.model is model and generation == handle.generation
    assert 'CUDA graphs' not in handle.describe() and 'TF32 allowed' in handle.describe()
