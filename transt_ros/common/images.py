"""Reading an image file as an (H, W, 3) uint8 RGB array."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np


class ImageReadError(OSError):
    """An image file is missing (``missing`` is True) or cannot be decoded; the message names the file."""

    def __init__(self, path: str | os.PathLike, missing: bool = False):
        self.path = Path(path)
        self.missing = missing
        super().__init__(f'{self.path}: no such image file' if missing else f'{self.path}: cannot decode image')


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file (any format OpenCV decodes; grey and alpha become RGB)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, missing=True)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ImageReadError(path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
