"""The manager's load / track / cleanup cycle on CUDA without ROS (ModelHandle, TrackEngine and the
cleanup's memory release): the allocated CUDA memory returns to its level after every cycle. Runs where
CUDA is present; skipped with the reason elsewhere."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from transt_ros.model import TransTConfig, build_transt
from transt_ros.ros.model_handle import ModelHandle, return_freed_memory
from transt_ros.ros.track_engine import TrackEngine
from transt_ros.tracking import prepare_model
from transt_ros.tracking.track_registry import Hysteresis, Track

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device (none here)')]

LIGHT = dict(backbone='resnet18', d_model=64, nhead=4, num_fusion_layers=1, dim_feedforward=128,
             template_size=64, search_size=128)


@pytest.mark.parametrize('cuda_graph', [False, True])
def test_cuda_memory_returns_to_its_level_after_each_cleanup(cuda_graph):
    frames = [np.random.default_rng(index).integers(0, 255, (240, 320, 3), dtype=np.uint8) for index in range(4)]
    handle = ModelHandle()
    engine = TrackEngine(handle, 2)
    handle.add_listener(engine.on_model_changed)
    handle.add_activity_listener(engine.on_activity_changed)
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    levels = []
    for cycle in range(5):
        torch.manual_seed(cycle)
        model = prepare_model(build_transt(TransTConfig(**LIGHT)), 'cuda', 'fp32')
        handle.load(model, 'cuda', 'fp32', cuda_graph=cuda_graph)
        del model
        handle.set_active(True)
        tracker, generation = engine.tracker(0.49)
        for box in ((40, 40, 50, 50), (150, 100, 60, 40)):
            with engine.lock:
                track_id = engine.registry.new_id()
                engine.registry.put(Track(track_id, tracker.new_target(frames[0], box), generation, 1, box, 1.0))
        del tracker
        for seq, frame in enumerate(frames[1:], start=2):
            assert engine.step(frame, seq, 0.49, Hysteresis(), 0.0, lambda outcome: None) is not None
        handle.set_active(False)
        handle.release()
        return_freed_memory()
        torch.cuda.synchronize()
        levels.append(torch.cuda.memory_allocated())
    assert not engine.tracks()
    assert all(level <= baseline + 1024 * 1024 for level in levels), (baseline, levels)
