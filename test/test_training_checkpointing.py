"""Checkpoint files: a failed save keeps the previous ones, keep-last-N, RNG state round trip."""
import random

import numpy as np
import pytest
import torch

from transt_ros.common.files import atomic_torch_save
from transt_ros.training import checkpointing
from transt_ros.training.checkpointing import CheckpointManager, capture_rng_state, restore_rng_state


def test_a_failed_save_leaves_the_previous_checkpoints_and_no_temp_file(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path, keep_last=2)
    manager.save({'value': torch.tensor(1)}, 10)

    def broken_save(obj, stream):
        stream.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        manager.save({'value': torch.tensor(2)}, 20)
    monkeypatch.undo()
    assert manager.latest() == manager.path_for(10)
    assert checkpointing.read_training_checkpoint(manager.latest())['value'].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ['checkpoint_step000000010.pth']


def test_manager_keeps_the_last_n_and_finds_the_latest(tmp_path):
    manager = CheckpointManager(tmp_path / 'checkpoints', keep_last=2)
    assert manager.latest() is None
    for step in (5, 10, 100, 20):
        manager.save({'step': step}, step)
    (tmp_path / 'checkpoints' / 'notes.txt').write_text('ignored')
    assert [p.name for p in manager.checkpoints()] == ['checkpoint_step000000020.pth', 'checkpoint_step000000100.pth']
    assert checkpointing.read_training_checkpoint(manager.latest())['step'] == 100


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in the legacy state
    atomic_torch_save({'rng': capture_rng_state()}, tmp_path / 'rng.pth')
    expected = (random.random(), np.random.standard_normal(), np.random.random(), torch.rand(3))
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    restore_rng_state(checkpointing.read_training_checkpoint(tmp_path / 'rng.pth')['rng'])
    again = (random.random(), np.random.standard_normal(), np.random.random(), torch.rand(3))
    assert expected[:3] == again[:3] and torch.equal(expected[3], again[3])
