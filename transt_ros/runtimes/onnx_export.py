"""ONNX graphs of the two network steps a tracker runs, exported from the fast path.

* the **template step**: the template crop ``(B, 3, Ht, Wt)`` -> ``tokens``, ``pos``, ``attended``
  (the three tensors of :class:`~transt_ros.model.TemplateFeatures`), once per target;
* the **per-frame step**: ``pos``, ``attended`` and the search crop ``(B, 3, Hs, Ws)`` -> ``logits``
  ``(B, N, 2)`` and ``boxes`` ``(B, N, 4)`` (what ``TransT.track`` returns). The template ``tokens``
  are not an input: with the first layer's template self-attention cached (``attended``) the
  per-frame step never reads them.

The batch axis is dynamic (the multi-target engine stacks N targets, a LOST frame stacks its crops);
runtimes that want static shapes fix it when they compile (one compiled model per batch size).
Inputs are ImageNet-normalised float32 crops, as ``tracking.crop.normalize_crop`` makes them.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..common.files import atomic_write_bytes
from ..model import TemplateFeatures
from ..model.inference import fast_inference_copy

OPSET = 18
TEMPLATE_INPUTS, TEMPLATE_OUTPUTS = ('template',), ('tokens', 'pos', 'attended')
TRACK_INPUTS, TRACK_OUTPUTS = ('pos', 'attended', 'search'), ('logits', 'boxes')
STEP_NAMES = ('template', 'track')


class TemplateStep(nn.Module):
    """The template side of a prepared (fast path) model as one graph."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, template: torch.Tensor):
        features = self.model.template(template)
        return features.tokens, features.pos, features.attended


class TrackStep(nn.Module):
    """The per-frame step of a prepared (fast path) model as one graph."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pos: torch.Tensor, attended: torch.Tensor, search: torch.Tensor):
        # tokens=attended: a placeholder the step never reads (the first layer takes ``attended``)
        outputs = self.model.track(TemplateFeatures(attended, pos, attended), search)
        return outputs['pred_logits'], outputs['pred_boxes']


@dataclass(frozen=True)
class StepInputs:
    """Example inputs of both steps (a batch of ``batch``), made from random crops."""

    template: torch.Tensor
    search: torch.Tensor

    @classmethod
    def random(cls, config, batch: int = 1, seed: int = 0) -> StepInputs:
        generator = torch.Generator().manual_seed(seed)
        return cls(torch.randn(batch, 3, config.template_size, config.template_size, generator=generator),
                   torch.randn(batch, 3, config.search_size, config.search_size, generator=generator))


def export_model(model: nn.Module) -> nn.Module:
    """The copy that is exported: the fast path (folded BatchNorm, fused attention, cached template
    attention), fp32, on the CPU, eval mode. Same arithmetic as ``Tracker(path='fast')`` on the CPU."""
    fast = fast_inference_copy(model).float().cpu()  # the copy moves: the caller's model stays where it is
    fast.channels_last = False  # ONNX graphs are NCHW; the runtimes pick their own layouts
    return fast.to(memory_format=torch.contiguous_format)


def _export(module: nn.Module, inputs: tuple, input_names, output_names) -> bytes:
    dynamic = {name: {0: 'batch'} for name in (*input_names, *output_names)}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter('ignore')  # TracerWarnings about Python ints from shapes: static by design
        torch.onnx.export(module, inputs, buffer, input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return buffer.getvalue()


@dataclass(frozen=True)
class ExportedSteps:
    """Both steps as ONNX bytes."""

    template: bytes
    track: bytes

    def write(self, directory: Path) -> dict[str, Path]:
        return {name: atomic_write_bytes(Path(directory, f'{name}.onnx'), getattr(self, name)) for name in STEP_NAMES}

    @classmethod
    def read(cls, directory: Path) -> ExportedSteps:
        return cls(*(Path(directory, f'{name}.onnx').read_bytes() for name in STEP_NAMES))


def export_steps(model: nn.Module) -> ExportedSteps:
    """ONNX of the template step and of the per-frame step of ``model`` (any device/precision: the
    export is made from an fp32 CPU fast-path copy)."""
    fast = export_model(model)
    example = StepInputs.random(fast.config, batch=2)
    with torch.inference_mode():
        template = fast.template(example.template)
    template_bytes = _export(TemplateStep(fast), (example.template,), TEMPLATE_INPUTS, TEMPLATE_OUTPUTS)
    track_bytes = _export(TrackStep(fast), (template.pos, template.attended, example.search),
                          TRACK_INPUTS, TRACK_OUTPUTS)
    return ExportedSteps(template_bytes, track_bytes)


def reference_outputs(model: nn.Module, inputs: StepInputs) -> dict[str, np.ndarray]:
    """What the PyTorch fast path computes for ``inputs``: every output of both steps, float32 numpy."""
    fast = export_model(model)
    with torch.inference_mode():
        template = fast.template(inputs.template)
        outputs = fast.track(template, inputs.search)
    return {'tokens': template.tokens.numpy(), 'pos': template.pos.numpy(), 'attended': template.attended.numpy(),
            'logits': outputs['pred_logits'].numpy(), 'boxes': outputs['pred_boxes'].numpy()}
