"""Per-frame tracking speed: reference (eager fp32) vs fast paths, on CPU and CUDA.

Times ``Tracker.track`` on a 640x480 frame (crop, normalise, network, post-processing),
median of ``--iterations`` after warm-up, the reference path measured in the same run.
Prints one table (machine, path, ms/frame, fps, ratio to reference, % of the FLOP-bound
limit) and writes a JSON file.

    python benchmarks/track_speed.py                      # CPU, full TransT-R50
    python benchmarks/track_speed.py --device cuda        # adds fp16/bf16 and batched N=1,4,16
    python benchmarks/track_speed.py --threads 1 2 0      # each thread count (0: all cores), one table each

The runtimes (``--backends``, default every installed one for the device: OpenVINO fp32/bf16/int8 and
ONNX Runtime fp32 on the CPU, TensorRT fp32/fp16 on CUDA) are timed in the same round-robin as the
reference path; their one-time costs (export, compile, int8 calibration) are printed apart.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, machine_name  # noqa: E402

from transt_ros.model import build_transt  # noqa: E402
from transt_ros.runtimes.backends import installed  # noqa: E402
from transt_ros.tracking import MultiTracker, Tracker  # noqa: E402

RUNTIME_CONFIGURATIONS = {'cpu': [('openvino', 'fp32'), ('openvino', 'bf16'), ('openvino', 'int8'),
                                  ('onnxruntime', 'fp32')],
                          'cuda': [('tensorrt', 'fp32'), ('tensorrt', 'fp16')]}


def runtime_trackers(model, device: str, names: list[str]) -> tuple[list[tuple[str, Tracker]], list[str]]:
    """(label, tracker) of every runtime configuration asked for and possible here; notes on the rest."""
    kind = 'cuda' if device.startswith('cuda') else 'cpu'
    trackers, notes = [], []
    for backend, precision in RUNTIME_CONFIGURATIONS[kind]:
        if backend not in names:
            continue
        if not installed(backend):
            notes.append(f'{backend}: not installed')
            continue
        try:
            started = time.perf_counter()
            if precision == 'int8':
                from transt_ros.deploy.calibration import ensure_int8
                ensure_int8(model, log=lambda text: notes.append(text))
            tracker = Tracker(model, device=device, precision=precision, backend=backend)
            compiled = tracker.model
            notes.append(f'{backend} {precision}: ready in {time.perf_counter() - started:.1f} s (export '
                         f'{compiled.export_seconds:.1f} s; compiles happen at the first frames)')
            trackers.append((f'{backend} {precision}', tracker))
        except (ValueError, RuntimeError) as error:
            notes.append(f'{backend} {precision}: skipped: {error}')
    return trackers, notes


def _frame(seed=0, height=480, width=640):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _synchronize(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_trackers(trackers: list, frame, iterations, warmup, device) -> list[list[float]]:
    """Per-frame seconds of each tracker, measured round-robin so that drifts of the machine
    (clock, other load) hit every configuration alike. Each timed step starts from the same
    initial box, so every configuration crops the same region."""
    box = (290, 200, 60, 80)
    for tracker in trackers:
        tracker.initialize(frame, box)
        for _ in range(warmup):
            tracker.track(frame)
    times = [[] for _ in trackers]
    for _ in range(iterations):
        for tracker, samples in zip(trackers, times):
            tracker.initialize(frame, box)
            _synchronize(device)
            start = time.perf_counter()
            tracker.track(frame)
            _synchronize(device)
            samples.append(time.perf_counter() - start)
    return times


def time_batched(model, batch, frame, iterations, warmup, device, precision) -> float:
    multi = MultiTracker(model, device=device, precision=precision, device_crop=True)
    for index in range(batch):
        multi.add(frame, (50 + 10 * index % 500, 200, 60, 80))
    frames = [frame] * batch
    for _ in range(warmup):
        multi.track(frames)
    times = []
    for _ in range(iterations):
        _synchronize(device)
        start = time.perf_counter()
        multi.track(frames)
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def track_step_flops(model) -> int:
    """FLOP of one authors' tracking step (reference path: explicit attention matmuls)."""
    tracker = Tracker(model, path='reference')
    frame = _frame()
    tracker.initialize(frame, (290, 200, 60, 80))
    config = tracker.model.config
    search = torch.zeros(1, 3, config.search_size, config.search_size)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        tracker.model.track(tracker.state.template, search)
    return counter.get_total_flops()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--iterations', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--peak-gflops', type=float, default=None,
                        help='fp32 peak of the device (default: derived from /proc/cpuinfo on CPU)')
    parser.add_argument('--json', default='out/bench/track_speed.json')
    parser.add_argument('--backends', nargs='*', default=['openvino', 'onnxruntime', 'tensorrt'],
                        help='runtimes timed beside the torch paths (default: all; none: torch only)')
    parser.add_argument('--threads', type=int, nargs='+', default=[0],
                        help='CPU thread counts, one table each (0: all cores; default: 0)')
    args = parser.parse_args(argv)
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads or (os.cpu_count() or 1))
        results.append(run(args, torch.get_num_threads()))
    output = Path(args.json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results if len(results) > 1 else results[0], indent=2))
    print(f'wrote {output}')
    return 0


def run(args, threads: int) -> dict:

    torch.manual_seed(0)
    model = build_transt().eval()
    machine = describe(args.device)
    peak = args.peak_gflops or (machine['cpu_peak_gflops'] if args.device == 'cpu' else None)
    flops = track_step_flops(model)
    frame = _frame()
    configurations = [('reference', 'fp32', False), ('fast', 'fp32', False), ('fast', 'fp32', True)]
    if args.device.startswith('cuda'):
        configurations += [('fast', 'fp16', False), ('fast', 'fp16', True), ('fast', 'bf16', True)]
    trackers = [Tracker(model, device=args.device, precision=precision, path=path, device_crop=device_crop)
                for path, precision, device_crop in configurations]
    labels = [f'{path} {precision}' + (' device step' if device_crop else '')
              for path, precision, device_crop in configurations]
    runtimes, notes = runtime_trackers(model, args.device, args.backends)
    labels += [label for label, _ in runtimes]
    trackers += [tracker for _, tracker in runtimes]
    rows = []
    for label, times in zip(labels, time_trackers(trackers, frame, args.iterations, args.warmup, args.device)):
        rows.append({'path': label, 'ms': 1e3 * statistics.median(times), 'ms_min': 1e3 * min(times)})
    for label, tracker in runtimes:
        notes.append(f'{label}: compile ' + ', '.join(f'{step} b{batch} {seconds:.2f} s' for (step, batch), seconds
                                                    in tracker.model.compile_seconds.items()))
    del trackers, runtimes
    if args.device.startswith('cuda'):
        for batch in (1, 4, 16):
            seconds = time_batched(model, batch, frame, args.iterations, args.warmup, args.device, 'fp16')
            # ms per target: one batched forward of ``batch`` targets, divided by ``batch``
            rows.append({'path': f'fast fp16 batch {batch}', 'ms': 1e3 * seconds / batch, 'batch': batch})
    reference_ms = rows[0]['ms']
    for row in rows:
        row['fps'] = 1e3 / row['ms']
        row['ratio_to_reference'] = reference_ms / row['ms']
        row['percent_of_limit'] = (100 * flops / 1e9 / peak / (row['ms'] / 1e3)) if peak else None

    name = machine_name(machine, args.device)
    print(f"machine: {name}; device {args.device}; {threads} threads; authors' track step {flops / 1e9:.1f} GFLOP; "
          f"peak {f'{peak:.0f} GFLOP/s' if peak else 'n/a'}; limit "
          f"{f'{1e3 * flops / 1e9 / peak:.0f} ms' if peak else 'n/a'}")
    for note in notes:
        print(f'  {note}')
    print(f"{'path':<26} {'ms/frame':>9} {'fps':>7} {'x ref':>7} {'% limit':>8}")
    for row in rows:
        limit = f"{row['percent_of_limit']:.0f}%" if row['percent_of_limit'] else 'n/a'
        print(f"{row['path']:<26} {row['ms']:>9.1f} {row['fps']:>7.2f} {row['ratio_to_reference']:>7.2f} "
              f'{limit:>8}')
    return {'machine': machine, 'device': args.device, 'threads': threads, 'gflop_per_step': flops / 1e9,
            'peak_gflops': peak, 'rows': rows, 'notes': notes}


if __name__ == '__main__':
    sys.exit(main())
