"""TensorRT on CUDA, built from the exported ONNX: fp32 or fp16 (float32 inputs and outputs either way).

One engine per (step, input shapes), built with a fixed-shape optimisation profile and stored on disk
(``<cache>/<weights digest>/tensorrt/``, named by step, shapes, precision, GPU and TensorRT version: an
engine only runs on the GPU model and TensorRT release that built it), so a restart only deserialises.
Inputs and outputs stay on the GPU as torch tensors; the engine runs on the current torch stream.

Not run on a GPU yet in this project's history: see the README's backend table.
"""
from __future__ import annotations

import re

import torch

from ..common.files import atomic_write_bytes
from .compiled_model import CompiledModel

WORKSPACE_BYTES = 1 << 30


class TensorRtModel(CompiledModel):
    backend = 'tensorrt'

    def __init__(self, model, precision='fp32', device='cuda', threads=None):
        if torch.device(device).type != 'cuda':
            raise ValueError(f"backend 'tensorrt' runs on CUDA, not on {device}")
        super().__init__(model, precision, device, threads)
        self._trt = self.runtime
        self._logger = self._trt.Logger(self._trt.Logger.WARNING)

    def engine_path(self, step: str, shapes: dict[str, tuple[int, ...]]):
        gpu = re.sub(r'[^A-Za-z0-9]+', '-', torch.cuda.get_device_name(self.device))
        batch = next(iter(shapes.values()))[0]
        return (self.folder / 'tensorrt' /
                f'{step}-b{batch}-{self.precision}-{gpu}-trt{self._trt.__version__}.engine')

    def _build(self, step: str, shapes: dict[str, tuple[int, ...]]) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(self.onnx_path(step).read_bytes()):
            errors = '; '.join(str(parser.get_error(index)) for index in range(parser.num_errors))
            raise RuntimeError(f'TensorRT could not parse {self.onnx_path(step)}: {errors}')
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.precision == 'fp16':
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for name, shape in shapes.items():
            profile.set_shape(name, shape, shape, shape)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f'TensorRT failed to build the {step} engine for {shapes} ({self.precision})')
        return bytes(serialized)

    def _compile(self, step, shapes):
        path = self.engine_path(step, shapes)
        if path.is_file():
            data = path.read_bytes()
        else:
            data = self._build(step, shapes)
            atomic_write_bytes(path, data)
        engine = self._trt.Runtime(self._logger).deserialize_cuda_engine(data)
        if engine is None:
            raise RuntimeError(f'TensorRT could not load {path} (built by another TensorRT or GPU?): delete it')
        context = engine.create_execution_context()
        for name, shape in shapes.items():
            context.set_input_shape(name, shape)
        return engine, context

    def _infer(self, compiled, feed, outputs):
        _, context = compiled
        inputs = {name: tensor.to(self.device, torch.float32).contiguous() for name, tensor in feed.items()}
        for name, tensor in inputs.items():
            context.set_tensor_address(name, tensor.data_ptr())
        results = []
        for name in outputs:
            result = torch.empty(tuple(context.get_tensor_shape(name)), device=self.device, dtype=torch.float32)
            context.set_tensor_address(name, result.data_ptr())
            results.append(result)
        stream = torch.cuda.current_stream(self.device)
        if not context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError('TensorRT execution failed')
        return results
