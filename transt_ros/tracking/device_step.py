"""The whole tracking step as tensor ops on the tracking device, with static shapes.

Crop, resize and normalise, the network, softmax, window penalty, best cell, box decode and
clipping run on the device; the per-frame geometry (crop corners, crop sides, previous centres,
padding colours) arrives as a small tensor, so the same code can be captured once as a CUDA
graph (``graph_step.py``) and replayed for every frame, or run eagerly on any device.

The crop reproduces ``cv2.resize``'s bilinear filter for uint8 images bit for bit: OpenCV
computes the source coordinate ``(j + 0.5) * in / out - 0.5`` in float32, clamps it to the crop,
rounds the two interpolation weights to 11-bit fixed point and combines the rows with 16-bit
high multiplies; ``bilinear_indices`` and ``resize_fixed_point`` do the same integer arithmetic.
An exact 2x reduction (which OpenCV runs as INTER_AREA) gives the same numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .crop import IMAGENET_MEAN, IMAGENET_STD, context_side, crop_window

_WEIGHT_SCALE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE (11 fractional bits)

GEOMETRY_COLUMNS = ('x0', 'y0', 'side', 'cx', 'cy', 'pad_r', 'pad_g', 'pad_b')
"""Per-target row of the geometry tensor: crop corner and side in image pixels, previous target
centre, padding colour (uint8 values)."""

RESULT_COLUMNS = ('cx', 'cy', 'w', 'h', 'score', 'penalized_score', 'cell')
"""Per-target row of the result tensor: the new box (centre and size, clipped), the raw target
probability and the window-penalised score at the chosen cell, and the cell's index."""


def pack_geometry(centers, sides, pad_values) -> np.ndarray:
    """(B, 8) float64 geometry rows for crops of integer ``sides`` around ``centers``."""
    rows = np.empty((len(sides), len(GEOMETRY_COLUMNS)), dtype=np.float64)
    for row, center, side, pad in zip(rows, centers, sides, pad_values):
        x0, y0 = crop_window(center, int(side))
        row[:] = (x0, y0, side, center[0], center[1], *np.asarray(pad).astype(np.uint8))
    return rows


def search_sides(sizes, search_area_factor: float) -> list[int]:
    """The authors' search-crop side for each target size (w, h): ceil of the context side, rounded."""
    return [round(float(np.ceil(context_side(w, h, search_area_factor)))) for w, h in sizes]


def bilinear_indices(sides: torch.Tensor, output_side: int):
    """OpenCV's source indices and fixed-point weights for resizing crops of ``sides`` (B,) float64.

    Returns (first, second, weight_first, weight_second), each (B, output_side): crop
    coordinates of the two neighbours (int64) and their weights (int32, sum about 2048).
    """
    positions = torch.arange(output_side, device=sides.device, dtype=torch.float64) + 0.5
    scale = 1.0 / (output_side / sides.unsqueeze(1))
    source = (positions * scale - 0.5).float()
    first = torch.floor(source)
    fraction = source - first
    last = (sides.unsqueeze(1) - 1).float()
    fraction = torch.where((first < 0) | (first >= last), torch.zeros_like(fraction), fraction)
    first = torch.minimum(first.clamp(min=0), last)
    second = torch.minimum(first + 1, last)
    weight_second = torch.round(fraction * _WEIGHT_SCALE).to(torch.int32)
    weight_first = torch.round((1.0 - fraction) * _WEIGHT_SCALE).to(torch.int32)
    return first.long(), second.long(), weight_first, weight_second


def _gather(frame: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Pixels (B, S, S, 3) int32 at image ``rows`` (B, S) x ``columns`` (B, S); ``pad`` outside."""
    height, width = frame.shape[:2]
    inside = ((rows >= 0) & (rows < height)).unsqueeze(2) & ((columns >= 0) & (columns < width)).unsqueeze(1)
    pixels = frame[rows.clamp(0, height - 1).unsqueeze(2), columns.clamp(0, width - 1).unsqueeze(1)]
    return torch.where(inside.unsqueeze(3), pixels.to(torch.int32), pad.view(-1, 1, 1, pad.shape[-1]))


def resize_fixed_point(frame: torch.Tensor, geometry: torch.Tensor, output_side: int) -> torch.Tensor:
    """frame (H, W, 3) uint8, geometry (B, 8) -> (B, 3, S, S) int32 crops, as ``crop_and_resize``."""
    corner_x, corner_y, sides = geometry[:, 0].long(), geometry[:, 1].long(), geometry[:, 2]
    pad = geometry[:, 5:8].to(torch.int32)
    col_a, col_b, weight_col_a, weight_col_b = bilinear_indices(sides, output_side)
    row_a, row_b, weight_row_a, weight_row_b = bilinear_indices(sides, output_side)
    col_a, col_b = col_a + corner_x.unsqueeze(1), col_b + corner_x.unsqueeze(1)
    row_a, row_b = row_a + corner_y.unsqueeze(1), row_b + corner_y.unsqueeze(1)
    weight_col_a, weight_col_b = weight_col_a.view(-1, 1, output_side, 1), weight_col_b.view(-1, 1, output_side, 1)

    def horizontal(rows):  # one pass over the columns, exact in int32 (at most 255 * 2049)
        return _gather(frame, rows, col_a, pad) * weight_col_a + _gather(frame, rows, col_b, pad) * weight_col_b

    upper, lower = horizontal(row_a) >> 4, horizontal(row_b) >> 4
    weight_row_a, weight_row_b = weight_row_a.view(-1, output_side, 1, 1), weight_row_b.view(-1, output_side, 1, 1)
    combined = ((upper * weight_row_a) >> 16) + ((lower * weight_row_b) >> 16)
    return ((combined + 2) >> 2).clamp_(0, 255).permute(0, 3, 1, 2)


@dataclass(frozen=True)
class StepConstants:
    """Everything of the step that does not change from frame to frame, already on the device."""

    mean: torch.Tensor
    std: torch.Tensor
    window: torch.Tensor
    window_influence: float
    min_box_side: float

    @classmethod
    def create(cls, window: np.ndarray, window_influence: float, min_box_side: float, device) -> StepConstants:
        return cls(torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
                   torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1),
                   torch.as_tensor(window, dtype=torch.float64, device=device),
                   float(window_influence), float(min_box_side))


def normalized_crops(frame: torch.Tensor, geometry: torch.Tensor, output_side: int, constants: StepConstants,
                     dtype: torch.dtype) -> torch.Tensor:
    """(B, 3, S, S) ImageNet-normalised crops in ``dtype``, as ``normalize_crop(crop_and_resize(...))``."""
    crops = resize_fixed_point(frame, geometry, output_side).float().div_(255.0).clamp_(0.0, 1.0)
    return crops.sub_(constants.mean).div_(constants.std).to(dtype)


def decode_best(outputs: dict, geometry: torch.Tensor, frame_size: tuple[int, int],
                constants: StepConstants) -> torch.Tensor:
    """Network outputs -> (B, 7) float64 results (``RESULT_COLUMNS``), the authors' rules on the device."""
    scores = torch.softmax(outputs['pred_logits'].float(), dim=-1)[..., 0].double()
    penalized = scores * (1 - constants.window_influence) + constants.window * constants.window_influence
    best = torch.argmax(penalized, dim=1, keepdim=True)
    box = torch.gather(outputs['pred_boxes'].double(), 1, best.unsqueeze(2).expand(-1, 1, 4)).squeeze(1)
    sides = geometry[:, 2:3]
    box = box * sides
    height, width = frame_size
    center_x = (box[:, 0] + geometry[:, 3] - sides[:, 0] / 2).clamp(0.0, width)
    center_y = (box[:, 1] + geometry[:, 4] - sides[:, 0] / 2).clamp(0.0, height)
    box_w = box[:, 2].clamp(max=width).clamp(min=constants.min_box_side)
    box_h = box[:, 3].clamp(max=height).clamp(min=constants.min_box_side)
    return torch.stack([center_x, center_y, box_w, box_h, torch.gather(scores, 1, best).squeeze(1),
                        torch.gather(penalized, 1, best).squeeze(1), best.squeeze(1).double()], dim=1)


def device_track_step(model, template, frame: torch.Tensor, geometry: torch.Tensor, constants: StepConstants,
                      dtype: torch.dtype) -> torch.Tensor:
    """One tracking step for B targets in one frame, entirely on the frame's device.

    frame: (H, W, 3) uint8; geometry: (B, 8) float64 (``GEOMETRY_COLUMNS``); template: the B
    stacked ``TemplateFeatures``. Returns (B, 7) float64 (``RESULT_COLUMNS``). No host
    synchronisation: the step can be captured in a CUDA graph.
    """
    crops = normalized_crops(frame, geometry, model.config.search_size, constants, dtype)
    outputs = model.track(template, crops)
    return decode_best(outputs, geometry, tuple(frame.shape[:2]), constants)
