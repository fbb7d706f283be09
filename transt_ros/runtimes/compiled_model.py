"""A TransT model compiled by an inference runtime: the two methods a tracker calls, ``template`` and
``track``, run by OpenVINO, ONNX Runtime or TensorRT instead of PyTorch.

Both steps come from the ONNX export (``onnx_export.py``, cached per weights in ``model_cache.py``).
Each runtime compiles a step for the input shapes it meets (the batch differs with the number of targets
and a LOST frame's crops): compiled steps are kept per (step, shapes), at most
:data:`MAX_COMPILED` of them, and the seconds each compile took are in ``compile_seconds``. Inputs and
outputs are torch tensors, as with the PyTorch model, so the tracker's crop and decode code is shared.
Calls are serialised by one lock per compiled model (an inference request is not re-entrant).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..model import TemplateFeatures
from .backends import require
from .model_cache import cache_root, exported_steps, model_folder, weights_digest
from .onnx_export import TEMPLATE_OUTPUTS, TRACK_OUTPUTS

MAX_COMPILED = 16
"""Compiled (step, shapes) entries kept per model; the least recently used one goes first."""


class CompiledModel:
    """Base of the runtime models. ``model``: a TransT ``nn.Module`` (any device/precision);
    ``threads``: the runtime's CPU threads (default: ``torch.get_num_threads()`` now)."""

    backend = ''

    def __init__(self, model: torch.nn.Module, precision: str = 'fp32', device='cpu', threads: int | None = None):
        self.runtime = require(self.backend)  # before any work: a missing package is named at once
        self.config = model.config
        self.precision = precision
        self.device = torch.device(device)
        self.threads = threads or torch.get_num_threads()
        self.digest = weights_digest(model)
        self.folder = model_folder(self.digest)
        started = time.perf_counter()
        exported_steps(model, self.digest)
        self.export_seconds = time.perf_counter() - started
        self.compile_seconds: dict[tuple[str, int], float] = {}
        """(step, batch) -> seconds its compile took (reading a runtime's disk cache included)."""
        self._compiled: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self.training = False

    def describe(self) -> str:
        return f'{self.backend} {self.precision}, {self.threads} threads'

    def eval(self):
        return self

    def onnx_path(self, step: str) -> Path:
        return self.folder / 'onnx' / f'{step}.onnx'

    def template(self, crop: torch.Tensor) -> TemplateFeatures:
        tokens, pos, attended = self._run('template', {'template': crop}, TEMPLATE_OUTPUTS)
        return TemplateFeatures(tokens, pos, attended)

    def track(self, template: TemplateFeatures, search: torch.Tensor) -> dict:
        if template.attended is None:
            raise ValueError('a compiled model needs template features with the cached attention (attended)')
        logits, boxes = self._run('track', {'pos': template.pos, 'attended': template.attended, 'search': search},
                                  TRACK_OUTPUTS)
        return {'pred_logits': logits, 'pred_boxes': boxes}

    def _run(self, step: str, feed: dict[str, torch.Tensor], outputs: tuple[str, ...]) -> list[torch.Tensor]:
        shapes = tuple((name, tuple(tensor.shape)) for name, tensor in feed.items())
        with self._lock:
            key = self._compile_key(step, shapes)
            compiled = self._compiled.get(key)
            if compiled is None:
                started = time.perf_counter()
                compiled = self._compile(step, {name: shape for name, shape in shapes})
                self.compile_seconds[(step, shapes[0][1][0])] = time.perf_counter() - started
                self._compiled[key] = compiled
                while len(self._compiled) > MAX_COMPILED:
                    self._compiled.popitem(last=False)
            self._compiled.move_to_end(key)
            return self._infer(compiled, feed, outputs)

    def _compile_key(self, step: str, shapes: tuple) -> tuple:
        """What one compiled entry serves: by default a step at given input shapes."""
        return step, shapes

    def _compile(self, step: str, shapes: dict[str, tuple[int, ...]]):
        raise NotImplementedError

    def _infer(self, compiled, feed: dict[str, torch.Tensor], outputs: tuple[str, ...]) -> list[torch.Tensor]:
        raise NotImplementedError


def _host_inputs(feed: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: np.ascontiguousarray(tensor.detach().float().cpu().numpy()) for name, tensor in feed.items()}


class OpenVinoModel(CompiledModel):
    """OpenVINO on the CPU, one compiled model per step and crop shapes, with a dynamic batch: a new number
    of targets never compiles again (a static batch made the node stall 0.3-0.5 s at each new number of
    targets, and frames went by untracked meanwhile), and batch 1 ran as fast as with a static shape.

    fp32: ``INFERENCE_PRECISION_HINT=f32`` (exact: the golden boxes within 0.05 px); bf16: the hint
    ``bf16`` (refused on a CPU without bf16 instructions); int8: the per-frame step quantised by NNCF
    (``int8.py``, stored beside the ONNX), its remaining float layers in f32, the template step f32.
    Compiled blobs are also cached on disk by OpenVINO itself (``CACHE_DIR``).
    """

    backend = 'openvino'
    _core = None
    _core_lock = threading.Lock()

    def __init__(self, model, precision='fp32', device='cpu', threads=None):
        super().__init__(model, precision, device, threads)
        if precision == 'bf16' and 'BF16' not in self.core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES'):
            raise ValueError('this CPU has no bf16 instructions (OpenVINO reports '
                             f"{self.core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')}); use fp32 or int8")
        if precision == 'int8':
            from .int8 import int8_model_path
            path = int8_model_path(self.folder)
            if not path.is_file():
                raise FileNotFoundError(
                    f'no int8 model for these weights ({path} is missing): quantise once with '
                    '`transt-export CHECKPOINT OUT_DIR --int8` (calibrates on generated scenes), '
                    'or through transt_ros.deploy.calibration.ensure_int8(model)')

    @classmethod
    def core(cls):
        with cls._core_lock:
            if cls._core is None:
                cls._core = require('openvino').Core()
            return cls._core

    def _model_path(self, step: str) -> Path:
        if step == 'track' and self.precision == 'int8':
            from .int8 import int8_model_path
            return int8_model_path(self.folder)
        return self.onnx_path(step)

    def _compile_key(self, step, shapes):
        return step, tuple((name, shape[1:]) for name, shape in shapes)

    def _compile(self, step, shapes):
        core = self.core()
        network = core.read_model(str(self._model_path(step)))
        network.reshape({name: [-1, *shape[1:]] for name, shape in shapes.items()})
        hint = 'bf16' if self.precision == 'bf16' else 'f32'
        config = {'INFERENCE_PRECISION_HINT': hint, 'INFERENCE_NUM_THREADS': self.threads,
                  'PERFORMANCE_HINT': 'LATENCY', 'CACHE_DIR': str(cache_root() / 'openvino_blobs')}
        return core.compile_model(network, 'CPU', config).create_infer_request()

    def _infer(self, compiled, feed, outputs):
        # by position: the graphs keep the export's output order (a constant output such as the template's
        # ``pos`` may lose its name in OpenVINO's conversion)
        results = compiled.infer(_host_inputs(feed)).to_tuple()
        if len(results) != len(outputs):
            raise RuntimeError(f'the compiled step gave {len(results)} outputs, expected {", ".join(outputs)}')
        return [torch.from_numpy(np.array(value)) for value in results]


class OnnxRuntimeModel(CompiledModel):
    """ONNX Runtime's CPU provider, every graph optimisation on; one session per step (the batch axis is
    dynamic there, so a new batch size costs nothing)."""

    backend = 'onnxruntime'

    def _compile_key(self, step, shapes):
        return (step,)

    def _compile(self, step, shapes):
        ort = require('onnxruntime')
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(str(self.onnx_path(step)), options, providers=['CPUExecutionProvider'])

    def _infer(self, compiled, feed, outputs):
        return [torch.from_numpy(value) for value in compiled.run(list(outputs), _host_inputs(feed))]
