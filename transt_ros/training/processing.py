"""Turn a (template frame, search frame) pair into network inputs, as the authors did.

pytracking's ``TransTProcessing``: each box is jittered (centre offset uniform in
+-``center_jitter``/2 x sqrt(jittered area), size scaled by exp(N(0, ``scale_jitter``))),
a square of side sqrt(w h) x ``area_factor`` around the jittered box is cut out (zero
padding outside the image) and resized to the crop size; then each crop's brightness is
multiplied by U(1 - b, 1 + b) and, with probability ``grayscale_probability``, both crops are
turned gray. The crop is one affine warp (sub-pixel exact, the box maps through the same
transform), bilinear like the authors' ``cv2.resize``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass
class CropSettings:
    area_factor: float
    output_size: int
    center_jitter: float
    scale_jitter: float


def jitter_box(box: np.ndarray, center_jitter: float, scale_jitter: float, rng: np.random.Generator) -> np.ndarray:
    """(x, y, w, h) -> jittered (x, y, w, h), pytracking's ``_get_jittered_box``."""
    x, y, w, h = box
    size = np.array([w, h]) * np.exp(rng.standard_normal(2) * scale_jitter)
    max_offset = math.sqrt(size[0] * size[1]) * center_jitter
    center = np.array([x + w / 2, y + h / 2]) + max_offset * (rng.random(2) - 0.5)
    return np.array([center[0] - size[0] / 2, center[1] - size[1] / 2, size[0], size[1]])


def crop_transform(center_box: np.ndarray, area_factor: float, output_size: int) -> tuple[float, float, float]:
    """(scale, x0, y0): crop pixel-edge coordinates are (image_xy - (x0, y0)) * scale.

    The crop is the square of side sqrt(w h) * area_factor centred on the box centre.
    """
    x, y, w, h = center_box
    side = math.sqrt(w * h) * area_factor
    return output_size / side, x + w / 2 - side / 2, y + h / 2 - side / 2


def warp_crop(image: np.ndarray, transform, output_size: int, border_value=(0, 0, 0)) -> np.ndarray:
    """(H, W, 3) uint8 -> (output_size, output_size, 3) uint8 crop under ``transform``."""
    scale, x0, y0 = transform
    # warpAffine maps pixel centres (index i <-> edge coordinate i + 0.5).
    matrix = np.array([[scale, 0.0, (0.5 - x0) * scale - 0.5],
                       [0.0, scale, (0.5 - y0) * scale - 0.5]])
    return cv2.warpAffine(image, matrix, (output_size, output_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in border_value))


def box_in_crop(box: np.ndarray, transform) -> np.ndarray:
    scale, x0, y0 = transform
    x, y, w, h = box
    return np.array([(x - x0) * scale, (y - y0) * scale, w * scale, h * scale])


def to_tensor(crop: np.ndarray, brightness: float) -> torch.Tensor:
    """(S, S, 3) uint8 -> (3, S, S) float32, brightness-scaled, clamped, ImageNet-normalised."""
    values = np.clip(crop.astype(np.float32) * (brightness / 255.0), 0.0, 1.0)
    values = (values - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(values.transpose(2, 0, 1)))


class PairProcessing:
    """Crops, boxes and photometric augmentation of one training pair."""

    def __init__(self, template: CropSettings, search: CropSettings, brightness_jitter: float = 0.2,
                 grayscale_probability: float = 0.05, border: str = 'zero'):
        self.template, self.search = template, search
        self.brightness_jitter = brightness_jitter
        self.grayscale_probability = grayscale_probability
        self.border = border

    @classmethod
    def from_config(cls, data, template_size: int, search_size: int) -> PairProcessing:
        """From a ``DataConfig`` and the model's crop sizes."""
        return cls(CropSettings(data.template_area_factor, template_size, data.template_center_jitter,
                                data.template_scale_jitter),
                   CropSettings(data.search_area_factor, search_size, data.search_center_jitter,
                                data.search_scale_jitter),
                   data.brightness_jitter, data.grayscale_probability, data.border)

    def _crop(self, image, box, settings: CropSettings, rng):
        jittered = jitter_box(box, settings.center_jitter, settings.scale_jitter, rng)
        if not np.isfinite(jittered).all() or math.sqrt(jittered[2] * jittered[3]) * settings.area_factor < 1:
            return None
        transform = crop_transform(jittered, settings.area_factor, settings.output_size)
        border = cv2.mean(np.ascontiguousarray(image))[:3] if self.border == 'mean' else (0, 0, 0)  # 10x np.mean
        return warp_crop(image, transform, settings.output_size, border), box_in_crop(box, transform)

    def __call__(self, template_image, template_box, search_image, search_box, rng: np.random.Generator):
        """Returns {'template', 'search': (3, S, S) float32, 'search_box': (4,) normalised
        (cx, cy, w, h) of the target in the search crop, 'template_box': the same for the
        template}, or None when a crop would be smaller than one pixel."""
        template = self._crop(template_image, np.asarray(template_box, dtype=np.float64), self.template, rng)
        search = self._crop(search_image, np.asarray(search_box, dtype=np.float64), self.search, rng)
        if template is None or search is None:
            return None
        crops = [template[0], search[0]]
        if rng.random() < self.grayscale_probability:
            crops = [np.repeat(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2) for c in crops]
        low = max(0.0, 1.0 - self.brightness_jitter)
        tensors = [to_tensor(c, rng.uniform(low, 1.0 + self.brightness_jitter)) for c in crops]
        boxes = []
        for (_, box), size in ((template, self.template.output_size), (search, self.search.output_size)):
            x, y, w, h = box / size
            boxes.append(torch.tensor([x + w / 2, y + h / 2, w, h], dtype=torch.float32))
        return {'template': tensors[0], 'search': tensors[1], 'template_box': boxes[0], 'search_box': boxes[1]}
