"""The TransT tracker: ``initialize(frame, box)`` once, then ``track(frame)`` per frame."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..model import TemplateFeatures
from ..model.inference import fast_inference_copy, reference_copy
from .crop import FrameUploader, context_side, crop_and_resize, crop_on_device, normalize_crop
from .postprocess import PostprocessParams, clip_box, decode_box, hanning_window, penalize

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
PATHS = {'fast': fast_inference_copy, 'reference': reference_copy}


class TrackerInputError(ValueError):
    """A frame or box the tracker cannot use; the message says what is wrong."""


@dataclass
class TrackResult:
    """One frame's answer.

    box: (x, y, w, h) in pixels, top-left corner, floats.
    score: raw target probability at the chosen cell, in [0, 1] (the confidence).
    penalized_score: the window-penalised score of that cell (what the authors report);
        None for trackers without one.
    """

    box: tuple[float, float, float, float]
    score: float
    penalized_score: float | None = None


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


def check_box(box, image_height: int, image_width: int) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise TrackerInputError(f'box must be 4 numbers (x, y, w, h), got {box!r}') from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise TrackerInputError(f'box has non-finite values: {box!r}')
    if w <= 0 or h <= 0:
        raise TrackerInputError(f'box must have positive width and height, got w={w}, h={h}')
    if x >= image_width or y >= image_height or x + w <= 0 or y + h <= 0:
        raise TrackerInputError(f'box {box!r} lies outside the {image_width}x{image_height} image')
    return x, y, w, h


@dataclass
class TargetState:
    """One target: its centre and size in pixels, padding colour and template features."""

    center: np.ndarray
    size: np.ndarray
    pad_value: np.ndarray
    template: TemplateFeatures


def prepare_model(model: torch.nn.Module, device='cpu', precision: str = 'fp32', path: str = 'fast'):
    """The eval-mode copy of ``model`` a tracker runs: rewritten for ``path``, on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
    if path not in PATHS:
        raise ValueError(f'path must be one of {sorted(PATHS)}, got {path!r}')
    device = torch.device(device)
    if precision != 'fp32' and device.type == 'cpu':
        raise ValueError(f'precision {precision!r} needs a CUDA device; use fp32 on the CPU')
    return PATHS[path](model).to(device, PRECISIONS[precision])


class Tracker:
    """TransT single-object tracker around a loaded model.

    ``device``: 'cpu', 'cuda', 'cuda:N'; ``precision``: 'fp32', or 'fp16'/'bf16' (CUDA).
    ``path``: 'fast' (default: folded BatchNorm, fused attention, cached template work) or
    'reference' (the plain eager model); the tracker works on its own copy of ``model``.
    ``prepared=True``: ``model`` already comes from ``prepare_model`` with the same device,
    precision and path (several trackers then share one prepared copy).
    ``device_crop``: crop, resize and normalise with torch on ``device`` after one upload of
    the frame (pinned memory on CUDA) instead of with OpenCV on the CPU: worth it for large
    frames on a GPU; within one grey level of the OpenCV crop.
    Post-processing constants (``window_influence`` ...) are ``PostprocessParams`` fields.
    """

    def __init__(self, model: torch.nn.Module, device='cpu', precision: str = 'fp32', path: str = 'fast',
                 device_crop: bool = False, prepared: bool = False, **postprocess_params):
        self.device = torch.device(device)
        self.dtype = PRECISIONS.get(precision)
        self.params = PostprocessParams(**postprocess_params)
        self.path = path
        self.model = model if prepared else prepare_model(model, device, precision, path)
        config = self.model.config
        self.template_size, self.search_size = config.template_size, config.search_size
        self.window = hanning_window(config.search_feature_size)
        self.state: TargetState | None = None
        self.device_crop = device_crop
        self._upload = FrameUploader(self.device)

    @property
    def initialized(self) -> bool:
        return self.state is not None

    @property
    def center(self):
        return None if self.state is None else self.state.center

    @property
    def size(self):
        return None if self.state is None else self.state.size

    def _crop(self, frame, center, side, output_side, pad_value):
        if self.device_crop:
            return crop_on_device(self._upload(frame), center, side, output_side, pad_value, self.dtype)
        patch = crop_and_resize(frame, center, side, output_side, pad_value)
        return normalize_crop(patch, self.device, self.dtype)

    @torch.inference_mode()
    def new_target(self, frame: np.ndarray, box_xywh) -> TargetState:
        """Template features and initial state for a target in ``frame`` (RGB uint8)."""
        frame = check_frame(frame)
        x, y, w, h = check_box(box_xywh, *frame.shape[:2])
        center, size = np.array([x + w / 2, y + h / 2]), np.array([w, h])
        pad_value = frame.mean(axis=(0, 1))
        side = math.ceil(context_side(w, h, self.params.template_area_factor))
        template = self.model.template(self._crop(frame, center, side, self.template_size, pad_value))
        return TargetState(center, size, pad_value, template)

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
        search_sides = [round(math.ceil(context_side(*state.size, self.params.search_area_factor)))
                        for state in states]
        crops = torch.cat([self._crop(frame, state.center, side, self.search_size, state.pad_value)
                           for frame, state, side in zip(frames, states, search_sides)])
        template = template or stack_templates([state.template for state in states])
        outputs = self.model.track(template, crops)
        scores = torch.softmax(outputs['pred_logits'].float(), dim=-1)[..., 0].cpu().numpy()
        boxes = outputs['pred_boxes'].float().cpu().numpy()
        results = []
        for index, (frame, state, side) in enumerate(zip(frames, states, search_sides)):
            penalized = penalize(scores[index], self.window, self.params.window_influence)
            best = int(np.argmax(penalized))
            cx, cy, w, h = decode_box(boxes[index, best], state.center, side)
            cx, cy, w, h = clip_box(cx, cy, w, h, *frame.shape[:2], min_side=self.params.min_box_side)
            state.center, state.size = np.array([cx, cy]), np.array([w, h])
            results.append(TrackResult((cx - w / 2, cy - h / 2, w, h), float(scores[index, best]),
                                       float(penalized[best])))
        return results

    def track(self, frame: np.ndarray) -> TrackResult:
        if self.state is None:
            raise RuntimeError('track() called before initialize(): set a target first')
        return self.track_states([self.state], [frame], self.state.template)[0]

    def reset(self) -> None:
        """Forget the target (the model stays loaded)."""
        self.state = None


def stack_templates(templates: list[TemplateFeatures]) -> TemplateFeatures:
    attended = None if any(t.attended is None for t in templates) else torch.cat([t.attended for t in templates])
    return TemplateFeatures(torch.cat([t.tokens for t in templates]), torch.cat([t.pos for t in templates]),
                            attended)


class MultiTracker:
    """Several targets (or cameras) tracked with one batched forward per step.

    ``add(frame, box) -> index``; ``track(frames) -> list[TrackResult]`` with one frame per
    target (the same array may be passed several times for targets in one image).
    """

    def __init__(self, model: torch.nn.Module, **tracker_kwargs):
        self.tracker = Tracker(model, **tracker_kwargs)
        self.states: list[TargetState] = []
        self._stacked: TemplateFeatures | None = None

    def add(self, frame: np.ndarray, box_xywh) -> int:
        self.states.append(self.tracker.new_target(frame, box_xywh))
        self._stacked = None
        return len(self.states) - 1

    def remove(self, index: int) -> None:
        del self.states[index]
        self._stacked = None

    def track(self, frames: list[np.ndarray]) -> list[TrackResult]:
        if len(frames) != len(self.states):
            raise TrackerInputError(f'{len(frames)} frames for {len(self.states)} targets')
        if not self.states:
            return []
        if self._stacked is None:
            self._stacked = stack_templates([state.template for state in self.states])
        return self.tracker.track_states(self.states, frames, self._stacked)
