"""The CUDA-graph tracking step (runs where CUDA is present; skipped with the reason elsewhere)."""
import numpy as np
import pytest
import torch

from transt_ros.model import TransTConfig, build_transt
from transt_ros.tracking import MultiTracker, Tracker, prepare_model
from transt_ros.tracking.graph_step import batch_bucket, tf32_scope

from .golden_helpers import VIDEOS, video

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device (none here)')]


def _frames(count, height=240, width=320):
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope='module')
def light_model():
    torch.manual_seed(0)
    config = TransTConfig(backbone='resnet18', d_model=32, nhead=4, num_fusion_layers=1, dim_feedforward=64,
                          template_size=64, search_size=128)
    return build_transt(config).eval()


def _track(tracker, frames, box):
    tracker.initialize(frames[0], box)
    return np.array([tracker.track(frame).box for frame in frames[1:]])


@pytest.mark.parametrize('name', VIDEOS)
def test_graph_step_equals_the_eager_step_and_the_authors(golden_model, name):
    data = video(name)
    graph = Tracker(golden_model, device='cuda', cuda_graph=True)
    eager = Tracker(golden_model, device='cuda', device_crop=True)
    graph_boxes = _track(graph, data['frames'], data['init_bbox'])
    eager_boxes = _track(eager, data['frames'], data['init_bbox'])
    np.testing.assert_allclose(graph_boxes, eager_boxes, atol=0.05, rtol=0)
    np.testing.assert_allclose(graph_boxes, data['boxes'][1:], atol=0.05, rtol=0)


def test_a_new_template_reuses_the_graph(light_model):
    frames = _frames(6)
    tracker = Tracker(light_model, device='cuda', cuda_graph=True)
    eager = Tracker(light_model, device='cuda', device_crop=True)
    for box in [(40, 30, 60, 50), (150, 100, 80, 70), (10, 120, 50, 90)]:
        np.testing.assert_allclose(_track(tracker, frames, box), _track(eager, frames, box), atol=1e-3)
    assert tracker._graph_step.graph_count == 1


def test_trackers_of_one_prepared_model_share_their_graphs(light_model):
    prepared = prepare_model(light_model, device='cuda')
    first = Tracker(prepared, device='cuda', prepared=True, cuda_graph=True)
    second = Tracker(prepared, device='cuda', prepared=True, cuda_graph=True)
    other_window = Tracker(prepared, device='cuda', prepared=True, cuda_graph=True, window_influence=0.2)
    frames = _frames(3)
    _track(first, frames, (40, 30, 60, 50))
    _track(second, frames, (150, 100, 80, 70))
    assert first._graph_step is second._graph_step and first._graph_step.graph_count == 1
    assert other_window._graph_step is not first._graph_step


def test_multitracker_graph_equals_single_trackers(light_model):
    frames = _frames(5)
    boxes = [(40, 30, 60, 50), (150, 100, 80, 70), (10, 120, 50, 90)]
    multi = MultiTracker(light_model, device='cuda', cuda_graph=True)
    singles = [Tracker(light_model, device='cuda') for _ in boxes]
    for box, single in zip(boxes, singles):
        multi.add(frames[0], box)
        single.initialize(frames[0], box)
    for frame in frames[1:]:
        for result, single in zip(multi.track([frame] * len(boxes)), singles):
            np.testing.assert_allclose(result.box, single.track(frame).box, atol=1e-2)
    assert batch_bucket(3) == 4 and multi.tracker._graph_step.graph_count == 1
    multi.remove(1)  # 2 targets: a new bucket, the remaining targets keep their state
    assert len(multi.track([frames[1]] * 2)) == 2


def test_full_cache_runs_eagerly_with_one_warning(light_model):
    tracker = Tracker(light_model, device='cuda', cuda_graph=True, max_graphs=1)
    eager = Tracker(light_model, device='cuda', device_crop=True)
    small, large = _frames(3, 120, 160), _frames(3, 240, 320)
    _track(tracker, small, (40, 30, 50, 40))
    with pytest.warns(RuntimeWarning, match='cache full') as caught:
        graph_boxes = _track(tracker, large, (40, 30, 50, 40))
    assert len([w for w in caught if 'cache full' in str(w.message)]) == 1
    np.testing.assert_allclose(graph_boxes, _track(eager, large, (40, 30, 50, 40)), atol=1e-3)


def test_tf32_is_scoped_to_the_tracker():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with tf32_scope(not before[0]):
        assert torch.backends.cuda.matmul.allow_tf32 is (not before[0])
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
