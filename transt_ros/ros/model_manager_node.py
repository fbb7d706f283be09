"""``transt_model_manager``: the lifecycle node that owns the TransT model.

- configure: read ``checkpoint`` / ``device`` / ``precision``, load the model and warm it up
  (one dummy initialise + track); FAILURE (node stays unconfigured) with an error log when the
  checkpoint is missing, corrupt or incompatible, or the device is not available;
- activate / deactivate: enable / pause tracking;
- cleanup / shutdown / error: free the model (and the CUDA cache).

``autostart`` configures and activates from a one-shot timer once the executor spins.
"""
from __future__ import annotations

import gc
import time

import numpy as np
import torch
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from ..checkpoint import CheckpointError, load_model
from ..tracking import Tracker, prepare_model
from .model_handle import ModelHandle
from .parameters import MODEL_MANAGER_PARAMETERS, PRECISIONS, declare_parameters

NODE_NAME = 'transt_model_manager'


class ModelSetupError(RuntimeError):
    """The configured device / precision cannot be used."""


def check_device(device: str) -> torch.device:
    """The torch device for ``device``, or ModelSetupError if it is malformed or not available."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ModelSetupError(f"invalid device '{device}': {error}") from None
    if parsed.type == 'cpu':
        return parsed
    if parsed.type != 'cuda':
        raise ModelSetupError(f"unsupported device type '{parsed.type}' (use 'cpu', 'cuda' or 'cuda:N')")
    if not torch.cuda.is_available():
        raise ModelSetupError(f"device '{device}' is not available: torch.cuda.is_available() is False")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ModelSetupError(f"device '{device}' is not available: {torch.cuda.device_count()} CUDA device(s)")
    return parsed


def warm_up(model: torch.nn.Module, device: str, precision: str) -> float:
    """One dummy initialise + track (allocations, kernel selection); returns the track time [ms]."""
    tracker = Tracker(model, device=device, precision=precision, prepared=True)
    side = model.config.search_size * 2
    frame = np.full((side, side, 3), 127, np.uint8)
    tracker.initialize(frame, (side / 4, side / 4, side / 2, side / 2))
    start = time.perf_counter()
    tracker.track(frame)
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1000.0


class ModelManagerNode(LifecycleNode):
    def __init__(self, handle: ModelHandle, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self.model_handle = handle
        declare_parameters(self, MODEL_MANAGER_PARAMETERS)
        self._autostart_timer = None
        if self.get_parameter('autostart').value:
            self._autostart_timer = self.create_timer(0.1, self._autostart)

    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        self._autostart_timer = None
        self.get_logger().info('autostart: configuring')
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error('autostart: configure failed; the node stays unconfigured')
            return
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error('autostart: activate failed')

    def _load(self) -> None:
        checkpoint = self.get_parameter('checkpoint').value
        device = self.get_parameter('device').value
        precision = self.get_parameter('precision').value
        if not checkpoint:
            raise ModelSetupError("parameter 'checkpoint' is empty: set it to a TransT checkpoint file")
        if precision not in PRECISIONS:
            raise ModelSetupError(f"precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")
        torch_device = check_device(device)
        if precision != 'fp32' and torch_device.type != 'cuda':
            raise ModelSetupError(f"precision '{precision}' needs a CUDA device (device is '{device}')")
        start = time.perf_counter()
        model = prepare_model(load_model(checkpoint, device=torch_device), device, precision)
        load_ms = (time.perf_counter() - start) * 1000.0
        track_ms = warm_up(model, device, precision)
        self.model_handle.load(model, device, precision)
        self.get_logger().info(
            f"loaded '{checkpoint}' ({model.config.backbone}, d_model {model.config.d_model}) on "
            f'{device}/{precision} in {load_ms:.0f} ms; warm-up track {track_ms:.1f} ms')

    def _free(self) -> None:
        self.model_handle.release()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load()
        except (CheckpointError, ModelSetupError, ValueError, RuntimeError, OSError) as error:
            self.get_logger().error(f'configure failed: {error}')
            self._free()
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.model_handle.set_active(True)
        self.get_logger().info('activated: tracking enabled')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.model_handle.set_active(False)
        self.get_logger().info('deactivated: tracking paused')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        self.get_logger().info('cleaned up: model freed')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        self.get_logger().error(f'error while in {state.label}: model freed')
        return super().on_error(state)
