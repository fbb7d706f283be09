"""Two-process DistributedDataParallel training on CPU (gloo), launched by torchrun."""
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from transt_ros.training.checkpointing import read_training_checkpoint

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent('''
    import sys

    import torch

    from transt_ros.training.config import load_config
    from transt_ros.training.trainer import Trainer

    config = load_config(sys.argv[1], sys.argv[3:])
    trainer = Trainer(config)
    history = trainer.train()
    torch.save({'state': trainer.model.state_dict(), 'losses': [r['loss'] for r in history],
                'world_size': trainer.context.world_size},
               f'{sys.argv[2]}/rank{trainer.context.rank}.pt')
    trainer.close()
''')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    out = tmp_path / 'run'
    out.mkdir()
    env = {**os.environ, 'MASTER_ADDR': '127.0.0.1', 'OMP_NUM_THREADS': '1',
           'PYTHONPATH': os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))}
    command = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', '2',
               '--master_addr', '127.0.0.1', '--master_port', str(free_port()), str(script),
               str(ROOT / 'config' / 'train_tiny.yaml'), str(out),
               f'train.output_dir={out}', 'train.device=cpu', 'train.progress_bar=false', 'train.batch_size=2',
               'train.max_steps=3', 'data.samples_per_epoch=8', 'data.datasets.0.num_videos=20',
               'checkpoint.every_steps=2']
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0, rank1 = (torch.load(out / f'rank{r}.pt', weights_only=True) for r in (0, 1))
    assert rank0['world_size'] == rank1['world_size'] == 2
    assert len(rank0['losses']) == len(rank1['losses']) == 3
    assert rank0['losses'] != rank1['losses']  # each rank trained on its own samples
    for name, tensor in rank0['state'].items():
        assert torch.equal(tensor, rank1['state'][name]), name
    checkpoint = read_training_checkpoint(out / 'checkpoints' / 'checkpoint_step000000003.pth')
    assert len(checkpoint['rng']) == 2 and checkpoint['steps_per_epoch'] == 2  # 8 samples / (2 x 2 ranks)
    for name, tensor in checkpoint['model'].items():
        assert torch.equal(tensor, rank0['state'][name]), name
