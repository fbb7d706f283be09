"""The TransT tracker: ``initialize(frame, box)`` once, then ``track(frame)`` per frame."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..model.inference import fast_inference_copy, reference_copy
from .crop import context_side, crop_and_resize, normalize_crop
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


class Tracker:
    """TransT single-object tracker around a loaded model.

    ``device``: 'cpu', 'cuda', 'cuda:N'; ``precision``: 'fp32', or 'fp16'/'bf16' (CUDA).
    ``path``: 'fast' (default: folded BatchNorm, fused attention, cached template work) or
    'reference' (the plain eager model); the tracker works on its own copy of ``model``.
    Post-processing constants (``window_influence`` ...) are ``PostprocessParams`` fields.
    """

    def __init__(self, model: torch.nn.Module, device='cpu', precision: str = 'fp32', path: str = 'fast',
                 **postprocess_params):
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}')
        if path not in PATHS:
            raise ValueError(f'path must be one of {sorted(PATHS)}, got {path!r}')
        self.device = torch.device(device)
        if precision != 'fp32' and self.device.type == 'cpu':
            raise ValueError(f'precision {precision!r} needs a CUDA device; use fp32 on the CPU')
        self.dtype = PRECISIONS[precision]
        self.params = PostprocessParams(**postprocess_params)
        self.path = path
        self.model = PATHS[path](model).to(self.device, self.dtype)
        config = self.model.config
        self.template_size, self.search_size = config.template_size, config.search_size
        self.window = hanning_window(config.search_feature_size)
        self._template = None
        self.center = self.size = self.pad_value = None

    @property
    def initialized(self) -> bool:
        return self._template is not None

    def _crop(self, frame, side, output_side):
        patch = crop_and_resize(frame, self.center, side, output_side, self.pad_value)
        return normalize_crop(patch, self.device, self.dtype)

    @torch.inference_mode()
    def initialize(self, frame: np.ndarray, box_xywh) -> None:
        frame = check_frame(frame)
        x, y, w, h = check_box(box_xywh, *frame.shape[:2])
        self.center = np.array([x + w / 2, y + h / 2])
        self.size = np.array([w, h])
        self.pad_value = frame.mean(axis=(0, 1))
        side = math.ceil(context_side(w, h, self.params.template_area_factor))
        self._template = self.model.template(self._crop(frame, side, self.template_size))

    @torch.inference_mode()
    def track(self, frame: np.ndarray) -> TrackResult:
        if not self.initialized:
            raise RuntimeError('track() called before initialize(): set a target first')
        frame = check_frame(frame)
        search_side = round(math.ceil(context_side(*self.size, self.params.search_area_factor)))
        outputs = self.model.track(self._template, self._crop(frame, search_side, self.search_size))
        scores = torch.softmax(outputs['pred_logits'][0].float(), dim=-1)[:, 0].cpu().numpy()
        boxes = outputs['pred_boxes'][0].float().cpu().numpy()
        penalized = penalize(scores, self.window, self.params.window_influence)
        best = int(np.argmax(penalized))
        cx, cy, w, h = decode_box(boxes[best], self.center, search_side)
        cx, cy, w, h = clip_box(cx, cy, w, h, *frame.shape[:2], min_side=self.params.min_box_side)
        self.center, self.size = np.array([cx, cy]), np.array([w, h])
        return TrackResult((cx - w / 2, cy - h / 2, w, h), float(scores[best]), float(penalized[best]))

    def reset(self) -> None:
        """Forget the target (the model stays loaded)."""
        self._template = None
        self.center = self.size = self.pad_value = None
