#!/usr/bin/env bash
# Train the demo model on one GPU for a wall-clock budget, then export it (issue 12).
#
#   bash scripts/train_demo_gpu.sh OUT_DIR [KEY=VALUE ...]
#
# Runs from the source tree (PYTHONPATH=., no install, no ROS): needs PyTorch, numpy, OpenCV and
# scikit-image only (PyYAML, tqdm and TensorBoard are used when present). Trains
# config/train_demo_gpu.yaml (bf16 autocast on CUDA, 15 loader workers, pinned memory) until
# train.max_wall_seconds (280 s: with the machine's start-up the device call stays under 7 minutes),
# then writes into OUT_DIR:
#   demo_model.pth   the project checkpoint in fp16 (< 10 MB; copy it to transt_ros/data/demo_model.pth)
#   train.log        everything printed (progress every train.log_every steps: loss, samples/s)
#   log.csv          one row per logging window (losses, IoU, learning rate, samples/s)
#   summary.json     steps, samples, wall time, samples/s, final loss, checkpoint size
#   run/             the training run: model.pth (fp32), checkpoints/ (with optimizer state, ~50 MB
#                    each); TRANST_RUN_DIR=/elsewhere keeps them out of OUT_DIR
# KEY=VALUE pairs override the config (as transt-train --set), e.g. train.max_wall_seconds=30
# train.device=cpu data.num_workers=2 (the CPU smoke test of this script).
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: bash scripts/train_demo_gpu.sh OUT_DIR [KEY=VALUE ...]" >&2
    exit 2
fi
out="$1"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
config="${TRANST_TRAIN_CONFIG:-config/train_demo_gpu.yaml}"
run_dir="${TRANST_RUN_DIR:-$out/run}"

python - "$config" "$out" "$run_dir" "$@" <<'PYTHON' 2>&1 | tee "$out/train.log"
import json
import logging
import os
import shutil
import sys
import time

import torch

from transt_ros.checkpoint import load_model, save_checkpoint
from transt_ros.training.config import load_config
from transt_ros.training.trainer import Trainer

config_path, out_dir, run_dir, overrides = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
config = load_config(config_path, [*overrides, f'train.output_dir={run_dir}'])
print(f'config {config_path} {overrides}: model {config.model.to_dict()}')
print(f'torch {torch.__version__}, cuda {torch.cuda.is_available()}'
      + (f' ({torch.cuda.get_device_name(0)})' if torch.cuda.is_available() else '')
      + f', {os.cpu_count()} CPUs, {config.data.num_workers} loader workers, batch {config.train.batch_size}, '
      f'amp {config.train.amp}, budget {config.train.max_wall_seconds} s')
data = config.data
if data.num_workers:  # batches in flight live in /dev/shm: a small one (containers) would crash the loader
    batch_bytes = config.train.batch_size * 4 * 3 * (config.model.template_size ** 2 + config.model.search_size ** 2)
    try:
        free = shutil.disk_usage('/dev/shm').free
    except OSError:
        free = None
    if free is not None:
        fits = int(free / (1.5 * batch_bytes))  # batches that fit, with room to spare
        if fits < data.num_workers * data.prefetch_factor:
            data.prefetch_factor = max(1, fits // data.num_workers)
            data.num_workers = max(1, min(data.num_workers, fits // data.prefetch_factor))
            print(f'/dev/shm has {free / 1e9:.2f} GB free: {data.num_workers} workers x {data.prefetch_factor} '
                  'batches in flight')
        print(f'/dev/shm: {free / 1e9:.2f} GB free, {data.num_workers * data.prefetch_factor} batches of '
              f'{batch_bytes / 1e6:.1f} MB in flight')
if torch.cuda.is_available():
    torch.backends.cudnn.benchmark = True
started = time.monotonic()
trainer = Trainer(config)
set_up = time.monotonic() - started
try:
    history = trainer.train()
finally:
    trainer.close()
trained = time.monotonic() - started - set_up
model_path = os.path.join(run_dir, 'model.pth')
export_path = os.path.join(out_dir, 'demo_model.pth')
save_checkpoint(export_path, load_model(model_path), meta={'converted_from': 'train_demo_gpu.sh', 'step': trainer.step,
                                                            'config': config_path, 'overrides': overrides},
                half=True)
shutil.copyfile(os.path.join(run_dir, 'log.csv'), os.path.join(out_dir, 'log.csv'))
size_mb = os.path.getsize(export_path) / 1e6
samples = len(history) * config.train.batch_size
tail = history[-20:]
summary = {
    'steps': trainer.step, 'samples': samples, 'set_up_s': round(set_up, 1), 'train_s': round(trained, 1),
    'samples_per_s': round(samples / max(trained, 1e-9), 1),
    'final_loss': round(sum(r['loss'] for r in tail) / max(len(tail), 1), 4),
    'final_iou': round(sum(r['iou'] for r in tail) / max(len(tail), 1), 4),
    'checkpoint': export_path, 'checkpoint_mb': round(size_mb, 2), 'device': str(trainer.device),
}
with open(os.path.join(out_dir, 'summary.json'), 'w', encoding='utf-8') as stream:
    json.dump(summary, stream, indent=2)
print('summary', json.dumps(summary))
if size_mb >= 10:
    sys.exit(f'{export_path}: {size_mb:.1f} MB, over the 10 MB limit')
PYTHON
exit "${PIPESTATUS[0]}"
