"""Limits on the boxes a tracker starts from, and the test for a usable result.

A box given by a user (a service call, a click, a detector) may be absurd: non-finite, far
larger than the image, or so large that its area overflows. The tracker's first search crop
is ``search_area_factor`` times the box's context, so an unbounded box means unbounded memory
(a 3000x3000 box: +368 MB; 1e300: OverflowError). :func:`limit_box` bounds a box as the tracker
bounds every box it predicts (``postprocess.clip_box``: centre inside the image, each side at most
the image's side): a box that breaks these limits is cut to its part inside the image. The cost of
any request is then bounded by the image size.

Boxes are ``(x, y, w, h)`` in pixels, top-left corner.
"""
from __future__ import annotations

import math

from .postprocess import clip_box


class TrackerInputError(ValueError):
    """A frame or box the tracker cannot use; the message says what is wrong."""


class BoxLimitError(TrackerInputError):
    """A box that cannot be clamped into a usable one; the message says why."""


def check_box(box, image_height: int, image_width: int) -> tuple[float, float, float, float]:
    """``box`` as four floats; :class:`TrackerInputError` unless they are finite, the sides positive
    and the box overlaps the image."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError, OverflowError):
        raise TrackerInputError(f'box must be 4 numbers (x, y, w, h), got {box!r}') from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise TrackerInputError(f'box has non-finite values: {box!r}')
    if w <= 0 or h <= 0:
        raise TrackerInputError(f'box must have positive width and height, got w={w}, h={h}')
    if x >= image_width or y >= image_height or x + w <= 0 or y + h <= 0:
        raise TrackerInputError(f'box {box!r} lies outside the {image_width}x{image_height} image')
    return x, y, w, h


def limit_box(box, image_height: int, image_width: int, min_side: float = 0.0) -> tuple[float, float, float, float]:
    """``box`` within a predicted box's limits: centre inside the image, sides in [min_side, image side].

    Boxes within these limits come back unchanged (also those partly outside the image, as the
    tracker keeps them); others are cut to their part inside the image. Raises :class:`BoxLimitError`
    (a :class:`TrackerInputError`) for a box :func:`check_box` refuses, or an empty image.
    """
    if image_height <= 0 or image_width <= 0:
        raise BoxLimitError(f'empty image ({image_width}x{image_height})')
    try:
        x, y, width, height = check_box(box, image_height, image_width)
    except TrackerInputError as error:
        raise BoxLimitError(str(error)) from None
    cx, cy = x + width / 2, y + height / 2  # inf when the box overflows: cut below
    if 0.0 <= cx <= image_width and 0.0 <= cy <= image_height and min_side <= width <= image_width \
            and min_side <= height <= image_height:
        return x, y, width, height  # within the limits: unchanged, bit for bit
    left, top = max(x, 0.0), max(y, 0.0)  # check_box made sure the box overlaps the image
    right, bottom = min(x + width, float(image_width)), min(y + height, float(image_height))
    cx, cy, width, height = clip_box((left + right) / 2, (top + bottom) / 2, right - left, bottom - top,
                                     image_height, image_width, min_side=min_side)
    width, height = float(width), float(height)
    return float(cx) - width / 2, float(cy) - height / 2, width, height


def is_clamped(original, limited) -> bool:
    """True when :func:`limit_box` changed the box."""
    return tuple(float(value) for value in original) != tuple(limited)


def finite_result(box, score) -> bool:
    """True when a tracker's answer is usable: a finite score and four finite box values.

    A model with NaN/Inf weights answers NaN scores (and boxes clipped from NaN); such an answer
    is a failure, never a detection.
    """
    try:
        values = [float(score), *(float(value) for value in box)]
    except (TypeError, ValueError):
        return False
    return all(math.isfinite(value) for value in values)
