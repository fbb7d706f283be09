"""The TransT tracker: ``initialize(frame, box)`` once, then ``track(frame)`` per frame."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..model import TemplateFeatures
from ..model.inference import fast_inference_copy, reference_copy
from ..model.precision import PRECISIONS, check_precision
from ..runtimes.backends import check_backend
from .box_limits import TrackerInputError, limit_box
from .crop import FrameUploader, context_side, crop_and_resize, normalize_crop
from .device_step import StepConstants, device_track_step, pack_geometry, search_sides
from .graph_step import DEFAULT_MAX_GRAPHS, shared_graph_step, tf32_scope
from .postprocess import PostprocessParams, clip_box, decode_box, hanning_window, penalize
from .reacquire import LostSearch, ReacquireParams, SearchCrop, best_candidate, reacquire_params, wide_crops

PATHS = {'fast': fast_inference_copy, 'reference': reference_copy}


@dataclass
class TrackResult:
    """One frame's answer.

    box: (x, y, w, h) in pixels, top-left corner, floats.
    score: raw target probability at the chosen cell, in [0, 1] (the confidence).
    penalized_score: the window-penalised score of that cell (what the authors report);
        None for trackers without one (and for a re-acquired target: no penalty there).
    reacquired: the wider search of a LOST target (``reacquire.py``) moved the target there.
    """

    box: tuple[float, float, float, float]
    score: float
    penalized_score: float | None = None
    reacquired: bool = False


def check_frame(frame) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise TrackerInputError(f'frame must be a numpy array, got {type(frame).__name__}')
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise TrackerInputError(f'frame must be H x W x 3 (RGB), got shape {frame.shape}')
    if frame.dtype != np.uint8:
        raise TrackerInputError(f'frame must be uint8, got {frame.dtype}')
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise TrackerInputError(f'frame is empty (shape {frame.shape})')
    return frame


@dataclass
class TargetState:
    """One target: its centre and size in pixels, padding colour, template features and
    re-acquisition state."""

    center: np.ndarray
    size: np.ndarray
    pad_value: np.ndarray
    template: TemplateFeatures
    search: LostSearch = field(default_factory=LostSearch)


def prepare_model(model: torch.nn.Module, device='cpu', precision: str = 'fp32', path: str = 'fast',
                  backend: str = 'torch'):
    """The model a tracker runs: for backend ``torch`` an eval-mode copy of ``model`` rewritten for
    ``path``, on ``device``; for another backend (``runtimes/backends.py``; ``auto`` resolved for
    ``device``) the model compiled by that runtime from the fast path's ONNX export."""
    concrete = check_backend(backend, precision, device)
    if path not in PATHS:
        raise ValueError(f'path must be one of {sorted(PATHS)}, got {path!r}')
    if concrete != 'torch':
        if path != 'fast':
            raise ValueError(f"backend {concrete!r} runs the fast path's export; path {path!r} needs backend 'torch'")
        from ..runtimes import compiled_models  # the runtime packages are imported only here
        return compiled_models.compile_model(model, concrete, precision, device)
    check_precision(precision)
    return PATHS[path](model).to(torch.device(device), PRECISIONS[precision])


def model_backend(model) -> str:
    """The backend a prepared model runs on: ``torch`` for an ``nn.Module``, else the runtime's name."""
    return 'torch' if isinstance(model, torch.nn.Module) else model.backend


class Tracker:
    """TransT single-object tracker around a loaded model.

    ``device``: 'cpu', 'cuda', 'cuda:N'; ``precision``: 'fp32', or 'fp16'/'bf16' (CUDA).
    ``path``: 'fast' (default: folded BatchNorm, fused attention, cached template work) or
    'reference' (the plain eager model); the tracker works on its own copy of ``model``.
    ``prepared=True``: ``model`` already comes from ``prepare_model`` with the same device,
    precision and path (several trackers then share one prepared copy).
    ``device_crop``: the whole step on ``device`` (``device_step.py``): one upload of the frame
    (pinned memory on CUDA), crop, resize and normalise with torch (OpenCV's arithmetic; equal
    to the OpenCV crop when shrinking, within one grey level on a few pixels when enlarging),
    network, window penalty and box decode there, one small copy back per frame.
    ``cuda_graph``: the device step captured as CUDA graphs (``graph_step.py``), one per frame
    size and batch bucket, at most ``max_graphs``, shared by every tracker of one prepared model
    (a new target never re-captures); implies ``device_crop``; CUDA only.
    ``allow_tf32``: let CUDA matmuls/convolutions use TF32 inside the tracker's calls (faster
    in fp32, less exact; see the README's precision table). Off by default; set only around the
    tracker's own calls, never globally.
    ``reacquire``: search wider for a LOST target (``reacquire.py``): True for the default
    ``ReacquireParams``, or the params; False (default): the authors' tracker, exactly.
    ``backend``: 'torch' (default), 'openvino', 'onnxruntime', 'tensorrt' or 'auto'
    (``runtimes/backends.py``): the network steps run by that runtime, the crops, window penalty and
    box decode stay the same; with ``prepared=True`` the prepared model's backend applies.
    Post-processing constants (``window_influence`` ...) are ``PostprocessParams`` fields.
    """

    def __init__(self, model: torch.nn.Module, device='cpu', precision: str = 'fp32', path: str = 'fast',
                 device_crop: bool = False, prepared: bool = False, cuda_graph: bool = False,
                 allow_tf32: bool = False, max_graphs: int = DEFAULT_MAX_GRAPHS,
                 reacquire: bool | ReacquireParams = False, backend: str = 'torch', **postprocess_params):
        self.device = torch.device(device)
        if cuda_graph and self.device.type != 'cuda':
            raise ValueError(f'cuda_graph needs a CUDA device, got {self.device}; '
                             'device_crop=True runs the same step eagerly on any device')
        self.params = PostprocessParams(**postprocess_params)
        self.reacquire: ReacquireParams | None = reacquire_params(reacquire)
        self.path = path
        self.model = model if prepared else prepare_model(model, device, precision, path, backend)
        self.backend = model_backend(self.model)
        if self.backend != 'torch' and (device_crop or cuda_graph):
            raise ValueError(f'device_crop and cuda_graph are steps of the torch backend, not of {self.backend!r}')
        # the crops' dtype: the model's on torch; runtimes take float32 crops whatever their precision
        self.dtype = PRECISIONS.get(precision) if self.backend == 'torch' else torch.float32
        config = self.model.config
        self.template_size, self.search_size = config.template_size, config.search_size
        self.window = hanning_window(config.search_feature_size)
        self.state: TargetState | None = None
        self.device_crop = device_crop or cuda_graph
        self.allow_tf32 = allow_tf32
        self._upload = FrameUploader(self.device)
        # Made once per tracker, keyed by nothing: the window comes from this tracker's model config,
        # the rest from self.params, which is frozen, and self.device, which never changes. The graph
        # step is shared per (prepared model, settings): see shared_graph_step.
        self._constants = StepConstants.create(self.window, self.params.window_influence, self.params.min_box_side,
                                               self.device) if self.device_crop else None
        self._graph_step = shared_graph_step(self.model, self._constants, self.dtype, self.device, allow_tf32,
                                             max_graphs) if cuda_graph else None
        self._warned_several_frames = False

    @property
    def center(self):
        return None if self.state is None else self.state.center

    @property
    def size(self):
        return None if self.state is None else self.state.size

    def _crop(self, frame, center, side, output_side, pad_value):
        """The host crop (OpenCV), uploaded: templates always (once per target), searches on the host path."""
        patch = crop_and_resize(frame, center, side, output_side, pad_value)
        return normalize_crop(patch, self.device, self.dtype)

    @torch.inference_mode()
    def new_target(self, frame: np.ndarray, box_xywh) -> TargetState:
        """Template features and initial state for a target in ``frame`` (RGB uint8)."""
        frame = check_frame(frame)
        x, y, w, h = limit_box(box_xywh, *frame.shape[:2])  # checked, and clamped: bounded cost
        center, size = np.array([x + w / 2, y + h / 2]), np.array([w, h])
        pad_value = frame.mean(axis=(0, 1))
        side = math.ceil(context_side(w, h, self.params.template_area_factor))
        with tf32_scope(self.allow_tf32):
            template = self.model.template(self._crop(frame, center, side, self.template_size, pad_value))
        return TargetState(center, size, pad_value, template, LostSearch(good_size=size.copy()))

    def initialize(self, frame: np.ndarray, box_xywh) -> None:
        self.state = self.new_target(frame, box_xywh)

    @torch.inference_mode()
    def track_states(self, states: list[TargetState], frames: list[np.ndarray],
                     template: TemplateFeatures | None = None) -> list[TrackResult]:
        """One forward for N targets, each searched in its own frame; updates ``states``.

        ``template`` may carry the N templates already stacked along the batch (see
        ``MultiTracker``); otherwise they are stacked here.
        """
        frames = [check_frame(frame) for frame in frames]
        sides = search_sides([state.size for state in states], self.params.search_area_factor)
        template = template or stack_templates([state.template for state in states])
        if self.device_crop and all(frame is frames[0] for frame in frames):
            return self._track_on_device(states, frames[0], sides, template)
        if self.device_crop and not self._warned_several_frames:
            warnings.warn('targets in different frames: the step runs on the host path, not the device step',
                          RuntimeWarning, stacklevel=2)
            self._warned_several_frames = True
        with tf32_scope(self.allow_tf32):
            crops = torch.cat([self._crop(frame, state.center, side, self.search_size, state.pad_value)
                               for frame, state, side in zip(frames, states, sides)])
            outputs = self.model.track(template, crops)
        scores, boxes = self._answers(outputs)
        return [self._local_answer(scores[index], boxes[index], state, side, frame)
                for index, (frame, state, side) in enumerate(zip(frames, states, sides))]

    @staticmethod
    def _answers(outputs: dict) -> tuple[np.ndarray, np.ndarray]:
        """The network's answer on the host: target probabilities (B, cells), normalised boxes (B, cells, 4)."""
        scores = torch.softmax(outputs['pred_logits'].float(), dim=-1)[..., 0].cpu().numpy()
        return scores, outputs['pred_boxes'].float().cpu().numpy()

    def _local_answer(self, scores: np.ndarray, boxes: np.ndarray, state: TargetState, side: int,
                      frame: np.ndarray) -> TrackResult:
        """The authors' step from one search crop's answer (window penalty, best cell, decode, clip);
        updates ``state``."""
        penalized = penalize(scores, self.window, self.params.window_influence)
        best = int(np.argmax(penalized))
        cx, cy, w, h = decode_box(boxes[best], state.center, side)
        cx, cy, w, h = clip_box(cx, cy, w, h, *frame.shape[:2], min_side=self.params.min_box_side)
        state.center, state.size = np.array([cx, cy]), np.array([w, h])
        return TrackResult((cx - w / 2, cy - h / 2, w, h), float(scores[best]), float(penalized[best]))

    @torch.inference_mode()
    def track_lost(self, states: list[TargetState], frames: list[np.ndarray], accept_score: float
                   ) -> list[TrackResult]:
        """The step of LOST targets: the local crop plus this LOST frame's wider crops
        (``reacquire.wide_crops``) and, for a target with a candidate awaiting confirmation, one crop
        around it; all targets in one forward; updates ``states``.

        A candidate (the best wider cell, or the confirmation crop's answer) replaces the authors'
        local answer when its raw score is at least ``accept_score`` and above the local one, and its
        colours match the target's ``colour_margin`` better than the local answer's
        (``TrackResult.reacquired``); with ``confirm``, a wider candidate first waits for its
        confirmation on the next LOST frame. Always the host path: the device step and CUDA graphs
        have static shapes for the local crop only, and a LOST frame's crops vary in number and side.
        """
        params = self.reacquire or ReacquireParams()
        frames = [check_frame(frame) for frame in frames]
        sides = search_sides([state.size for state in states], self.params.search_area_factor)
        plans = []
        for state, frame, side in zip(states, frames, sides):
            state.search.steps += 1
            anchor = state.size if state.search.good_size is None else state.search.good_size
            anchor_side = search_sides([anchor], self.params.search_area_factor)[0]
            height, width = frame.shape[:2]
            plan = [SearchCrop((state.center[0], state.center[1]), side),
                    *wide_crops(params, state.search.steps, state.center, anchor_side, width, height)]
            if state.search.pending is not None:  # last; a candidate waiting for its confirmation
                plan.append(SearchCrop(state.search.pending, anchor_side))
            plans.append(plan)
        with tf32_scope(self.allow_tf32):
            crops = torch.cat([self._crop(frame, crop.center, crop.side, self.search_size, state.pad_value)
                               for frame, state, plan in zip(frames, states, plans) for crop in plan])
            template = repeat_templates([state.template for state in states], [len(plan) for plan in plans])
            outputs = self.model.track(template, crops)
        scores, boxes = self._answers(outputs)
        results, row = [], 0
        for frame, state, side, plan in zip(frames, states, sides, plans):
            local = self._local_answer(scores[row], boxes[row], state, side, frame)
            pending, state.search.pending = state.search.pending, None
            end = row + len(plan) - (pending is not None)
            candidate = best_candidate(scores[row + 1:end], boxes[row + 1:end], plan[1:end - row], searched=plan[0])
            confirmed = None
            if pending is not None:  # the authors' step in the crop around the waiting candidate
                best = int(np.argmax(penalize(scores[end], self.window, self.params.window_influence)))
                confirmed = (float(scores[end][best]), decode_box(boxes[end][best], np.array(pending), plan[-1].side))
            row += len(plan)
            checks = [(confirmed, False)]  # (score, box) or None, and whether it must wait for a confirmation
            if candidate is not None:
                checks.append(((candidate.score, candidate.box), params.confirm))
            local_colour = chosen = None
            for found, waits in checks:
                if found is None or found[0] < accept_score or found[0] <= local.score:
                    continue
                cx, cy, w, h = clip_box(*found[1], *frame.shape[:2], min_side=self.params.min_box_side)
                if local_colour is None:
                    local_colour = state.search.looks_like(frame, local.box)
                if state.search.looks_like(frame, (cx - w / 2, cy - h / 2, w, h)) < local_colour + params.colour_margin:
                    continue
                if waits:
                    state.search.pending = (float(cx), float(cy))
                else:
                    chosen = (found[0], cx, cy, w, h)
                break
            if chosen is None:
                results.append(local)
                continue
            score, cx, cy, w, h = chosen
            state.center, state.size = np.array([cx, cy]), np.array([w, h])
            results.append(TrackResult((cx - w / 2, cy - h / 2, w, h), score, None, reacquired=True))
        return results

    def step(self, states: list[TargetState], frames: list[np.ndarray],
             template: TemplateFeatures | None = None) -> list[TrackResult]:
        """One frame for N targets: ``track_states`` without ``reacquire``; with it, the batched local
        step for the targets not LOST, ``track_lost`` for the LOST ones, then each target's
        hysteresis (``ReacquireParams.hysteresis``); a target's colours (``LostSearch.colour``) are
        taken from its box on its first step. ``template``: the N templates stacked, or None."""
        if self.reacquire is None:
            return self.track_states(states, frames, template)
        for state, frame in zip(states, frames):
            state.search.remember_colour(check_frame(frame), state.center, state.size)
        lost = [index for index, state in enumerate(states) if state.search.lost]
        tracking = [index for index, state in enumerate(states) if not state.search.lost]
        results: list[TrackResult | None] = [None] * len(states)
        if tracking:
            answers = self.track_states([states[i] for i in tracking], [frames[i] for i in tracking],
                                        None if lost else template)
            for index, answer in zip(tracking, answers):
                results[index] = answer
        if lost:
            answers = self.track_lost([states[i] for i in lost], [frames[i] for i in lost],
                                      self.reacquire.hysteresis.recover_threshold)
            for index, answer in zip(lost, answers):
                results[index] = answer
        for state, result in zip(states, results):
            state.search.observe(result.score, state.size, self.reacquire.hysteresis)
        return results

    def _track_on_device(self, states: list[TargetState], frame: np.ndarray, sides: list[int],
                         template: TemplateFeatures) -> list[TrackResult]:
        """The device step (graph replay or eager) for targets that share one frame."""
        geometry = pack_geometry([state.center for state in states], sides, [state.pad_value for state in states])
        if self._graph_step is not None:
            rows = self._graph_step(frame, geometry, template)
        else:
            with tf32_scope(self.allow_tf32):
                rows = device_track_step(self.model, template, self._upload(frame),
                                         torch.from_numpy(geometry).to(self.device), self._constants,
                                         self.dtype).cpu().numpy()
        results = []
        for state, (cx, cy, w, h, score, penalized, _) in zip(states, rows):
            state.center, state.size = np.array([cx, cy]), np.array([w, h])
            results.append(TrackResult((cx - w / 2, cy - h / 2, w, h), float(score), float(penalized)))
        return results

    def track(self, frame: np.ndarray) -> TrackResult:
        if self.state is None:
            raise RuntimeError('track() called before initialize(): set a target first')
        return self.step([self.state], [frame], self.state.template)[0]

    def reset(self) -> None:
        """Forget the target (the model stays loaded)."""
        self.state = None


def stack_templates(templates: list[TemplateFeatures]) -> TemplateFeatures:
    attended = None if any(t.attended is None for t in templates) else torch.cat([t.attended for t in templates])
    return TemplateFeatures(torch.cat([t.tokens for t in templates]), torch.cat([t.pos for t in templates]),
                            attended)


def repeat_templates(templates: list[TemplateFeatures], counts: list[int]) -> TemplateFeatures:
    """Each template repeated ``counts[i]`` times along the batch (one per crop of its target)."""
    def repeated(name: str) -> torch.Tensor:
        return torch.cat([getattr(t, name).expand(count, *getattr(t, name).shape[1:])
                          for t, count in zip(templates, counts)])

    attended = None if any(t.attended is None for t in templates) else repeated('attended')
    return TemplateFeatures(repeated('tokens'), repeated('pos'), attended)


class TemplateStack:
    """The templates of a list of targets stacked along the batch, restacked only when the list changes.

    Cache key: the template objects themselves, held here and compared with ``is``. Never their
    ``id()``s: the address of a freed template is reused by the next allocation, and a new
    target's template could then pass for a removed one's (issue 17). Holding the keys keeps
    them alive, so an equal key is the very same templates; ``TemplateFeatures`` is frozen and its
    tensors are never written in place, so the same object always holds the same features.
    ``clear()`` releases the held templates (the owner calls it when targets go).
    """

    def __init__(self):
        self._templates: tuple[TemplateFeatures, ...] = ()
        self._stacked: TemplateFeatures | None = None
        self.count = 0
        """How many times templates were stacked."""

    def get(self, templates: list[TemplateFeatures]) -> TemplateFeatures:
        if self._stacked is None or len(templates) != len(self._templates) or any(
                new is not old for new, old in zip(templates, self._templates)):
            self._templates, self._stacked = tuple(templates), stack_templates(templates)
            self.count += 1
        return self._stacked

    def clear(self) -> None:
        self._templates, self._stacked = (), None


class MultiTracker:
    """Several targets (or cameras) tracked with one batched forward per step.

    ``add(frame, box) -> index``; ``track(frames) -> list[TrackResult]`` with one frame per
    target (the same array may be passed several times for targets in one image).
    """

    def __init__(self, model: torch.nn.Module, **tracker_kwargs):
        self.tracker = Tracker(model, **tracker_kwargs)
        self.states: list[TargetState] = []
        self._stack = TemplateStack()  # keyed by the states' template objects: see TemplateStack

    def add(self, frame: np.ndarray, box_xywh) -> int:
        self.states.append(self.tracker.new_target(frame, box_xywh))
        return len(self.states) - 1

    def remove(self, index: int) -> None:
        del self.states[index]
        self._stack.clear()  # release the removed template

    def track(self, frames: list[np.ndarray]) -> list[TrackResult]:
        if len(frames) != len(self.states):
            raise TrackerInputError(f'{len(frames)} frames for {len(self.states)} targets')
        if not self.states:
            return []
        stacked = self._stack.get([state.template for state in self.states])
        return self.tracker.step(self.states, frames, stacked)
