"""Re-acquisition of a LOST target: accuracy on generated scenes and the cost of a LOST frame.

The bundled demo model on the CPU, the authors' tracker and the same tracker with ``reacquire=True``
(``transt_ros/tracking/reacquire.py``, default ``ReacquireParams``) stepped on the same frames, one
after the other (so that a drift of the machine hits both alike); with ``--unverified`` also the
wider search without its candidate checks (``colour_margin=-1, confirm=False``: the first version,
which jumped onto other objects):

1. ``--hard`` generated ``hard`` scenes and ``--default`` ``default`` ones, by default the held-out
   seeds of ``transt-demo --offline`` (the README's "demo results"; the parameters were chosen on
   other seeds: ``--hard-seed 3027 --default-seed 3026``, 40 scenes each), scored as it scores them
   (one-pass evaluation, frames where the target is absent skipped): success AUC and
   precision@20px, and the scenes whose AUC changed;
2. time per frame: frames where the re-acquiring tracker's target was LOST (its wider search) and
   TRACKING, and the authors' tracker on the same frames;
3. the bounds: one LOST frame forced in each phase (local + growing crop, local + ``max_tiles``
   tiles), each with a candidate waiting for its confirmation (one more crop), on a 320x240 and a
   640x480 frame, against one authors' step.

Prints one table (ratios against the authors' tracker of the same run) and writes a JSON file.

    python benchmarks/reacquire.py                      # 10 hard + 10 default scenes x 120 frames
    python benchmarks/reacquire.py --hard 3 --default 0 --frames 60   # quicker
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, machine_name  # noqa: E402

from transt_ros.checkpoint import load_model  # noqa: E402
from transt_ros.evaluation.make_bag import PRESET_SEEDS, synthetic_sources  # noqa: E402
from transt_ros.evaluation.run_dataset import SequenceRun, one_pass_step  # noqa: E402
from transt_ros.evaluation.scoring import score_runs  # noqa: E402
from transt_ros.tracking import Tracker  # noqa: E402
from transt_ros.tracking.reacquire import ReacquireParams  # noqa: E402

DEMO_MODEL = Path(__file__).resolve().parents[1] / 'transt_ros' / 'data' / 'demo_model.pth'
UNVERIFIED = ReacquireParams(colour_margin=-1.0, confirm=False)


@dataclass
class ScoredSequence:
    """What ``score_runs`` reads of a sequence: the boxes (NaN rows where the target is absent)."""

    name: str
    ground_truth: np.ndarray
    visible: None = None
    fully_annotated: bool = True


@dataclass
class PresetResult:
    auc: dict[str, float]
    precision: dict[str, float]
    lost_ms: dict[str, list[float]]
    """Per-frame ms of each tracker on the frames where the re-acquiring tracker's target was LOST."""
    tracking_ms: dict[str, list[float]]
    recovered: int
    """LOST -> TRACKING transitions of the re-acquiring tracker (found again, by the wider or the local search)."""
    lost_frames: int
    frames: int
    seed: int
    scene_auc: dict[str, dict[str, float]]
    """Per scene (name): each tracker's success AUC."""


def run_preset(model, preset: str, count: int, frames: int, seed: int, unverified: bool = False) -> PresetResult:
    sources = synthetic_sources(count, frames, 320, 240, seed, preset)
    trackers = {'authors': Tracker(model, prepared=True), 'reacquire': Tracker(model, prepared=True, reacquire=True)}
    if unverified:
        trackers['unverified'] = Tracker(model, prepared=True, reacquire=UNVERIFIED)
    names = tuple(trackers)
    runs = {name: {} for name in names}
    lost_ms = {name: [] for name in names}
    tracking_ms = {name: [] for name in names}
    recovered = lost_frames = 0
    for source in sources:
        valid = np.flatnonzero(np.all(np.isfinite(source.boxes), axis=1))
        init = int(valid[0])
        for name in names:
            runs[name][source.name] = SequenceRun(source.name, np.full((len(source), 4), np.nan),
                                                  np.full(len(source), np.nan), np.full(len(source), np.nan), init)
        for index in range(init, len(source)):
            frame = source.frame(index)
            lost = index > init and trackers['reacquire'].state.search.lost
            for name in names:
                run = runs[name][source.name]
                run.boxes[index], run.scores[index], run.latencies_s[index] = one_pass_step(
                    trackers[name], frame, source.boxes[index] if index == init else None)
                if index > init:
                    (lost_ms if lost else tracking_ms)[name].append(1e3 * run.latencies_s[index])
            lost_frames += lost
            recovered += lost and not trackers['reacquire'].state.search.lost
    sequences = [ScoredSequence(source.name, source.boxes) for source in sources]
    metrics = {name: score_runs(runs[name], sequences) for name in names}
    scene_auc = {sequence.name: {name: score_runs(runs[name], [sequence]).success_auc for name in names}
                 for sequence in sequences}
    return PresetResult({name: m.success_auc for name, m in metrics.items()},
                        {name: m.precision_at_20px for name, m in metrics.items()}, lost_ms, tracking_ms,
                        recovered, lost_frames, sum(len(s) for s in sources), seed, scene_auc)


def forced_lost_ms(model, width: int, height: int, repeats: int) -> dict[str, float]:
    """Median ms of one authors' step, and of one LOST step in the growing and in the tile phase, each
    with a candidate waiting for its confirmation (the most crops of its phase)."""
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    box = (width / 2 - 20, height / 2 - 20, 40, 40)
    authors, searching = Tracker(model, prepared=True), Tracker(model, prepared=True, reacquire=True)
    growing_steps = searching.reacquire.growing_steps
    times = {'authors': [], 'growing': [], 'tiles': []}
    for _ in range(repeats):
        authors.initialize(frame, box)
        start = time.perf_counter()
        authors.track(frame)
        times['authors'].append(time.perf_counter() - start)
        for phase, step in (('growing', 0), ('tiles', growing_steps)):
            searching.initialize(frame, box)
            searching.state.search.lost, searching.state.search.steps = True, step
            searching.state.search.pending = (width / 4, height / 4)
            start = time.perf_counter()
            searching.track_lost([searching.state], [frame], accept_score=2.0)  # never accepts: a full search
            times[phase].append(time.perf_counter() - start)
    return {phase: 1e3 * statistics.median(values) for phase, values in times.items()}


def mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float('nan')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--hard', type=int, default=10, help='hard scenes (default 10)')
    parser.add_argument('--default', type=int, default=10, help='default scenes (default 10)')
    parser.add_argument('--frames', type=int, default=120, help='frames per scene (default 120)')
    parser.add_argument('--hard-seed', type=int, default=PRESET_SEEDS['hard'],
                        help=f"seed of the hard scenes (default {PRESET_SEEDS['hard']}, held out)")
    parser.add_argument('--default-seed', type=int, default=PRESET_SEEDS['default'],
                        help=f"seed of the default scenes (default {PRESET_SEEDS['default']}, held out)")
    parser.add_argument('--unverified', action='store_true',
                        help='also run the wider search without its candidate checks')
    parser.add_argument('--repeats', type=int, default=15, help='forced LOST steps per phase and frame size')
    parser.add_argument('--threads', type=int, help='torch threads (default: torch\'s)')
    parser.add_argument('--json', default='out/bench/reacquire.json')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(DEMO_MODEL)
    params = Tracker(model, prepared=True, reacquire=True).reacquire
    started = time.monotonic()
    presets = {preset: run_preset(model, preset, count, args.frames, seed, args.unverified)
               for preset, count, seed in (('hard', args.hard, args.hard_seed),
                                           ('default', args.default, args.default_seed)) if count > 0}
    forced = {f'{w}x{h}': forced_lost_ms(model, w, h, args.repeats) for w, h in ((320, 240), (640, 480))}
    name = machine_name(describe('cpu'), 'cpu')
    print(f'machine: {name}, torch threads {torch.get_num_threads()}, no GPU; model: bundled demo model (fp32); '
          f'{time.monotonic() - started:.0f} s')
    print(f'reacquire: {params}')
    print(f"{'scenes':<24} {'AUC authors':>11} {'AUC reacq':>9} {'diff':>7} {'P@20 authors':>12} {'P@20 reacq':>10} "
          f"{'LOST frames':>11} {'found again':>11}")
    for preset, result in presets.items():
        scenes = f"{args.hard if preset == 'hard' else args.default} {preset} x {args.frames} ({result.seed})"
        print(f"{scenes:<24} {result.auc['authors']:>11.3f} {result.auc['reacquire']:>9.3f} "
              f"{result.auc['reacquire'] - result.auc['authors']:>+7.3f} {result.precision['authors']:>12.3f} "
              f"{result.precision['reacquire']:>10.3f} {result.lost_frames:>11} {result.recovered:>11}")
        if 'unverified' in result.auc:
            print(f"{'  unverified search':<24} {'':>11} {result.auc['unverified']:>9.3f} "
                  f"{result.auc['unverified'] - result.auc['authors']:>+7.3f} {'':>12} "
                  f"{result.precision['unverified']:>10.3f}")
    for preset, result in presets.items():
        changed = {scene: aucs for scene, aucs in result.scene_auc.items()
                   if any(abs(value - aucs['authors']) >= 5e-4 for value in aucs.values())}
        print(f'\n{preset} scenes whose AUC changed ({len(changed)} of {len(result.scene_auc)}):')
        for scene, aucs in changed.items():
            print(f'  {scene:<28} ' + '  '.join(f'{name} {value:.3f}' for name, value in aucs.items()))
    print(f"\n{'time per frame (ms)':<40} {'authors':>8} {'reacquire':>9} {'ratio':>6}")
    for preset, result in presets.items():
        for kind, values in (('TRACKING', result.tracking_ms), ('LOST', result.lost_ms)):
            authors, ours = mean(values['authors']), mean(values['reacquire'])
            label = f"{preset} scenes, {kind} frames ({len(values['authors'])})"
            print(f'{label:<40} {authors:>8.1f} {ours:>9.1f} {ours / authors:>6.2f}')
    for size, times in forced.items():
        for phase in ('growing', 'tiles'):
            print(f"{f'{size}, forced LOST step, {phase}':<40} {times['authors']:>8.1f} {times[phase]:>9.1f} "
                  f"{times[phase] / times['authors']:>6.2f}")
    output = Path(args.json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        'machine': describe('cpu'), 'params': repr(params), 'frames': args.frames,
        'presets': {preset: {'auc': r.auc, 'precision_at_20px': r.precision, 'lost_frames': r.lost_frames,
                             'found_again': r.recovered, 'frames': r.frames, 'seed': r.seed,
                             'scene_auc': r.scene_auc,
                             'tracking_ms': {n: mean(v) for n, v in r.tracking_ms.items()},
                             'lost_ms': {n: mean(v) for n, v in r.lost_ms.items()}}
                    for preset, r in presets.items()},
        'forced_lost_ms': forced}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
