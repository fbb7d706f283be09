"""Square context crops around the target, as pytracking's ``get_subwindow``.

The crop of side ``crop_side`` pixels is centred on ``center`` (x, y), padded with
``pad_value`` (the per-channel mean of the first frame, truncated to uint8) where it leaves
the image, and resized to ``output_side`` with ``cv2.resize``'s default bilinear filter.
Only the window is copied, never the whole (padded) image.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def crop_window(center_xy, crop_side: int) -> tuple[int, int]:
    """Top-left corner (x0, y0) of the crop in image pixels (may be negative)."""
    half = (crop_side + 1) / 2
    return int(math.floor(center_xy[0] - half + 0.5)), int(math.floor(center_xy[1] - half + 0.5))


def _crop_geometry(center_xy, crop_side: int, height: int, width: int):
    """Top-left corner of the crop, the (row, column) slices of the image it covers (None if
    none) and whether it lies wholly inside the image."""
    x0, y0 = crop_window(center_xy, crop_side)
    x1, y1 = x0 + crop_side, y0 + crop_side
    src_x0, src_y0, src_x1, src_y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    source = (slice(src_y0, src_y1), slice(src_x0, src_x1)) if src_x1 > src_x0 and src_y1 > src_y0 else None
    inside = x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height
    return (x0, y0), source, inside


def _shifted(source, x0: int, y0: int):
    """The image slices ``source`` in the coordinates of a crop whose corner is (x0, y0)."""
    rows, columns = source
    return slice(rows.start - y0, rows.stop - y0), slice(columns.start - x0, columns.stop - x0)


def crop_and_resize(image: np.ndarray, center_xy, crop_side: int, output_side: int,
                    pad_value: np.ndarray) -> np.ndarray:
    """image (H, W, 3) uint8 -> (output_side, output_side, 3) uint8 crop."""
    crop_side = int(crop_side)
    if crop_side < 1:
        raise ValueError(f'crop side must be at least 1 pixel, got {crop_side}')
    (x0, y0), source, inside = _crop_geometry(center_xy, crop_side, *image.shape[:2])
    if inside:
        patch = image[source]
    else:
        patch = np.empty((crop_side, crop_side, image.shape[2]), dtype=np.uint8)
        patch[...] = np.asarray(pad_value).astype(np.uint8)
        if source is not None:
            patch[_shifted(source, x0, y0)] = image[source]
    if crop_side != output_side:
        patch = cv2.resize(patch, (output_side, output_side))
    return patch


def normalize_crop(patch: np.ndarray, device='cpu', dtype=torch.float32) -> torch.Tensor:
    """(S, S, 3) uint8 RGB -> (1, 3, S, S) ImageNet-normalised tensor on ``device``."""
    tensor = torch.from_numpy(np.ascontiguousarray(patch)).to(device=device, non_blocking=True)
    tensor = tensor.permute(2, 0, 1).unsqueeze(0).float().div_(255.0).clamp_(0.0, 1.0)
    mean = torch.tensor(IMAGENET_MEAN, device=tensor.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=tensor.device).view(1, 3, 1, 1)
    return tensor.sub_(mean).div_(std).to(dtype)


def context_side(width: float, height: float, area_factor: float) -> float:
    """Side of the square context region: sqrt((w + p)(h + p)), p = (factor - 1)(w + h)/2."""
    pad = (area_factor - 1) * (width + height) / 2
    return math.sqrt((width + pad) * (height + pad))


class FrameUploader:
    """Moves RGB frames to the tracking device: zero-copy on the CPU; on CUDA through a
    reused pinned (page-locked) buffer and an asynchronous copy."""

    def __init__(self, device):
        self.device = torch.device(device)
        # The pinned buffer, reused while the frame's shape and dtype stay (a buffer keyed by the
        # shape only would silently cast a frame of another dtype). Overwriting it is safe because
        # every caller synchronises (reads its results back to the host) before the next upload,
        # so the previous asynchronous copy out of it has finished.
        self._pinned: torch.Tensor | None = None

    def __call__(self, frame: np.ndarray) -> torch.Tensor:
        frame = np.ascontiguousarray(frame)
        if self.device.type == 'cpu':
            return torch.from_numpy(frame)
        pinned = self._pinned
        if pinned is None or tuple(pinned.shape) != frame.shape or pinned.numpy().dtype != frame.dtype:
            self._pinned = torch.empty(frame.shape, dtype=torch.from_numpy(frame[:0]).dtype, pin_memory=True)
        self._pinned.numpy()[...] = frame
        return self._pinned.to(self.device, non_blocking=True)

