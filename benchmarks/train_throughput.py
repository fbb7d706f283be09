"""Training throughput of a config on this machine: data loading, optimizer steps, both together.

    python benchmarks/train_throughput.py --config config/train_tiny.yaml --steps 20
    python benchmarks/train_throughput.py --config config/train_light.yaml --set data.num_workers=2

Prints the machine (CPU model, cores, torch threads, GPU), then one JSON line with
samples/s for: the data pipeline alone (``data``), training steps on one fixed batch
(``step``: forward, loss, backward, AdamW) and the loader feeding the steps (``train``).
The first ``--warmup`` steps are not timed. Nothing is written outside a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from machine import describe, machine_name  # benchmarks/machine.py: this script's folder is on sys.path

from transt_ros.training.config import load_config
from transt_ros.training.trainer import Trainer


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='config/train_tiny.yaml')
    parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='KEY=VALUE')
    parser.add_argument('--steps', type=int, default=20, help='timed steps (default 20)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first (default 3)')
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as output_dir:
        config = load_config(args.config, [*args.overrides, f'train.output_dir={output_dir}',
                                           'checkpoint.resume=false', 'train.progress_bar=false'])
        trainer = Trainer(config)
        device = trainer.device
        batch_size = config.train.batch_size
        machine = describe(str(device))
        gpu = machine.get('gpu')
        print(f'machine: {machine_name(machine, str(device))}; torch {torch.__version__}, '
              f'{machine["torch_threads"]} threads, device {device}')
        total = args.warmup + args.steps

        def timed(run_steps) -> float:
            start = time.perf_counter() if args.warmup == 0 else None
            for index in run_steps():
                if index == args.warmup - 1:
                    synchronize(device)
                    start = time.perf_counter()
            synchronize(device)
            return args.steps * batch_size / (time.perf_counter() - start)

        def data_only():
            for index, _ in enumerate(trainer.loader(0, total)):
                yield index

        batch = next(iter(trainer.loader(0, 1)))
        trainer.set_train_mode()

        def steps_only():
            for index in range(total):
                trainer.train_step(batch)
                yield index

        def loader_and_steps():
            for index, item in enumerate(trainer.loader(0, total)):
                trainer.train_step(item)
                yield index

        data_rate = timed(data_only)
        step_rate = timed(steps_only)
        train_rate = timed(loader_and_steps)
        trainer.close()
    result = {'config': args.config, 'overrides': args.overrides, 'device': str(device), 'gpu': gpu,
              'cpu': machine['cpu'], 'torch_threads': machine['torch_threads'], 'batch_size': batch_size,
              'num_workers': config.data.num_workers, 'amp': config.train.amp, 'steps': args.steps,
              'data_samples_per_s': round(data_rate, 2), 'step_samples_per_s': round(step_rate, 2),
              'train_samples_per_s': round(train_rate, 2)}
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
