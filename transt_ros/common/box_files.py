"""Box files of the tracking benchmarks (GOT-10k, LaSOT, TrackingNet, OTB, UAV123 ground truth and
results; a custom video's ``boxes.txt``) and their per-frame flag files: one home, one contract, for
training and evaluation (the benchmark layouts that use them: :mod:`.benchmark_annotations`).

A box file has one line per frame, ``x,y,w,h`` in pixels (top-left corner), separated by commas,
tabs, spaces or semicolons; ``nan`` values are allowed (UAV123 marks an absent target so).
:func:`read_box_file` is strict: a line that is not 4 numbers raises :class:`BoxFileError` naming the
file and the line; an empty line inside the file is a NaN row (the frame keeps its place); empty
lines at the end are ignored. Flag and value files (:func:`read_flag_file`, :func:`read_value_file`)
hold one number per frame; one that is not a number raises :class:`BoxFileError` naming the file and
the line, and a file with more or fewer values than the frames is cut or padded, with a warning.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

SEPARATORS = re.compile(r'[,\s;]+')
LOGGER = logging.getLogger(__name__)


class BoxFileError(ValueError):
    """A box or flag file that cannot be read; the message names the file (and the line)."""

    def __init__(self, path: str | os.PathLike, problem: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f'{self.path}, line {line}' if line is not None else str(self.path)
        super().__init__(f'{where}: {problem}')


def read_lines(path: str | os.PathLike) -> list[str]:
    """The file's lines (undecodable bytes replaced); raises :class:`BoxFileError` if it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding='utf-8', errors='replace').splitlines()
    except OSError as error:
        raise BoxFileError(path, f'cannot read ({error.strerror or error})') from None


def _numbers(line: str) -> list[float] | None:
    fields = [item for item in SEPARATORS.split(line.strip()) if item]
    try:
        return [float(item) for item in fields]
    except ValueError:
        return None


def read_box_file(path: str | os.PathLike) -> np.ndarray:
    """``(N, 4)`` float boxes of a box file (see the module docstring); ``(0, 4)`` for an empty file."""
    lines = read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    boxes = np.full((len(lines), 4), np.nan)
    for row, line in enumerate(lines):
        values = _numbers(line)
        if values is None:
            raise BoxFileError(path, f'not numbers: {line.strip()[:60]!r} (expected x,y,w,h)', row + 1)
        if values and len(values) != 4:
            raise BoxFileError(path, f'{len(values)} numbers, expected 4 (x,y,w,h): {line.strip()[:60]!r}', row + 1)
        if values:
            boxes[row] = values
    return boxes


def read_value_file(path: str | os.PathLike, length: int | None = None, fill: float = 0.0) -> np.ndarray | None:
    """Numbers, one per frame (one per line or comma separated), or None when there is no such file.

    With ``length`` the values are padded with ``fill`` or cut to it (with a warning when the count
    differs). Raises :class:`BoxFileError` naming the file and the line of a value that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        return None
    values = []
    for row, line in enumerate(read_lines(path)):
        for item in (item for item in SEPARATORS.split(line.strip()) if item):
            try:
                values.append(float(item))
            except ValueError:
                raise BoxFileError(path, f'not a number: {item[:30]!r}', row + 1) from None
    array = np.array(values, dtype=np.float64)
    if length is not None:
        if len(array) != length:
            LOGGER.warning('%s has %d values for %d frames; %s', path, len(array), length,
                           f'the last {len(array) - length} ignored' if len(array) > length
                           else f'the missing ones taken as {fill:g}')
        if len(array) < length:
            array = np.concatenate([array, np.full(length - len(array), fill)])
        array = array[:length]
    return array


def read_flag_file(path: str | os.PathLike, length: int | None = None) -> np.ndarray | None:
    """0/1 flags per frame as bool (with ``length``: missing trailing entries False); None when there is
    no such file."""
    values = read_value_file(path, length)
    return None if values is None else values > 0
