"""``transt-export CHECKPOINT OUT_DIR``: ONNX of the template step and of the per-frame step, checked
against PyTorch.

Writes ``OUT_DIR/template.onnx`` (template crop -> ``tokens``, ``pos``, ``attended``),
``OUT_DIR/track.onnx`` (``pos``, ``attended``, search crop -> ``logits``, ``boxes``; dynamic batch) and
``OUT_DIR/export.json`` (architecture, input/output shapes, the largest differences found). Each
``--batch`` size is run through an ONNX runtime (ONNX Runtime when installed, else OpenVINO) and compared
with the PyTorch fast path on the same random crops; the largest absolute difference is printed and the
command fails when it exceeds ``--tolerance``. ``--int8`` also quantises the per-frame step for OpenVINO
(NNCF, calibrated on generated scenes) into ``OUT_DIR/openvino_int8/`` and the model cache.

To TensorRT (e.g. on a Jetson), with the shapes this command prints:
    trtexec --onnx=OUT_DIR/track.onnx --fp16 --shapes=pos:1xLx256,attended:1xLx256,search:1x3x256x256
or run the tracker with ``--backend tensorrt`` (engines built and cached on first use).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np


def _check(model, batches: list[int]) -> dict[str, float]:
    """Largest |runtime - PyTorch| per output over ``batches``, through the exported graphs compiled by the
    first installed ONNX runtime (ONNX Runtime, else OpenVINO fp32): the same compiled models trackers run."""
    from ..runtimes.backends import installed
    from ..runtimes.compiled_models import compile_model
    from ..runtimes.onnx_export import StepInputs, reference_outputs

    compiled = compile_model(model, 'onnxruntime' if installed('onnxruntime') else 'openvino', 'fp32', 'cpu')
    largest: dict[str, float] = {}
    for batch in batches:
        inputs = StepInputs.random(model.config, batch=batch, seed=batch)
        expected = reference_outputs(model, inputs)
        template = compiled.template(inputs.template)
        outputs = compiled.track(template, inputs.search)
        got = {'tokens': template.tokens, 'pos': template.pos, 'attended': template.attended,
               'logits': outputs['pred_logits'], 'boxes': outputs['pred_boxes']}
        for name, value in got.items():
            largest[name] = max(largest.get(name, 0.0), float(np.abs(value.numpy() - expected[name]).max()))
    return largest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='transt-export', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('checkpoint', type=Path, help='TransT checkpoint (.pth): the project\'s, the authors\' ...')
    parser.add_argument('out_dir', type=Path, help='output directory')
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 8], metavar='N',
                        help='batch sizes checked against PyTorch (default: 1 8; the graphs take any batch)')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest absolute difference accepted (default 1e-3)')
    parser.add_argument('--int8', action='store_true', help='also quantise the per-frame step for OpenVINO (NNCF)')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if any(batch < 1 for batch in args.batch):
        parser.error('--batch sizes must be >= 1')

    from ..checkpoint import CheckpointError, load_model
    from ..runtimes.backends import BackendUnavailable, installed
    from ..runtimes.model_cache import exported_steps, weights_digest
    from ..runtimes.onnx_export import OPSET

    try:
        model = load_model(args.checkpoint)
    except (CheckpointError, FileNotFoundError, OSError) as error:
        print(f'transt-export: {error}', file=sys.stderr)
        return 1
    if not (installed('onnxruntime') or installed('openvino')):
        print('transt-export: checking the export needs onnxruntime or openvino: pip install onnxruntime',
              file=sys.stderr)
        return 1
    digest = weights_digest(model)
    paths = exported_steps(model, digest).write(args.out_dir)
    largest = _check(model, args.batch)
    config = model.config
    tokens = (config.template_size // config.feature_stride) ** 2
    shapes = {'template': {'template': ['B', 3, config.template_size, config.template_size]},
              'track': {'pos': ['B', tokens, config.d_model], 'attended': ['B', tokens, config.d_model],
                        'search': ['B', 3, config.search_size, config.search_size]}}
    report = {'checkpoint': str(args.checkpoint.resolve()), 'weights_digest': digest, 'opset': OPSET,
              'config': config.to_dict(), 'inputs': shapes, 'batches_checked': args.batch,
              'largest_abs_difference': largest, 'tolerance': args.tolerance}
    for name, path in paths.items():
        print(f'{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB)')
    print('largest |runtime - PyTorch| over batches ' + ', '.join(map(str, args.batch)) + ': '
          + ', '.join(f'{name} {value:.2e}' for name, value in largest.items()))
    print(f'TensorRT: trtexec --onnx={paths["track"]} --fp16 --shapes=pos:1x{tokens}x{config.d_model},'
          f'attended:1x{tokens}x{config.d_model},search:1x3x{config.search_size}x{config.search_size}')
    if args.int8:
        from ..deploy.calibration import ensure_int8
        from ..runtimes.int8 import INT8_FOLDER
        from ..runtimes.model_cache import model_folder
        try:
            ensure_int8(model)
        except BackendUnavailable as error:
            print(f'transt-export: {error}', file=sys.stderr)
            return 1
        target = args.out_dir / INT8_FOLDER
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model_folder(digest) / INT8_FOLDER, target)
        report['int8'] = str(target / 'track.xml')
        print(f'int8 (OpenVINO IR): {target / "track.xml"}')
    (args.out_dir / 'export.json').write_text(json.dumps(report, indent=2) + '\n')
    worst = max(largest.values())
    if worst > args.tolerance:
        print(f'transt-export: the export differs from PyTorch by {worst:.2e} > {args.tolerance:g}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
