"""The node's track registry on CUDA graphs (runs where CUDA is present; skipped with the reason elsewhere):
tracks added and removed between frames, one graph replay per frame, boxes equal to the eager device step.

Also runs without pytest: ``PYTHONPATH=. python test/test_track_registry_cuda.py``.
"""
import numpy as np
import torch

try:
    import pytest
except ImportError:  # a bare GPU machine (PyTorch, OpenCV, numpy): run as a script
    pytest = None

from transt_ros.model import TransTConfig, build_transt
from transt_ros.tracking import Tracker, prepare_model
from transt_ros.tracking.track_registry import Hysteresis, Track, TrackRegistry

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason='needs a CUDA device (none here)')] if pytest else []

BOXES = [(20 + 35 * index, 40 + 20 * (index % 3), 30, 30) for index in range(8)]


def _run(engine, frames, plan):
    """``plan``: per frame, the number of tracks to have (tracks added or the newest removed before it)."""
    registry = TrackRegistry(max_targets=8)
    boxes = []
    for seq, (frame, count) in enumerate(zip(frames, plan), start=1):
        while len(registry) < count:
            box = BOXES[len(registry)]
            registry.put(Track(registry.new_id(), engine.new_target(frames[0], box), 1, seq - 1, box, 1.0))
        while len(registry) > count:
            registry.remove(registry.tracks()[-1].track_id)
        steps = registry.step(engine, frame, seq, 0.0, Hysteresis())
        boxes.append(np.array([step.track.box for step in steps]))
    return boxes, registry.stack_count


def test_graph_registry_equals_eager_device_step():
    torch.manual_seed(0)
    config = TransTConfig(backbone='resnet18', d_model=32, nhead=4, num_fusion_layers=1, dim_feedforward=64,
                          template_size=64, search_size=128)
    model = prepare_model(build_transt(config).eval(), 'cuda')
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(10)]
    plan = [1, 2, 2, 4, 4, 8, 8, 3, 3, 1]
    graph_engine = Tracker(model, device='cuda', prepared=True, cuda_graph=True)
    eager_engine = Tracker(model, device='cuda', prepared=True, device_crop=True)
    graph_boxes, graph_stacks = _run(graph_engine, frames, plan)
    eager_boxes, _ = _run(eager_engine, frames, plan)
    assert graph_stacks == 6  # once per change of the set of tracks
    for graph, eager in zip(graph_boxes, eager_boxes):
        assert graph.shape == eager.shape and np.abs(graph - eager).max() < 0.05
    assert graph_engine._graph_step.graph_count <= 4  # batch buckets 1, 2, 4, 8 at one frame size


if __name__ == '__main__':
    test_graph_registry_equals_eager_device_step()
    print('test_graph_registry_equals_eager_device_step: OK')
