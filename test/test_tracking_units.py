"""Unit tests of the tracker's maths and its input checks."""
import math

import cv2
import numpy as np
import pytest
import torch

from transt_ros.model import TransTConfig, build_transt
from transt_ros.tracking import MultiTracker, Tracker, TrackerInputError, prepare_model
from transt_ros.tracking.crop import (
    FrameUploader,
    context_side,
    crop_and_resize,
    crop_window,
    normalize_crop,
)
from transt_ros.tracking.device_step import pack_geometry, resize_fixed_point
from transt_ros.tracking.postprocess import (
    PostprocessParams,
    clip_box,
    decode_box,
    hanning_window,
    penalize,
)

PAD = np.array([10.7, 20.2, 30.9])


def _padded_reference(image, center, side, output, pad_value):
    """The textbook way: pad the whole image, then slice (what the authors do)."""
    x0, y0 = crop_window(center, side)
    margin = side + 100
    big = np.empty((image.shape[0] + 2 * margin, image.shape[1] + 2 * margin, 3), np.uint8)
    big[...] = pad_value.astype(np.uint8)
    big[margin:margin + image.shape[0], margin:margin + image.shape[1]] = image
    patch = big[y0 + margin:y0 + margin + side, x0 + margin:x0 + margin + side]
    return patch if side == output else cv2.resize(patch, (output, output))


def _image(height=60, width=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_crop_window_matches_the_authors_rounding():
    assert crop_window((50.0, 40.0), 21) == (39, 29)
    assert crop_window((50.5, 40.5), 20) == (40, 30)
    assert crop_window((0.0, 0.0), 10) == (-5, -5)


@pytest.mark.parametrize('center', [(40, 30), (0, 0), (80, 60), (0, 60), (80, 0), (40, -5), (85, 30), (-30, -30)],
                         ids=['inside', 'top-left', 'bottom-right', 'bottom-left', 'top-right', 'top',
                              'right', 'fully-outside'])
@pytest.mark.parametrize('side,output', [(31, 31), (31, 16), (100, 64)])
def test_crop_pads_with_the_first_frame_mean_at_every_border(center, side, output):
    image = _image()
    crop = crop_and_resize(image, center, side, output, PAD)
    np.testing.assert_array_equal(crop, _padded_reference(image, center, side, output, PAD))


def test_crop_padding_value_is_truncated_to_uint8():
    crop = crop_and_resize(_image(), (-100, -100), 8, 8, PAD)
    assert (crop.reshape(-1, 3) == np.array([10, 20, 30], np.uint8)).all()


def test_crop_rejects_a_degenerate_side():
    with pytest.raises(ValueError):
        crop_and_resize(_image(), (10, 10), 0, 8, PAD)


def test_normalize_crop_uses_imagenet_statistics():
    patch = np.full((4, 4, 3), 255, np.uint8)
    tensor = normalize_crop(patch)
    assert tensor.shape == (1, 3, 4, 4)
    expected = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(tensor[0, :, 0, 0], expected)


def test_context_side():
    assert context_side(10, 10, 2) == pytest.approx(20)
    assert context_side(10, 20, 4) == pytest.approx(math.sqrt(55 * 65))


def test_hanning_window_is_the_outer_product_in_row_major_order():
    window = hanning_window(32)
    assert window.shape == (1024,)
    hanning = np.hanning(32)
    assert window[5 * 32 + 7] == pytest.approx(hanning[5] * hanning[7])
    assert window.reshape(32, 32)[0].max() == 0.0
    assert window.max() < 1.0


def test_window_penalty_moves_the_choice_to_the_centre():
    window = hanning_window(4)
    scores = np.zeros(16)
    scores[0], scores[5] = 0.9, 0.5
    assert np.argmax(penalize(scores, window, 0.0)) == 0
    assert np.argmax(penalize(scores, window, 0.49)) == 5
    np.testing.assert_allclose(penalize(scores, window, 1.0), window)


def test_decode_box_scales_and_shifts_to_the_previous_centre():
    box = decode_box([0.5, 0.25, 0.1, 0.2], previous_center=(100.0, 50.0), search_side=200)
    np.testing.assert_allclose(box, [100.0, 0.0, 20.0, 40.0])


def test_clip_box_limits_centre_and_sides():
    assert clip_box(-5, 500, 3, 1000, image_height=360, image_width=480) == (0.0, 360, 10.0, 360)
    assert clip_box(100, 100, 50, 60, image_height=360, image_width=480) == (100, 100, 50, 60)


def test_postprocess_params_are_validated():
    with pytest.raises(ValueError):
        PostprocessParams(window_influence=1.5)


@pytest.fixture(scope='module')
def light_tracker():
    torch.manual_seed(0)
    config = TransTConfig(backbone='resnet18', d_model=32, nhead=4, num_fusion_layers=1, dim_feedforward=64,
                          template_size=64, search_size=128)
    return Tracker(build_transt(config), window_influence=0.3)


def test_track_before_initialize_is_an_error(light_tracker):
    light_tracker.reset()
    with pytest.raises(RuntimeError, match='initialize'):
        light_tracker.track(_image())


@pytest.mark.parametrize('frame,match', [
    (np.zeros((60, 80, 3), np.float32), 'uint8'),
    (np.zeros((60, 80), np.uint8), 'H x W x 3'),
    (np.zeros((60, 80, 4), np.uint8), 'H x W x 3'),
    (np.zeros((0, 80, 3), np.uint8), 'empty'),
    ([[1, 2, 3]], 'numpy array'),
])
def test_bad_frames_are_refused(light_tracker, frame, match):
    with pytest.raises(TrackerInputError, match=match):
        light_tracker.initialize(frame, (10, 10, 20, 20))


@pytest.mark.parametrize('box,match', [
    ((10, 10, 0, 20), 'positive'),
    ((10, 10, 20, -1), 'positive'),
    ((100, 10, 20, 20), 'outside'),
    ((-30, -30, 20, 20), 'outside'),
    ((float('nan'), 10, 20, 20), 'non-finite'),
    ((1, 2, 3), '4 numbers'),
])
def test_bad_boxes_are_refused(light_tracker, box, match):
    with pytest.raises(TrackerInputError, match=match):
        light_tracker.initialize(_image(), box)


def test_tracking_returns_a_box_inside_limits_and_a_probability(light_tracker):
    image = _image(120, 160)
    light_tracker.initialize(image, (150, 110, 30, 30))
    assert light_tracker.params.window_influence == 0.3
    for _ in range(3):
        result = light_tracker.track(image)
        x, y, w, h = result.box
        assert 10 <= w <= 160 and 10 <= h <= 120
        assert 0 <= x + w / 2 <= 160 and 0 <= y + h / 2 <= 120
        assert 0.0 <= result.score <= 1.0


def test_reduced_precision_needs_cuda():
    with pytest.raises(ValueError, match='CUDA'):
        Tracker(build_transt(TransTConfig(backbone='resnet18', d_model=32, nhead=4, num_fusion_layers=1,
                                          dim_feedforward=64)), precision='fp16')


def test_batched_multi_tracker_equals_separate_trackers():
    torch.manual_seed(5)
    config = TransTConfig(backbone='resnet18', d_model=32, nhead=4, num_fusion_layers=1, dim_feedforward=64,
                          template_size=64, search_size=128)
    model = build_transt(config)
    frames = [_image(120, 160), np.ascontiguousarray(_image(120, 160)[::-1])]
    boxes = [(20, 30, 40, 30), (90, 50, 25, 35)]
    multi = MultiTracker(model)
    singles = [Tracker(model) for _ in boxes]
    for frame, box, single in zip(frames, boxes, singles):
        multi.add(frame, box)
        single.initialize(frame, box)
    for _ in range(2):
        batched = multi.track(frames)
        for result, single, frame in zip(batched, singles, frames):
            expected = single.track(frame)
            np.testing.assert_allclose(result.box, expected.box, atol=1e-3)
            assert result.score == pytest.approx(expected.score, abs=1e-5)
    with pytest.raises(TrackerInputError):
        multi.track(frames[:1])


@pytest.mark.parametrize('center', [(40, 30), (0, 0), (85, 30), (-30, -30), (500, 500)])
@pytest.mark.parametrize('side,output', [(31, 31), (31, 16), (100, 64), (128, 64), (173, 128), (801, 256)])
def test_device_crop_equals_the_opencv_crop_when_shrinking(center, side, output):
    image = _image()
    expected = crop_and_resize(image, center, side, output, PAD)
    geometry = torch.from_numpy(pack_geometry([center], [side], [PAD]))
    actual = resize_fixed_point(FrameUploader('cpu')(image), geometry, output)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize('center', [(40, 30), (-10, 70)])
@pytest.mark.parametrize('side,output', [(47, 128), (100, 256), (3, 128)])
def test_device_crop_enlarging_is_within_one_grey_level_of_opencv(center, side, output):
    image = _image()
    expected = crop_and_resize(image, center, side, output, PAD).astype(int)
    geometry = torch.from_numpy(pack_geometry([center], [side], [PAD]))
    actual = resize_fixed_point(FrameUploader('cpu')(image), geometry, output)[0].permute(1, 2, 0).numpy()
    difference = np.abs(actual - expected)
    assert difference.max() <= 1
    assert (difference > 0).mean() < 0.05  # OpenCV rounds a few enlarged pixels the other way


def test_device_crops_of_several_targets_are_batched():
    image = _image()
    centers, sides = [(40, 30), (-20, 10), (60, 50)], [64, 90, 200]
    geometry = torch.from_numpy(pack_geometry(centers, sides, [PAD, PAD * 2, PAD * 3]))
    batched = resize_fixed_point(torch.from_numpy(image), geometry, 64)
    for index, (center, side) in enumerate(zip(centers, sides)):
        expected = crop_and_resize(image, center, side, 64, PAD * (index + 1))
        np.testing.assert_array_equal(batched[index].permute(1, 2, 0).numpy(), expected)


@pytest.mark.parametrize('path', ['reference', 'fast'])
def test_device_step_equals_the_host_step(light_tracker, path):
    """Crop, network, window penalty, argmax, decode and clip on the device give the host path's
    answer (a box shrinking crop, so the crops are bit-identical)."""
    frames = [_image(120, 160, seed) for seed in range(4)]
    on_device = Tracker(light_tracker.model, path=path, device_crop=True, window_influence=0.3)
    on_host = Tracker(light_tracker.model, path=path, window_influence=0.3)
    for tracker in (on_device, on_host):
        tracker.initialize(frames[0], (50, 40, 70, 60))
    for frame in frames[1:]:
        device_result, host_result = on_device.track(frame), on_host.track(frame)
        np.testing.assert_allclose(device_result.box, host_result.box, atol=1e-6)
        assert device_result.score == pytest.approx(host_result.score, abs=1e-6)
        assert device_result.penalized_score == pytest.approx(host_result.penalized_score, abs=1e-6)


def test_device_step_batches_targets_of_one_frame(light_tracker):
    frames = [_image(120, 160, seed) for seed in range(3)]
    boxes = [(50, 40, 70, 60), (10, 10, 40, 40), (100, 70, 50, 45)]
    multi = MultiTracker(light_tracker.model, path='fast', device_crop=True)
    singles = [Tracker(light_tracker.model, path='fast') for _ in boxes]
    for box, single in zip(boxes, singles):
        multi.add(frames[0], box)
        single.initialize(frames[0], box)
    for frame in frames[1:]:
        for result, single in zip(multi.track([frame] * len(boxes)), singles):
            np.testing.assert_allclose(result.box, single.track(frame).box, atol=1e-3)


def test_cuda_graph_needs_cuda(light_tracker):
    with pytest.raises(ValueError, match='CUDA device'):
        Tracker(light_tracker.model, cuda_graph=True)


def test_trackers_can_share_one_prepared_model(light_tracker):
    prepared = prepare_model(light_tracker.model, path='fast')
    first = Tracker(prepared, prepared=True, window_influence=0.2)
    second = Tracker(prepared, prepared=True)
    assert first.model is prepared and second.model is prepared
    assert first.params.window_influence == 0.2 and second.params.window_influence == 0.49
    image = _image(120, 160)
    first.initialize(image, (50, 40, 30, 30))
    second.initialize(image, (10, 10, 20, 20))
    assert first.state is not second.state
    with pytest.raises(ValueError, match='precision'):
        prepare_model(light_tracker.model, precision='fp64')
