"""One command for a GPU machine: golden equality, the speed table and the drift table.

Needs only PyTorch, torchvision, OpenCV and numpy (scikit-image for the generated scenes); no
ROS, no install: run it from the source tree.

    PYTHONPATH=. python benchmarks/gpu_check.py                      # CUDA, about 2-4 minutes
    PYTHONPATH=. python benchmarks/gpu_check.py --device cpu --quick # the script's own smoke test

1. Golden equality on the device (fp32, TF32 off): the authors' architecture with the golden
   weights on the three golden videos, through the reference path, the fast path, the device
   step run eagerly and the CUDA-graph step; the largest box error against the authors' boxes
   (tolerance 0.05 px) and between the graph and the eager device step.
2. Speed: per-frame ``track`` (crop, network, decode) on a 640x480 frame, full TransT-R50,
   median of ``--rounds`` rounds measured round-robin; MultiTracker N = 8 and 32 per target.
   Ratios are against the reference path (the authors' arithmetic) measured in the same run.
3. Drift from fp32 (TF32 off): fp16, bf16 and fp32 with TF32 on, on the golden videos and with the
   bundled demo model on held-out generated scenes (largest box difference, success AUC).
Writes everything to ``--json`` as well.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from test.golden_helpers import VIDEOS, golden_authors_state_dict, video  # noqa: E402
from transt_ros.checkpoint import load_model  # noqa: E402
from transt_ros.common.seeds import HELD_OUT_DEMO_SEED  # noqa: E402
from transt_ros.model import build_transt  # noqa: E402
from transt_ros.tracking import MultiTracker, Tracker  # noqa: E402

DEMO_MODEL = ROOT / 'transt_ros' / 'data' / 'demo_model.pth'
BOX = (290.0, 200.0, 60.0, 80.0)

# name -> Tracker keyword arguments (besides model and device)
GOLDEN_PATHS = {
    'reference': dict(path='reference'),
    'fast': dict(path='fast'),
    'device step (eager)': dict(path='fast', device_crop=True),
    'cuda graph': dict(path='fast', cuda_graph=True),
}
SPEED_CONFIGS = {
    'reference fp32': dict(path='reference'),
    'fast fp32': dict(path='fast'),
    'fast fp16': dict(path='fast', precision='fp16'),
    'device step fp32 (eager)': dict(path='fast', device_crop=True),
    'graph fp32': dict(path='fast', cuda_graph=True),
    'graph fp32 TF32': dict(path='fast', cuda_graph=True, allow_tf32=True),
    'graph fp16': dict(path='fast', cuda_graph=True, precision='fp16'),
    'graph bf16': dict(path='fast', cuda_graph=True, precision='bf16'),
}
BATCHED_CONFIGS = {
    'fast fp16 (eager)': dict(path='fast', precision='fp16', device_crop=True),
    'graph fp32': dict(path='fast', cuda_graph=True),
    'graph fp16': dict(path='fast', cuda_graph=True, precision='fp16'),
}
DRIFT_CONFIGS = {
    'fp16': dict(precision='fp16'),
    'bf16': dict(precision='bf16'),
    'fp32 TF32': dict(allow_tf32=True),
}


def _graph_kwargs(kwargs: dict, device: str) -> dict:
    """On a CPU smoke run the graph rows run the same step eagerly; reduced precision is dropped."""
    if device.startswith('cuda'):
        return kwargs
    kwargs = dict(kwargs)
    if kwargs.pop('cuda_graph', False):
        kwargs['device_crop'] = True
    kwargs.pop('precision', None)
    kwargs.pop('allow_tf32', None)
    return kwargs


def _synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def run_video(tracker: Tracker, frames, init_box) -> np.ndarray:
    tracker.initialize(frames[0], init_box)
    boxes = [np.asarray(init_box, dtype=np.float64)]
    boxes += [np.asarray(tracker.track(frame).box) for frame in frames[1:]]
    return np.array(boxes)


def golden_equality(device: str) -> dict:
    model = load_model(golden_authors_state_dict())
    table = {}
    for name, kwargs in GOLDEN_PATHS.items():
        tracker = Tracker(model, device=device, **_graph_kwargs(kwargs, device))
        table[name] = {video_name: run_video(tracker, video(video_name)['frames'], video(video_name)['init_bbox'])
                       for video_name in VIDEOS}
    rows = []
    for name, boxes in table.items():
        errors = {v: float(np.abs(boxes[v] - video(v)['boxes']).max()) for v in VIDEOS}
        rows.append({'path': name, 'max_px_vs_authors': errors})
    graph_vs_eager = {v: float(np.abs(table['cuda graph'][v] - table['device step (eager)'][v]).max())
                      for v in VIDEOS}
    return {'rows': rows, 'graph_vs_eager_device_step_px': graph_vs_eager, 'tolerance_px': 0.05}


def _frame(height=480, width=640) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def time_round_robin(steps: dict, rounds: int, warmup: int, device: str) -> dict:
    """Median seconds per call of each step, measured round-robin (drifts hit every step alike)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            _synchronize(device)
            start = time.perf_counter()
            step()
            _synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def _restoring_step(tracker, frames):
    """A timed call that always starts from the same target state (so every crop is alike)."""
    states = tracker.states if isinstance(tracker, MultiTracker) else [tracker.state]
    initial = [(state.center.copy(), state.size.copy()) for state in states]

    def step():
        for state, (center, size) in zip(states, initial):
            state.center, state.size = center.copy(), size.copy()
        tracker.track(frames)
    return step


def speed(device: str, rounds: int, warmup: int, batches: tuple[int, ...]) -> dict:
    torch.manual_seed(0)
    model = build_transt().eval()
    frame = _frame()
    steps = {}
    for name, kwargs in SPEED_CONFIGS.items():
        if device == 'cpu' and any(word in name for word in ('fp16', 'bf16', 'TF32', 'graph')):
            continue
        tracker = Tracker(model, device=device, **kwargs)
        tracker.initialize(frame, BOX)
        steps[name] = _restoring_step(tracker, frame)
    single = time_round_robin(steps, rounds, warmup, device)
    reference_ms = 1e3 * single['reference fp32']
    rows = [{'path': name, 'targets': 1, 'ms_per_frame': 1e3 * seconds, 'fps': 1.0 / seconds,
             'x_reference': reference_ms / (1e3 * seconds)} for name, seconds in single.items()]
    for batch in batches:
        steps = {}
        for name, kwargs in BATCHED_CONFIGS.items():
            if device == 'cpu' and ('fp16' in name or 'graph' in name):
                continue
            multi = MultiTracker(model, device=device, **kwargs)
            for index in range(batch):
                multi.add(frame, (20 + (37 * index) % 560, 40 + (53 * index) % 380, 60, 80))
            steps[name] = _restoring_step(multi, [frame] * batch)
        for name, seconds in time_round_robin(steps, max(rounds // 4, 3), warmup, device).items():
            per_target_ms = 1e3 * seconds / batch
            rows.append({'path': f'MultiTracker {name}', 'targets': batch, 'ms_per_frame': 1e3 * seconds,
                         'ms_per_target': per_target_ms, 'targets_per_s': 1e3 / per_target_ms,
                         'x_reference': reference_ms / per_target_ms})
    return {'frame': '640x480', 'rounds': rounds, 'rows': rows}


def success_auc(predicted: np.ndarray, truth: np.ndarray) -> float:
    """OTB success AUC (21 IoU thresholds) of (N, 4) x, y, w, h boxes, first frame excluded."""
    p, t = predicted[1:], truth[1:]
    left, top = np.maximum(p[:, 0], t[:, 0]), np.maximum(p[:, 1], t[:, 1])
    right = np.minimum(p[:, 0] + p[:, 2], t[:, 0] + t[:, 2])
    bottom = np.minimum(p[:, 1] + p[:, 3], t[:, 1] + t[:, 3])
    intersection = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = p[:, 2] * p[:, 3] + t[:, 2] * t[:, 3] - intersection
    iou = intersection / np.maximum(union, 1e-12)
    return float(np.mean([np.mean(iou > threshold) for threshold in np.linspace(0, 1, 21)]))


def generated_scenes(count: int, frames: int):
    from transt_ros.training.synthetic import SyntheticVideos  # scikit-image's photographs
    scenes = SyntheticVideos(num_videos=count, frames_per_video=frames, seed=HELD_OUT_DEMO_SEED)
    for index in range(count):
        yield ([scenes.frame(index, frame_id) for frame_id in range(frames)],
               scenes.boxes(index).astype(np.float64))


def drift(device: str, scene_count: int, scene_frames: int) -> dict:
    configs = DRIFT_CONFIGS if device.startswith('cuda') else {}
    golden_model = load_model(golden_authors_state_dict())
    golden_rows = []
    fp32 = Tracker(golden_model, device=device, **_graph_kwargs(dict(cuda_graph=True), device))
    baseline = {v: run_video(fp32, video(v)['frames'], video(v)['init_bbox']) for v in VIDEOS}
    for name, kwargs in configs.items():
        tracker = Tracker(golden_model, device=device, cuda_graph=True, **kwargs)
        golden_rows.append({'precision': name, 'max_px_from_fp32': {
            v: float(np.abs(run_video(tracker, video(v)['frames'], video(v)['init_bbox']) - baseline[v]).max())
            for v in VIDEOS}})
    demo_model = load_model(DEMO_MODEL)
    scenes = list(generated_scenes(scene_count, scene_frames))
    trackers = {'fp32': Tracker(demo_model, device=device, **_graph_kwargs(dict(cuda_graph=True), device))}
    trackers.update({name: Tracker(demo_model, device=device, cuda_graph=True, **kwargs)
                     for name, kwargs in configs.items()})
    boxes = {name: [run_video(tracker, frames, truth[0]) for frames, truth in scenes]
             for name, tracker in trackers.items()}
    scene_rows = []
    for name, predicted in boxes.items():
        scene_rows.append({
            'precision': name,
            'success_auc': float(np.mean([success_auc(p, truth) for p, (_, truth) in zip(predicted, scenes)])),
            'max_px_from_fp32': max(float(np.abs(p - q).max()) for p, q in zip(predicted, boxes['fp32']))})
    return {'golden_videos': golden_rows, 'generated_scenes': scene_rows,
            'scenes': f'{scene_count} x {scene_frames} frames, seed {HELD_OUT_DEMO_SEED}'}


def print_report(machine: str, equality: dict, speeds: dict, drifts: dict) -> None:
    print(f'\n== machine: {machine}')
    print('\n== 1. golden equality on the device, fp32, TF32 off (max |box - authors| px, tolerance 0.05)')
    print(f"{'path':<22}" + ''.join(f'{v:>10}' for v in VIDEOS))
    for row in equality['rows']:
        print(f"{row['path']:<22}" + ''.join(f"{row['max_px_vs_authors'][v]:>10.4f}" for v in VIDEOS))
    print(f"{'graph vs eager step':<22}" + ''.join(f"{equality['graph_vs_eager_device_step_px'][v]:>10.4f}"
                                                     for v in VIDEOS))
    print(f"\n== 2. speed, {speeds['frame']} frame, crop + network + decode, median of {speeds['rounds']} rounds")
    print(f"{'path':<34} {'N':>3} {'ms/frame':>9} {'fps':>8} {'ms/target':>10} {'x ref':>7}")
    for row in speeds['rows']:
        per_target = row.get('ms_per_target', row['ms_per_frame'])
        fps = row.get('fps', row.get('targets_per_s'))
        print(f"{row['path']:<34} {row['targets']:>3} {row['ms_per_frame']:>9.2f} {fps:>8.0f} {per_target:>10.3f} "
              f"{row['x_reference']:>7.2f}")
    print('\n== 3. drift from fp32 (TF32 off)')
    for row in drifts['golden_videos']:
        print(f"golden videos  {row['precision']:<10} max px " +
              ' '.join(f"{v} {row['max_px_from_fp32'][v]:.3f}" for v in VIDEOS))
    for row in drifts['generated_scenes']:
        print(f"demo model, generated scenes ({drifts['scenes']})  {row['precision']:<10} "
              f"AUC {row['success_auc']:.3f}  max px from fp32 {row['max_px_from_fp32']:.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--rounds', type=int, default=200)
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--scenes', type=int, default=8)
    parser.add_argument('--scene-frames', type=int, default=100)
    parser.add_argument('--quick', action='store_true', help='a few rounds, small batches (smoke test)')
    parser.add_argument('--json', default='out/bench/gpu_check.json')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('no CUDA device here; use --device cpu --quick for a smoke test')
    batches = (2,) if args.quick else (8, 32)
    if args.quick:
        args.rounds, args.warmup, args.scenes, args.scene_frames = 3, 1, 2, 10
    machine = (torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith('cuda')
               else 'CPU') + f', PyTorch {torch.__version__}'
    started = time.perf_counter()
    equality = golden_equality(args.device)
    print(f'golden equality done ({time.perf_counter() - started:.0f} s)', flush=True)
    speeds = speed(args.device, args.rounds, args.warmup, batches)
    print(f'speed done ({time.perf_counter() - started:.0f} s)', flush=True)
    drifts = drift(args.device, args.scenes, args.scene_frames)
    print(f'drift done ({time.perf_counter() - started:.0f} s)', flush=True)
    print_report(machine, equality, speeds, drifts)
    output = Path(args.json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({'machine': machine, 'golden_equality': equality, 'speed': speeds,
                                  'drift': drifts, 'wall_s': time.perf_counter() - started}, indent=2))
    failed = [row['path'] for row in equality['rows'] if max(row['max_px_vs_authors'].values()) > 0.05]
    print(f'\nwrote {output}; golden equality ' + ('FAILED: ' + ', '.join(failed) if failed else 'passed'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
