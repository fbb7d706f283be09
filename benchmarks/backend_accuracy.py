"""What the reduced precisions of the runtimes cost in accuracy, against fp32 in the same run.

1. the demo model on held-out generated scenes (``default`` and ``hard``, the seeds of
   ``transt-demo --offline``), one-pass evaluation as ``transt-demo`` scores it (frames where the target is
   absent skipped): success AUC and precision@20px of every configuration, and the AUC difference to
   torch fp32 (the goal for bf16/int8: within 0.01);
2. drift on the golden videos (``test/data/golden``, the authors' boxes for the golden weights): the largest
   box error in pixels of every configuration against the authors' boxes.

Configurations: torch fp32, OpenVINO fp32/bf16/int8, ONNX Runtime fp32 (those installed; bf16 only on
a CPU with bf16 instructions). int8 is calibrated on the calibration seed's scenes
(``transt_ros.deploy.calibration``), never on the evaluated ones.

    python benchmarks/backend_accuracy.py                       # 10 default + 10 hard scenes x 120 frames
    python benchmarks/backend_accuracy.py --scenes 3 --frames 60
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from machine import describe, machine_name  # noqa: E402
from reacquire import ScoredSequence  # noqa: E402

from transt_ros.checkpoint import load_model  # noqa: E402
from transt_ros.deploy.calibration import ensure_int8  # noqa: E402
from transt_ros.evaluation.make_bag import PRESET_SEEDS, synthetic_sources  # noqa: E402
from transt_ros.evaluation.run_dataset import SequenceRun, one_pass_step  # noqa: E402
from transt_ros.evaluation.scoring import score_runs  # noqa: E402
from transt_ros.runtimes.backends import installed  # noqa: E402
from transt_ros.tracking import Tracker  # noqa: E402

DEMO_MODEL = ROOT / 'transt_ros' / 'data' / 'demo_model.pth'
CONFIGURATIONS = [('torch', 'fp32'), ('openvino', 'fp32'), ('openvino', 'bf16'), ('openvino', 'int8'),
                  ('onnxruntime', 'fp32')]


def trackers_for(model) -> dict[str, Tracker]:
    trackers = {}
    for backend, precision in CONFIGURATIONS:
        if backend != 'torch' and not installed(backend):
            print(f'{backend}: not installed, skipped')
            continue
        if precision == 'int8':
            ensure_int8(model)
        try:
            trackers[f'{backend} {precision}'] = Tracker(model, precision=precision, backend=backend)
        except ValueError as error:
            print(f'{backend} {precision}: skipped: {error}')
    return trackers


def scene_scores(model, preset: str, count: int, frames: int) -> dict[str, tuple[float, float]]:
    sources = synthetic_sources(count, frames, 320, 240, PRESET_SEEDS[preset], preset)
    trackers = trackers_for(model)
    runs = {name: {} for name in trackers}
    for source in sources:
        valid = np.flatnonzero(np.all(np.isfinite(source.boxes), axis=1))
        init = int(valid[0])
        for name, tracker in trackers.items():
            run = runs[name][source.name] = SequenceRun(source.name, np.full((len(source), 4), np.nan),
                                                        np.full(len(source), np.nan), np.full(len(source), np.nan),
                                                        init)
            for index in range(init, len(source)):
                run.boxes[index], run.scores[index], run.latencies_s[index] = one_pass_step(
                    tracker, source.frame(index), source.boxes[index] if index == init else None)
        print(f'  {preset} {source.name} done', flush=True)
    sequences = [ScoredSequence(source.name, source.boxes) for source in sources]
    metrics = {name: score_runs(runs[name], sequences) for name in trackers}
    return {name: (m.success_auc, m.precision_at_20px) for name, m in metrics.items()}


def golden_drift() -> dict[str, float]:
    from test.golden_helpers import VIDEOS, golden_authors_state_dict, video

    model = load_model(golden_authors_state_dict())
    drift = {}
    for name, tracker in trackers_for(model).items():
        worst = 0.0
        for video_name in VIDEOS:
            data = video(video_name)
            tracker.initialize(data['frames'][0], data['init_bbox'])
            for index in range(1, len(data['frames'])):
                box = np.array(tracker.track(data['frames'][index]).box)
                worst = max(worst, float(np.abs(box - data['boxes'][index]).max()))
        drift[name] = worst
    return drift


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scenes', type=int, default=10, help='scenes per preset (default 10)')
    parser.add_argument('--frames', type=int, default=120)
    parser.add_argument('--json', type=Path, default=Path('out/bench/backend_accuracy.json'))
    args = parser.parse_args(argv)
    model = load_model(DEMO_MODEL)
    scores = {preset: scene_scores(model, preset, args.scenes, args.frames) for preset in ('default', 'hard')}
    drift = golden_drift()
    machine = describe('cpu')
    print(f'machine: {machine_name(machine, "cpu")}; demo model, {args.scenes} scenes x {args.frames} frames '
          'per preset')
    print(f"{'configuration':<18} {'default AUC':>11} {'d AUC':>7} {'hard AUC':>9} {'d AUC':>7} {'golden px':>10}")
    base = {preset: scores[preset]['torch fp32'][0] for preset in scores}
    for name in scores['default']:
        d, h = scores['default'][name][0], scores['hard'][name][0]
        print(f'{name:<18} {d:>11.3f} {d - base["default"]:>+7.3f} {h:>9.3f} {h - base["hard"]:>+7.3f} '
              f'{drift.get(name, float("nan")):>10.3f}')
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({'machine': machine, 'scenes': args.scenes, 'frames': args.frames,
                                     'scores': scores, 'golden_drift_px': drift}, indent=2))
    print(f'wrote {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
