"""The runtime model for a backend name (``prepare_model`` calls this; the runtime packages load lazily)."""
from __future__ import annotations

import torch

from .compiled_model import CompiledModel, OnnxRuntimeModel, OpenVinoModel


def compile_model(model: torch.nn.Module, backend: str, precision: str, device) -> CompiledModel:
    """``model`` compiled by ``backend`` (a concrete name, already checked by ``backends.check_backend``)."""
    if backend == 'openvino':
        return OpenVinoModel(model, precision, device)
    if backend == 'onnxruntime':
        return OnnxRuntimeModel(model, precision, device)
    if backend == 'tensorrt':
        from .tensorrt_model import TensorRtModel
        return TensorRtModel(model, precision, device)
    raise ValueError(f'no compiled model for backend {backend!r}')
