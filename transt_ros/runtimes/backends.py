"""Which inference backends exist, which precisions and devices each takes, and what ``auto`` means.

* ``torch``: the PyTorch model itself (fast or reference path; CUDA graphs on CUDA): fp32, fp16, bf16
  (fp16/bf16 on CUDA only);
* ``openvino``: OpenVINO on the CPU: fp32 (exact), bf16 (OpenVINO's inference precision hint, where the
  CPU has bf16 instructions), int8 (NNCF post-training quantisation, see ``int8.py``);
* ``onnxruntime``: ONNX Runtime's CPU provider: fp32;
* ``tensorrt``: TensorRT on CUDA, built from the exported ONNX: fp32, fp16 (engines cached on disk);
* ``auto``: OpenVINO on the CPU when it is installed (else torch), torch on CUDA (with CUDA graphs where
  the caller turns them on).

Nothing here imports a runtime package: :func:`require` imports one and names the package to install
when it is missing.
"""
from __future__ import annotations

import importlib
import importlib.util

BACKEND_PRECISIONS = {
    'torch': ('fp32', 'fp16', 'bf16'),
    'openvino': ('fp32', 'bf16', 'int8'),
    'onnxruntime': ('fp32',),
    'tensorrt': ('fp32', 'fp16'),
}
BACKENDS = ('auto', *BACKEND_PRECISIONS)
ALL_PRECISIONS = ('fp32', 'fp16', 'bf16', 'int8')
BACKEND_DEVICES = {'torch': ('cpu', 'cuda'), 'openvino': ('cpu',), 'onnxruntime': ('cpu',), 'tensorrt': ('cuda',)}
PACKAGES = {'openvino': ('openvino', 'openvino'), 'onnxruntime': ('onnxruntime', 'onnxruntime'),
            'tensorrt': ('tensorrt', 'tensorrt-cu13 (NVIDIA TensorRT for CUDA 13)'), 'nncf': ('nncf', 'nncf'),
            'onnx': ('onnx', 'onnx')}
"""Backend/tool -> (module imported, what to ``pip install``)."""


class BackendUnavailable(RuntimeError):
    """The runtime package of a backend is not installed (the message names it)."""


def installed(name: str) -> bool:
    """Whether the package of backend or tool ``name`` (a key of :data:`PACKAGES`) can be imported."""
    module, _ = PACKAGES[name]
    return importlib.util.find_spec(module) is not None


def require(name: str):
    """The imported runtime module of ``name``; :class:`BackendUnavailable` naming the package when missing."""
    module, package = PACKAGES[name]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise BackendUnavailable(
            f"the {name} backend needs the Python package '{package}', which is not installed "
            f"({error}); pip install {package.split()[0]} (the versions this project tests are in "
            "requirements/lock.txt), or choose backend 'torch'") from None


def device_type(device) -> str:
    """'cpu' or 'cuda' of a device name or ``torch.device`` (this module never imports torch: the command-line
    tools add its arguments before torch's OpenMP settings are made)."""
    return getattr(device, 'type', None) or str(device).split(':')[0]


def resolve_backend(backend: str, device) -> str:
    """``auto`` -> the concrete backend for ``device`` (see the module docstring); others unchanged."""
    check_backend_name(backend)
    if backend != 'auto':
        return backend
    if device_type(device) == 'cpu' and installed('openvino'):
        return 'openvino'
    return 'torch'


def check_backend_name(backend) -> str:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def check_backend(backend: str, precision: str, device) -> str:
    """The concrete backend for (``backend``, ``precision``, ``device``); ValueError saying what fits
    when the combination is not supported. Does not import the runtime (see :func:`require`)."""
    if not isinstance(precision, str) or precision not in ALL_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(ALL_PRECISIONS)}, got {precision!r}")
    kind = device_type(device)
    concrete = resolve_backend(backend, device)
    if backend == 'auto' and concrete == 'torch' and precision == 'int8':
        raise ValueError("precision 'int8' needs backend 'openvino' (not installed here: pip install openvino nncf)")
    if precision not in BACKEND_PRECISIONS[concrete]:
        takes = [name for name, precisions in BACKEND_PRECISIONS.items() if precision in precisions]
        raise ValueError(f"backend {concrete!r} runs {', '.join(BACKEND_PRECISIONS[concrete])}, not {precision!r}; "
                         f"{precision} runs on {', '.join(takes)}")
    if kind not in BACKEND_DEVICES[concrete]:
        raise ValueError(f"backend {concrete!r} runs on {' or '.join(BACKEND_DEVICES[concrete])}, not on {device}")
    if concrete == 'torch' and precision != 'fp32' and kind == 'cpu':
        raise ValueError(f"precision {precision!r} with backend 'torch' needs a CUDA device; on the CPU use fp32, "
                         "or backend 'openvino' for bf16/int8")
    return concrete


def add_backend_arguments(parser) -> None:
    """``--backend`` and ``--precision`` of the command-line tools (one definition for all of them)."""
    parser.add_argument('--backend', default='auto', choices=BACKENDS,
                        help='inference runtime: auto (OpenVINO on the CPU when installed, torch on CUDA), torch, '
                             'openvino, onnxruntime (CPU) or tensorrt (CUDA); see docs/deploy.md')
    parser.add_argument('--precision', default='fp32', choices=ALL_PRECISIONS,
                        help='fp32 (exact, default); fp16 (CUDA: torch, tensorrt); bf16 (CUDA: torch; CPU: '
                             'openvino); int8 (openvino, calibrated once per checkpoint on generated scenes)')
