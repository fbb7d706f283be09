"""The inference runtimes (``transt_ros/runtimes``): exact in fp32 against the authors' golden boxes,
the same tracker API, cached compiles, clear errors for what is missing."""
import os
import sys

import numpy as np
import pytest
import torch

from transt_ros.checkpoint import load_model
from transt_ros.runtimes import backends, model_cache
from transt_ros.runtimes.backends import BackendUnavailable, check_backend, resolve_backend
from transt_ros.runtimes.onnx_export import StepInputs, reference_outputs
from transt_ros.tracking import MultiTracker, Tracker
from transt_ros.tracking.tracker import prepare_model
from transt_ros.training.synthetic import SyntheticVideos

from .golden_helpers import VIDEOS, assert_tracks_golden, video

CPU_RUNTIMES = [name for name in ('openvino', 'onnxruntime') if backends.installed(name)]
needs_openvino = pytest.mark.skipif(not backends.installed('openvino'), reason='openvino is not installed')


@pytest.mark.parametrize('backend', CPU_RUNTIMES)
@pytest.mark.parametrize('name', VIDEOS)
def test_fp32_runtimes_give_the_golden_boxes(golden_model, backend, name):
    assert_tracks_golden(Tracker(golden_model, backend=backend), name, backend)


def test_cpu_runtimes_are_in_the_lock():
    """The lock installs both CPU runtimes, so the tests above never silently run on nothing."""
    assert CPU_RUNTIMES == ['openvino', 'onnxruntime']


@pytest.fixture(scope='module')
def demo_model():
    return load_model(os.path.join(os.path.dirname(__file__), '..', 'transt_ros', 'data', 'demo_model.pth'))


@pytest.mark.parametrize('backend', CPU_RUNTIMES)
def test_multi_tracker_batches_equal_single_trackers(demo_model, backend):
    videos = SyntheticVideos(num_videos=3, frames_per_video=6, seed=11)
    multi = MultiTracker(demo_model, backend=backend)
    singles = [Tracker(multi.tracker.model, prepared=True) for _ in range(3)]
    for index, single in enumerate(singles):
        multi.add(videos.frame(index, 0), videos.boxes(index)[0])
        single.initialize(videos.frame(index, 0), videos.boxes(index)[0])
    for frame_id in range(1, 6):
        frames = [videos.frame(index, frame_id) for index in range(3)]
        batched = multi.track(frames)
        for single, frame, result in zip(singles, frames, batched):
            np.testing.assert_allclose(result.box, single.track(frame).box, atol=1e-3)
    compiled = multi.tracker.model.compile_seconds
    assert all(seconds > 0 for seconds in compiled.values())
    # one compile per step: both runtimes take any batch (a new number of targets never compiles again)
    assert [key for key in compiled if key[0] == 'track'] == [('track', 3)], compiled


@needs_openvino
def test_compiled_steps_are_cached_per_shape_and_exports_per_weights(demo_model, monkeypatch):
    model = prepare_model(demo_model, backend='openvino')
    inputs = StepInputs.random(demo_model.config, batch=2)
    template = model.template(inputs.template)
    model.track(template, inputs.search)
    assert set(model.compile_seconds) == {('template', 2), ('track', 2)}
    compiles = []
    monkeypatch.setattr(type(model), '_compile', lambda self, *args: compiles.append(args) or 1 / 0)
    model.track(template, inputs.search)  # same shapes: no compile
    one = StepInputs.random(demo_model.config, batch=1)
    model.track(model.template(one.template), one.search)  # another batch: no compile either
    assert compiles == []
    # the same weights again: the export comes from the disk cache
    monkeypatch.undo()
    exports = []
    monkeypatch.setattr(model_cache, 'export_steps', lambda m: exports.append(m) or 1 / 0)
    again = prepare_model(demo_model, backend='openvino')
    assert again.digest == model.digest and exports == []
    # other weights: another digest (never a stale export)
    other = load_model(os.path.join(os.path.dirname(__file__), '..', 'transt_ros', 'data', 'demo_model.pth'))
    with torch.no_grad():
        other.class_embed.layers[-1].bias.add_(1e-3)
    assert model_cache.weights_digest(other) != model.digest


@needs_openvino
def test_exported_steps_equal_pytorch(demo_model):
    model = prepare_model(demo_model, backend='openvino')
    inputs = StepInputs.random(demo_model.config, batch=1, seed=3)
    expected = reference_outputs(demo_model, inputs)
    template = model.template(inputs.template)
    out = model.track(template, inputs.search)
    np.testing.assert_allclose(template.attended.numpy(), expected['attended'], atol=1e-4)
    np.testing.assert_allclose(out['pred_logits'].numpy(), expected['logits'], atol=1e-4)
    np.testing.assert_allclose(out['pred_boxes'].numpy(), expected['boxes'], atol=1e-5)


def test_backend_choices_are_checked():
    assert check_backend('torch', 'fp32', 'cpu') == 'torch'
    assert resolve_backend('auto', 'cuda') == 'torch'
    assert resolve_backend('auto', 'cpu') == ('openvino' if backends.installed('openvino') else 'torch')
    with pytest.raises(ValueError, match='backend must be one of'):
        check_backend('tflite', 'fp32', 'cpu')
    with pytest.raises(ValueError, match="runs fp32, not 'int8'"):
        check_backend('onnxruntime', 'int8', 'cpu')
    with pytest.raises(ValueError, match='runs on cuda, not on cpu'):
        check_backend('tensorrt', 'fp16', 'cpu')
    with pytest.raises(ValueError, match='runs on cpu, not on cuda'):
        check_backend('openvino', 'fp32', 'cuda')
    with pytest.raises(ValueError, match="needs a CUDA device"):
        check_backend('torch', 'bf16', 'cpu')
    with pytest.raises(ValueError, match='precision must be one of'):
        check_backend('torch', 'fp64', 'cpu')
    with pytest.raises(ValueError, match="path 'reference' needs backend 'torch'"):
        prepare_model(torch.nn.Linear(1, 1), backend='onnxruntime', path='reference')


def test_a_missing_runtime_names_its_package(monkeypatch, golden_model):
    monkeypatch.setitem(backends.PACKAGES, 'openvino', ('no_such_openvino_module', 'openvino'))
    monkeypatch.setitem(sys.modules, 'no_such_openvino_module', None)
    with pytest.raises(BackendUnavailable, match="needs the Python package 'openvino'.*pip install openvino"):
        Tracker(golden_model, backend='openvino')
    assert resolve_backend('auto', 'cpu') == 'torch'


def test_compiled_model_refuses_the_torch_only_steps(golden_model):
    backend = CPU_RUNTIMES[0]
    with pytest.raises(ValueError, match='device_crop and cuda_graph are steps of the torch backend'):
        Tracker(golden_model, backend=backend, device_crop=True)


def test_transt_export_writes_both_steps_checked_against_pytorch(light_checkpoint, tmp_path, capsys):
    import json

    from transt_ros.deploy.export_cli import main

    out = tmp_path / 'export'
    assert main([str(light_checkpoint), str(out), '--batch', '1', '3']) == 0
    printed = capsys.readouterr().out
    assert 'largest |runtime - PyTorch| over batches 1, 3' in printed and 'trtexec --onnx=' in printed
    report = json.loads((out / 'export.json').read_text())
    assert (out / 'template.onnx').stat().st_size > 0 and (out / 'track.onnx').stat().st_size > 0
    assert report['batches_checked'] == [1, 3]
    assert set(report['largest_abs_difference']) == {'tokens', 'pos', 'attended', 'logits', 'boxes'}
    assert max(report['largest_abs_difference'].values()) < 1e-3
    assert report['inputs']['track']['search'] == ['B', 3, 128, 128]
    # a tolerance the export cannot meet fails the command
    assert main([str(light_checkpoint), str(tmp_path / 'strict'), '--batch', '1', '--tolerance', '0']) == 1


def test_transt_export_names_a_corrupt_checkpoint(tmp_path, capsys):
    from transt_ros.deploy.export_cli import main

    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint')
    assert main([str(bad), str(tmp_path / 'out')]) == 1
    assert 'bad.pth' in capsys.readouterr().err


@needs_openvino
def test_int8_is_calibrated_once_then_tracks(light_checkpoint):
    from transt_ros.deploy.calibration import ensure_int8
    from transt_ros.runtimes.int8 import int8_model_path
    from transt_ros.runtimes.model_cache import model_folder

    model = load_model(light_checkpoint)
    with torch.no_grad():  # weights of its own: no int8 model in the cache yet
        model.bbox_embed.layers[-1].bias.add_(0.01)
    with pytest.raises(FileNotFoundError, match='transt-export CHECKPOINT OUT_DIR --int8'):
        Tracker(model, backend='openvino', precision='int8')
    lines = []
    digest = ensure_int8(model, scenes=2, frames=4, log=lines.append)
    assert int8_model_path(model_folder(digest)).is_file() and len(lines) == 2
    assert ensure_int8(model, scenes=2, frames=4, log=lines.append) == digest and len(lines) == 2  # cached
    videos = SyntheticVideos(num_videos=1, frames_per_video=5, seed=5)
    int8 = Tracker(model, backend='openvino', precision='int8')
    fp32 = Tracker(model, backend='openvino')
    for tracker in (int8, fp32):
        tracker.initialize(videos.frame(0, 0), videos.boxes(0)[0])
    for frame_id in range(1, 5):
        a, b = int8.track(videos.frame(0, frame_id)), fp32.track(videos.frame(0, frame_id))
        assert np.all(np.isfinite(a.box)) and 0.0 <= a.score <= 1.0
        assert np.abs(np.array(a.box) - np.array(b.box)).max() < 40  # quantised, not another tracker


@needs_openvino
def test_bf16_runs_where_the_cpu_has_it_and_is_refused_elsewhere(golden_model):
    from transt_ros.runtimes.compiled_model import OpenVinoModel

    has_bf16 = 'BF16' in OpenVinoModel.core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
    if not has_bf16:
        with pytest.raises(ValueError, match='no bf16 instructions'):
            Tracker(golden_model, backend='openvino', precision='bf16')
        return
    data = video(VIDEOS[0])
    tracker = Tracker(golden_model, backend='openvino', precision='bf16')
    tracker.initialize(data['frames'][0], data['init_bbox'])
    result = tracker.track(data['frames'][1])
    assert np.abs(np.array(result.box) - data['boxes'][1]).max() < 5.0


def test_the_manager_refuses_a_backend_it_cannot_run(monkeypatch):
    pytest.importorskip('rclpy')
    from transt_ros.ros.model_manager_node import parameter_problem

    assert parameter_problem('backend', 'auto') is None and parameter_problem('backend', 'torch') is None
    assert 'backend must be one of' in parameter_problem('backend', 'tflite')
    assert parameter_problem('precision', 'int8') is None
    assert 'precision must be one of' in parameter_problem('precision', 'fp64')
    monkeypatch.setitem(backends.PACKAGES, 'tensorrt', ('no_such_tensorrt_module', 'tensorrt-cu13'))
    monkeypatch.setitem(sys.modules, 'no_such_tensorrt_module', None)
    assert "needs the Python package 'tensorrt-cu13'" in parameter_problem('backend', 'tensorrt')
