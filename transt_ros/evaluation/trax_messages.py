"""What a TraX client sends, as the tracker takes it: images -> RGB frames, regions -> ``x, y, w, h``.

Images: a file path (read by :func:`~transt_ros.common.images.read_image_rgb`), an in-memory image
(``rgb``, ``gray8``, ``gray16``: grey becomes RGB, 16 bits keep their high byte) or an encoded buffer
(JPEG, PNG ...). Regions: a rectangle as it is, a polygon as its bounding rectangle. Anything else
raises :class:`TraxRequestError`, whose message names what was sent.
"""
from __future__ import annotations

import cv2
import numpy as np
import trax

from ..common.images import read_image_rgb
from .vot_layout import bounding_rectangle

REGION_FORMATS = [trax.Region.RECTANGLE, trax.Region.POLYGON]
IMAGE_FORMATS = [trax.Image.PATH, trax.Image.MEMORY, trax.Image.BUFFER]
CHANNEL = trax.ImageChannel.COLOR


class TraxRequestError(ValueError):
    """A request the tracker cannot serve; the message names the cause."""


def frame_of(images: dict) -> np.ndarray:
    """The colour image of a request as an RGB ``uint8`` ``(H, W, 3)`` array.

    Raises :class:`~transt_ros.common.images.ImageReadError` (naming the file) for a path that
    cannot be read, :class:`TraxRequestError` for anything else that is not an image."""
    image = (images or {}).get(CHANNEL)
    if image is None:
        raise TraxRequestError(f'the request has no {CHANNEL!r} image (channels: {sorted(images or {})})')
    if isinstance(image, trax.FileImage):
        return read_image_rgb(image.path())
    if isinstance(image, trax.MemoryImage):
        return _memory_rgb(image.array())
    if isinstance(image, trax.BufferImage):
        data = image.buffer()
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None or decoded.size == 0:
            raise TraxRequestError(f'cannot decode the in-memory encoded image ({len(data)} bytes)')
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    raise TraxRequestError(f'unsupported image {image} (supported: {", ".join(IMAGE_FORMATS)})')


def _memory_rgb(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def box_of(region) -> np.ndarray:
    """``x, y, w, h`` of a rectangle, or of a polygon's bounding rectangle."""
    if isinstance(region, trax.Rectangle):
        return np.array(region.bounds(), dtype=float)
    if isinstance(region, trax.Polygon):
        return bounding_rectangle([region.get(i) for i in range(region.size())])
    raise TraxRequestError(f'unsupported region: {region} (supported: {", ".join(REGION_FORMATS)})')


def single_target(objects) -> np.ndarray:
    """The box of the one target of an initialisation request."""
    if not objects or len(objects) != 1:
        raise TraxRequestError(f'expected one target to initialise, got {len(objects or [])} '
                               '(transt-trax is a single-object tracker)')
    region, _properties = objects[0]
    return box_of(region)


def rectangle(box) -> trax.Rectangle:
    x, y, w, h = (float(value) for value in box)
    return trax.Rectangle.create(x, y, w, h)
