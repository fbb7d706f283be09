"""``transt_model_manager``: the lifecycle node that owns the TransT model.

- configure: read ``checkpoint`` / ``device`` / ``precision`` / ``backend`` / ``cuda_graph`` / ``allow_tf32``,
  load the model (compiled by the backend's runtime; int8 needs ``transt-export CKPT DIR --int8`` once) and warm it up
  (one dummy initialise + track, :func:`~transt_ros.tracking.warmup.warm_up`); FAILURE (node stays unconfigured)
  with an error log naming the cause when the checkpoint is missing, corrupt,
  incompatible or out of the architecture's bounds, the device is not available, or the warm-up
  output is not finite (NaN weights);
- activate / deactivate: enable / pause tracking;
- cleanup / shutdown / error: free the model (and the CUDA cache).

``autostart`` configures and activates from a one-shot steady-clock timer once the executor spins
(so it does not wait for /clock under ``use_sim_time``). ``precision``, ``backend`` and ``device`` are
checked when they are set (``ros2 param set`` answers with the reason; a backend whose package is missing is
refused naming it), not only at the next configure.
"""
from __future__ import annotations

import time

import torch
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from ..checkpoint import load_model
from ..common.ros_environment import MODEL_MANAGER_NODE_NAME
from ..runtimes.backends import ALL_PRECISIONS, BackendUnavailable, check_backend, check_backend_name, require
from ..tracking import prepare_model
from ..tracking.warmup import warm_up
from .model_handle import ModelHandle, return_freed_memory
from .parameters import MODEL_MANAGER_PARAMETERS, declare_parameters

NODE_NAME = MODEL_MANAGER_NODE_NAME


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


def parameter_problem(name: str, value) -> str | None:
    """Why ``value`` cannot be set for the manager's parameter ``name`` (None: fine)."""
    if name == 'precision' and value not in ALL_PRECISIONS:
        return f"precision must be one of {', '.join(ALL_PRECISIONS)}, got {value!r}"
    if name == 'backend':
        try:
            if check_backend_name(value) not in ('auto', 'torch'):
                require(value)
        except (ValueError, BackendUnavailable) as error:
            return str(error)
    if name in ('cuda_graph', 'allow_tf32') and not isinstance(value, bool):
        return f'{name} must be a bool (true or false), got {value!r}'
    if name == 'device':
        try:
            check_device(value)
        except ModelSetupError as error:
            return str(error)
    return None


class ModelManagerNode(LifecycleNode):
    def __init__(self, handle: ModelHandle, node_name: str = NODE_NAME, **kwargs):
        super().__init__(node_name, **kwargs)
        self.model_handle = handle
        values = declare_parameters(self, MODEL_MANAGER_PARAMETERS)
        device_problem = parameter_problem('device', values['device'])
        if device_problem and not device_problem.startswith(f"device '{values['device']}' is not available"):
            raise ValueError(f'invalid parameter: {device_problem}')  # malformed; "not available" fails configure
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._autostart_timer = None
        if self.get_parameter('autostart').value:
            self._autostart_timer = self.create_timer(0.1, self._autostart,
                                                      clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        for parameter in parameters:
            problem = parameter_problem(parameter.name, parameter.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

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
        torch_device = check_device(device)
        try:
            backend = check_backend(self.get_parameter('backend').value, precision, torch_device)
        except ValueError as error:
            raise ModelSetupError(f'{error} (device is {device!r})') from None
        calls = self.model_handle.calls
        calls.use_own_thread(torch_device.type == 'cuda')  # every CUDA call on one thread (device_calls.py)
        start = time.perf_counter()
        loaded = calls.run(load_model, checkpoint, device=torch_device)
        try:
            model = calls.run(prepare_model, loaded, device, precision, backend=backend)
        except BackendUnavailable as error:
            raise ModelSetupError(str(error)) from None
        del loaded
        load_ms = (time.perf_counter() - start) * 1000.0
        try:
            track_ms = calls.run(warm_up, model, device, precision)
        except Exception:
            del model
            raise
        cuda_graph = bool(self.get_parameter('cuda_graph').value) and torch_device.type == 'cuda' \
            and backend == 'torch'
        allow_tf32 = bool(self.get_parameter('allow_tf32').value)
        self.model_handle.load(model, device, precision, cuda_graph=cuda_graph, allow_tf32=allow_tf32)
        compiled = getattr(model, 'compile_seconds', {})
        compile_note = (f'; export {model.export_seconds:.1f} s, compile '
                        + ', '.join(f'{step} b{batch} {seconds:.1f} s' for (step, batch), seconds in compiled.items())
                        if backend != 'torch' else '')
        self.get_logger().info(
            f"loaded '{checkpoint}' ({model.config.backbone}, d_model {model.config.d_model}) on "
            f'{device}/{precision}, backend {backend} in {load_ms:.0f} ms; warm-up track {track_ms:.1f} ms'
            f"{compile_note}; CUDA graphs {'on' if cuda_graph else 'off'}, "
            f"TF32 {'allowed' if allow_tf32 else 'off'}")

    def _free(self) -> None:
        self.model_handle.release()
        self.model_handle.calls.run(return_freed_memory)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load()
        except Exception as error:  # every cause is named; the node stays up and unconfigured
            self.get_logger().error(f'configure failed: {type(error).__name__}: {error}')
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
        self.model_handle.release(finalize=True)
        self._free()
        self.get_logger().info('shut down: model freed, the manager is finalized')
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        self.get_logger().error(f'error while in {state.label}: model freed')
        return super().on_error(state)
