"""The loaded model, shared in memory between the model manager (owner) and the tracker node.

The manager node's lifecycle drives the handle: configure -> :meth:`ModelHandle.load`,
activate/deactivate -> :meth:`ModelHandle.set_active`, cleanup/shutdown -> :meth:`ModelHandle.release`.
The tracker node asks it for a :class:`~transt_ros.tracking.Tracker` (the batched engine of its tracks;
``cuda_graph`` and ``allow_tf32`` as the manager was configured) and is
told (listeners) when the model goes away, so it can drop its references before the memory is freed.
"""
from __future__ import annotations

import gc
import threading
from collections.abc import Callable

import torch

from ..common.memory import release_free_heap
from ..tracking import Tracker
from .device_calls import DeviceCalls


def return_freed_memory() -> None:
    """After :meth:`ModelHandle.release`: collect the model's objects, give the freed heap back to the OS
    and the freed CUDA blocks back to the driver (the manager's cleanup)."""
    gc.collect()
    release_free_heap()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelUnavailable(RuntimeError):
    """No active model; the message says which lifecycle step is missing."""


class ModelHandle:
    def __init__(self):
        self._lock = threading.Lock()
        self._model: torch.nn.Module | None = None
        self._device = 'cpu'
        self._precision = 'fp32'
        self._cuda_graph = False
        self._allow_tf32 = False
        self._active = False
        self._finalized = False
        self._generation = 0
        self._listeners: list[Callable[[], None]] = []
        self._activity_listeners: list[Callable[[bool], None]] = []
        self.calls = DeviceCalls()
        """Every model call, one at a time, on one thread on CUDA (``device_calls.py``)."""

    @property
    def active(self) -> bool:
        return self._active and self._model is not None

    @property
    def generation(self) -> int:
        """Changes whenever the model is replaced or released."""
        return self._generation

    def describe(self) -> str:
        if self._finalized:
            return 'finalized (transt_model_manager was shut down; restart the process to track again)'
        if self._model is None:
            return 'no model loaded (transt_model_manager not configured)'
        state = 'active' if self._active else 'inactive (transt_model_manager not active)'
        options = ''.join([', CUDA graphs' if self._cuda_graph else '', ', TF32 allowed' if self._allow_tf32 else ''])
        backend = getattr(self._model, 'backend', 'torch')
        return f'model on {self._device}/{self._precision} ({backend}){options}, {state}'

    def add_listener(self, callback: Callable[[], None]) -> None:
        """``callback()`` runs (in the manager's thread) after the model was replaced or released."""
        self._listeners.append(callback)

    def add_activity_listener(self, callback: Callable[[bool], None]) -> None:
        """``callback(active)`` runs (in the manager's thread) when the model is activated or deactivated."""
        self._activity_listeners.append(callback)

    def load(self, model: torch.nn.Module, device: str, precision: str, cuda_graph: bool = False,
             allow_tf32: bool = False) -> None:
        """``model`` must come from ``prepare_model(..., device, precision)``: trackers share it.
        ``cuda_graph``: trackers run their step as CUDA graphs (only where ``device`` is CUDA: ignored on
        the CPU); ``allow_tf32``: TF32 inside the trackers' CUDA calls."""
        self.calls.use_own_thread(torch.device(device).type == 'cuda')
        with self._lock:
            self._model, self._device, self._precision = model, device, precision
            self._cuda_graph = bool(cuda_graph) and torch.device(device).type == 'cuda'
            self._allow_tf32 = bool(allow_tf32)
            self._active = False
            self._generation += 1
        self._notify()

    def set_active(self, active: bool) -> None:
        with self._lock:
            changed = self._active != bool(active)
            self._active = bool(active)
        if changed:
            for callback in list(self._activity_listeners):
                callback(bool(active))

    def release(self, finalize: bool = False) -> None:
        """Drop the model (listeners are told); ``finalize``: for good (the manager was shut down)."""
        with self._lock:
            had_model = self._model is not None
            self._model, self._active = None, False
            self._finalized = self._finalized or finalize
            self._generation += 1
        if had_model:
            self._notify()

    def close(self) -> None:
        """Process exit: forget the listeners (their nodes are gone), then drop the model silently."""
        self._listeners.clear()
        self._activity_listeners.clear()
        self.release()
        self.calls.close()

    def new_tracker(self, **postprocess_params) -> tuple[Tracker, int]:
        """A tracker on the active model, and the generation it belongs to."""
        with self._lock:
            model, generation = self._model, self._generation
            if model is None or not self._active:
                raise ModelUnavailable(f'model not active: {self.describe()}')
            device, precision = self._device, self._precision
            cuda_graph, allow_tf32 = self._cuda_graph, self._allow_tf32
        return Tracker(model, device=device, precision=precision, prepared=True, cuda_graph=cuda_graph,
                       allow_tf32=allow_tf32, **postprocess_params), generation

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()
