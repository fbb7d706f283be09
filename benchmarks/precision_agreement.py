"""How far the reduced-precision CUDA paths drift from fp32 on the golden videos.

Runs the authors' architecture with the golden weights over the three golden videos
(``../shared/golden`` by default) with fp32 and with fp16/bf16 (and the on-device crop),
and prints the largest box difference in pixels per video. Needs a CUDA device.

    python benchmarks/precision_agreement.py --device cuda --golden-dir ../shared/golden
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

from transt_ros.checkpoint import load_model
from transt_ros.tracking import Tracker


def golden_model(golden_dir: Path):
    spec = importlib.util.spec_from_file_location('golden_weights', golden_dir / 'golden_weights.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    zeros = {}
    for line in (golden_dir / 'keys.tsv').read_text().splitlines():
        key, shape, dtype = line.split('\t')
        dims = () if shape == 'scalar' else tuple(int(v) for v in shape.split('x'))
        zeros[key] = torch.zeros(dims, dtype=getattr(torch, dtype))
    return load_model(module.golden_state_dict(zeros))


def run(tracker, data) -> np.ndarray:
    tracker.initialize(data['frames'][0], data['init_bbox'])
    return np.array([tracker.track(frame).box for frame in data['frames'][1:]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--golden-dir', type=Path, default=Path(__file__).resolve().parents[2] / 'shared' / 'golden')
    args = parser.parse_args(argv)
    if not args.device.startswith('cuda') or not torch.cuda.is_available():
        print('precision_agreement: needs a CUDA device', file=sys.stderr)
        return 2
    model = golden_model(args.golden_dir)
    variants = [('fp16', False), ('fp16', True), ('bf16', True)]
    report = {}
    for name in ('mid', 'corner', 'large'):
        data = np.load(args.golden_dir / f'track_{name}.npz')
        baseline = run(Tracker(model, device=args.device), data)
        report[name] = {'fp32_vs_authors_px': float(np.abs(baseline - data['boxes'][1:]).max())}
        for precision, device_crop in variants:
            boxes = run(Tracker(model, device=args.device, precision=precision, device_crop=device_crop), data)
            label = precision + (' torch-crop' if device_crop else '')
            report[name][f'{label}_vs_fp32_px'] = float(np.abs(boxes - baseline).max())
    print(json.dumps({'device': torch.cuda.get_device_name(args.device), 'max_box_difference': report}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
