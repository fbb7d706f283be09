"""The device tracking step captured as CUDA graphs and replayed per frame.

At batch 1 the GPU spends most of an eager step waiting for Python to launch kernels; a CUDA
graph launches the whole step (crop, network, post-processing) at once. One graph serves one
frame size and one batch bucket (1, 2, 4, ... targets): it reads the frame, the geometry and the
stacked templates from static device buffers, which are refilled before every replay (the frame
and geometry through reused pinned host buffers, the templates only when they change), so
nothing of a particular frame or target is baked into a graph. Graphs are built lazily and the
cache is bounded; when it is full, the same step runs eagerly with a one-time warning.
"""
from __future__ import annotations

import contextlib
import warnings
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ..model import TemplateFeatures
from .device_step import GEOMETRY_COLUMNS, StepConstants, device_track_step

DEFAULT_MAX_GRAPHS = 8
WARM_UP_RUNS = 2
# prepared model (held weakly, compared by identity) -> {settings key: CudaGraphStep}. Keyed by the
# model object itself, never its id(): a model that dies takes its entry with it (a step holds its
# model only weakly, so the entry does not keep the model alive: a checkpoint swap frees the old
# model's graphs), and a new model can never find another model's graphs.
_SHARED_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def batch_bucket(batch: int) -> int:
    """The graph batch for ``batch`` targets: the next power of two (few graphs for any N)."""
    return 1 << max(0, batch - 1).bit_length()


@contextlib.contextmanager
def tf32_scope(allow: bool):
    """TF32 matmuls and convolutions allowed or not for the calls inside; restored after.

    The switches are process-wide in PyTorch, so the tracker sets them only around its own calls.
    """
    backends = torch.backends
    saved = (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32)
    backends.cuda.matmul.allow_tf32 = backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32 = saved


@dataclass
class _CapturedStep:
    """Static buffers of one graph and the graph itself."""

    host_frame: torch.Tensor
    frame: torch.Tensor
    host_geometry: torch.Tensor
    geometry: torch.Tensor
    template: TemplateFeatures
    results: torch.Tensor
    host_results: torch.Tensor
    graph: torch.cuda.CUDAGraph
    template_source: TemplateFeatures | None = None


def _static_template(template: TemplateFeatures, batch: int) -> TemplateFeatures:
    def expanded(tensor):
        return tensor[:1].expand(batch, *tensor.shape[1:]).clone()
    return TemplateFeatures(expanded(template.tokens), expanded(template.pos),
                            None if template.attended is None else expanded(template.attended))


def _fill_template(static: TemplateFeatures, template: TemplateFeatures) -> None:
    """Copy the N stacked templates into the first rows; repeat the first in the padding rows.

    The static buffers were shaped by the first template of this graph; a template of another
    shape, dtype or device (another model's, e.g. a track kept across a checkpoint swap) is
    refused here instead of being cast or broadcast into them.
    """
    count = template.tokens.shape[0]
    pairs = [(static.tokens, template.tokens), (static.pos, template.pos)]
    if (static.attended is None) != (template.attended is None):
        raise ValueError('template does not match the CUDA graph: cached template attention '
                         f'{template.attended is not None}, graph {static.attended is not None}')
    if static.attended is not None:
        pairs.append((static.attended, template.attended))
    for target, source in pairs:
        if (source.shape[1:], source.dtype, source.device) != (target.shape[1:], target.dtype, target.device) \
                or not 1 <= source.shape[0] <= target.shape[0]:
            raise ValueError(f'template {tuple(source.shape)} {source.dtype} on {source.device} does not match '
                             f'the CUDA graph ({tuple(target.shape)} {target.dtype} on {target.device})')
    for target, source in pairs:
        target[:count].copy_(source)
        target[count:].copy_(source[:1].expand(target.shape[0] - count, *source.shape[1:]))


class CudaGraphStep:
    """Runs ``device_track_step`` for one frame and N targets through cached CUDA graphs."""

    def __init__(self, model, constants: StepConstants, dtype: torch.dtype, device, allow_tf32: bool = False,
                 max_graphs: int = DEFAULT_MAX_GRAPHS):
        # The model is held weakly (see _SHARED_STEPS); its trackers hold it. The graphs read its
        # parameters' memory as captured: a prepared model is never moved, cast or re-assigned
        # parameters afterwards (load weights into a new prepared copy instead).
        self._model = weakref.ref(model)
        self.constants, self.dtype = constants, dtype
        self.device = torch.device(device)
        if self.device.type != 'cuda':
            raise ValueError(f'CUDA graphs need a CUDA device, got {self.device}')
        self.allow_tf32 = allow_tf32
        self.max_graphs = max_graphs
        # (frame height, frame width, batch bucket) -> graph. The rest of what a graph bakes in is
        # fixed for this object: the model, dtype, device, TF32 switch and constants (the settings
        # key of shared_graph_step; PostprocessParams is frozen); frames are checked uint8 RGB in
        # __call__, and templates are checked against the static buffers when they are copied in.
        self._graphs: dict[tuple[int, int, int], _CapturedStep] = {}
        self._warned_full = False

    @property
    def model(self):
        model = self._model()
        if model is None:
            raise RuntimeError('the prepared model of this CUDA graph step no longer exists')
        return model

    @property
    def graph_count(self) -> int:
        return len(self._graphs)

    def _eager(self, frame: np.ndarray, geometry: np.ndarray, template: TemplateFeatures) -> np.ndarray:
        frame_tensor = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device)
        geometry_tensor = torch.from_numpy(geometry).to(self.device)
        with tf32_scope(self.allow_tf32):
            results = device_track_step(self.model, template, frame_tensor, geometry_tensor, self.constants,
                                        self.dtype)
        return results.cpu().numpy()

    def _capture(self, height: int, width: int, batch: int, template: TemplateFeatures) -> _CapturedStep:
        model = self.model
        host_frame = torch.zeros((height, width, 3), dtype=torch.uint8, pin_memory=True)
        host_geometry = torch.zeros((batch, len(GEOMETRY_COLUMNS)), dtype=torch.float64, pin_memory=True)
        frame = torch.zeros((height, width, 3), dtype=torch.uint8, device=self.device)
        geometry = torch.zeros((batch, len(GEOMETRY_COLUMNS)), dtype=torch.float64, device=self.device)
        geometry[:, 2] = float(model.config.search_size)  # a valid crop for the warm-up runs
        static_template = _static_template(template, batch)
        side_stream = torch.cuda.Stream(self.device)
        side_stream.wait_stream(torch.cuda.current_stream(self.device))
        with tf32_scope(self.allow_tf32):
            with torch.cuda.stream(side_stream):
                for _ in range(WARM_UP_RUNS):
                    device_track_step(model, static_template, frame, geometry, self.constants, self.dtype)
            torch.cuda.current_stream(self.device).wait_stream(side_stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                results = device_track_step(model, static_template, frame, geometry, self.constants,
                                            self.dtype)
        host_results = torch.zeros(results.shape, dtype=results.dtype, pin_memory=True)
        return _CapturedStep(host_frame, frame, host_geometry, geometry, static_template, results, host_results,
                             graph)

    def __call__(self, frame: np.ndarray, geometry: np.ndarray, template: TemplateFeatures) -> np.ndarray:
        """frame (H, W, 3) uint8 RGB, geometry (N, 8) float64, N stacked templates -> (N, 7) results."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f'frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}')
        count = geometry.shape[0]
        key = (frame.shape[0], frame.shape[1], batch_bucket(count))
        step = self._graphs.get(key)
        if step is None:
            if len(self._graphs) >= self.max_graphs:
                if not self._warned_full:
                    warnings.warn(f'CUDA graph cache full ({self.max_graphs} graphs for frame sizes/batches); '
                                  f'frame {frame.shape[1]}x{frame.shape[0]} with {count} targets runs eagerly',
                                  RuntimeWarning, stacklevel=3)
                    self._warned_full = True
                return self._eager(frame, geometry, template)
            step = self._graphs[key] = self._capture(key[0], key[1], key[2], template)
        # The pinned host buffers are refilled only after the previous replay of this graph and its
        # copies finished (the synchronize below), so an asynchronous copy never reads a half-new frame.
        step.host_frame.numpy()[...] = frame
        step.host_geometry.numpy()[:count] = geometry
        step.host_geometry.numpy()[count:] = geometry[:1]
        step.frame.copy_(step.host_frame, non_blocking=True)
        step.geometry.copy_(step.host_geometry, non_blocking=True)
        # Static template refilled when the stacked template object changes: compared with ``is``
        # and held in template_source (never an id(): a new stack at a freed address would pass),
        # and TemplateFeatures is frozen, so the same object means the same features.
        if step.template_source is not template:
            step.template_source = None  # a refused template must not leave a half-filled buffer marked current
            _fill_template(step.template, template)
            step.template_source = template
        step.graph.replay()
        step.host_results.copy_(step.results, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return step.host_results.numpy()[:count].copy()


def shared_graph_step(model, constants: StepConstants, dtype: torch.dtype, device, allow_tf32: bool = False,
                      max_graphs: int = DEFAULT_MAX_GRAPHS) -> CudaGraphStep:
    """The ``CudaGraphStep`` of a prepared model for these settings, made once and shared.

    Trackers that share one prepared model share its graphs. The ROS node keeps one batched tracker
    (its track engine) for all its targets, stepped once per frame with their templates stacked: a new
    target only refills the static template buffer (the batch bucket permitting), it never re-captures.
    """
    # Everything a step bakes into its graphs besides the model: the constants' window comes from the
    # model's config (fixed per model), mean/std are fixed, the other two are in the key.
    key = (constants.window_influence, constants.min_box_side, dtype, str(torch.device(device)), allow_tf32,
           max_graphs)
    steps = _SHARED_STEPS.setdefault(model, {})
    if key not in steps:
        steps[key] = CudaGraphStep(model, constants, dtype, device, allow_tf32, max_graphs)
    return steps[key]
