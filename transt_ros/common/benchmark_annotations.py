"""The annotation files of the tracking benchmarks that training and evaluation both read (GOT-10k,
LaSOT, TrackingNet): one reader per format, one contract, one home.

Contract: strict, as :mod:`.box_files`. A box line that is not 4 numbers, or a flag that is not a
number, raises :class:`~.box_files.BoxFileError` naming the file and the line (training turns it into
an ``AnnotationError``: that sequence is skipped and counted; evaluation stops and names the file);
an empty line is a NaN row; a flag file with more or fewer values than the frames is cut or padded
(missing values: not flagged), with a warning; a missing root or split folder raises
:class:`FileNotFoundError` (:func:`require_dir`). Which folders hold sequences, and the frame files,
stay with the callers (a training list, a benchmark's test list); this module knows the files of
one sequence.

* **GOT-10k** ``<seq>/groundtruth.txt``, ``absence.label``, ``cover.label``, ``meta_info.ini``.
  ``cover.label`` is the target's visible ratio in 9 levels, 0 = fully occluded or out of view
  (0 %), 8 = fully visible; ``absence.label`` is 1 where the target is out of the frame. A frame is
  *absent* where ``absence == 1`` or ``cover == 0``: the got10k toolkit (``ExperimentGOT10k.report``)
  scores the val frames with ``cover > 0``, and on the published data every absent frame has cover
  0, so the union is the toolkit's rule, and still holds where only one of the two files exists
  (pytracking uses the same union for training).
* **LaSOT** ``<class>/<class>-<n>/groundtruth.txt``, ``full_occlusion.txt``, ``out_of_view.txt``.
  The LaSOT toolkit scores the frames whose ground-truth box is valid (absent targets are annotated
  ``0,0,0,0``), so no frame is flagged *absent*; the two flag files are per-frame ``attributes``.
* **TrackingNet** ``<split>/anno/<seq>.txt`` (the ``TEST`` split: the first box only).
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .box_files import BoxFileError, read_box_file, read_flag_file, read_value_file

GROUND_TRUTH_FILE = 'groundtruth.txt'
"""GOT-10k and LaSOT: the boxes of one sequence."""
GOT10K_ABSENCE_FILE = 'absence.label'
GOT10K_COVER_FILE = 'cover.label'
GOT10K_META_FILE = 'meta_info.ini'
GOT10K_FULLY_OCCLUDED_COVER = 0
"""The ``cover.label`` level of a target that cannot be seen (fully occluded or out of view)."""
LASOT_FLAG_FILES = ('full_occlusion', 'out_of_view')
"""LaSOT per-frame flags, ``<name>.txt`` beside ``groundtruth.txt``."""


@dataclass(frozen=True)
class SequenceAnnotation:
    """What a benchmark says about the frames of one sequence.

    ``boxes``: ``(N, 4)`` float ``x, y, w, h`` as in the file (NaN for an empty line or ``nan``).
    ``absent``: ``(N,)`` bool, True where the benchmark's toolkit does not score the frame because the
    target cannot be seen (GOT-10k), or None where the benchmark flags no frame so.
    ``attributes``: other per-frame ``(N,)`` bool flags (LaSOT ``full_occlusion``, ``out_of_view``).
    """

    boxes: np.ndarray
    absent: np.ndarray | None = None
    attributes: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.boxes)


def require_dir(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path (``~`` expanded); FileNotFoundError naming ``what`` when it is not a directory."""
    if not str(path):
        raise FileNotFoundError(f'{what} not found: no directory given')
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f'{what} not found: {path} is not a directory')
    return path


def read_got10k_absent(folder: str | os.PathLike, n_frames: int) -> np.ndarray | None:
    """``(n_frames,)`` bool: ``absence.label == 1`` or ``cover.label == 0`` (see the module docstring);
    None when the sequence has neither file (the test split)."""
    folder = Path(folder)
    absence = read_flag_file(folder / GOT10K_ABSENCE_FILE, n_frames)
    cover = read_value_file(folder / GOT10K_COVER_FILE, n_frames, fill=GOT10K_FULLY_OCCLUDED_COVER + 1)
    if absence is None and cover is None:
        return None
    absent = np.zeros(n_frames, dtype=bool)
    if absence is not None:
        absent |= absence
    if cover is not None:
        absent |= cover == GOT10K_FULLY_OCCLUDED_COVER
    return absent


def read_got10k_sequence(folder: str | os.PathLike, n_frames: int | None = None) -> SequenceAnnotation:
    """A GOT-10k sequence folder: its boxes and absent frames. ``n_frames`` (default: one per box) is
    the length of ``absent``: a test sequence has one box for all its frames."""
    folder = Path(folder)
    boxes = read_box_file(folder / GROUND_TRUTH_FILE)
    return SequenceAnnotation(boxes, read_got10k_absent(folder, len(boxes) if n_frames is None else n_frames))


def read_got10k_resolution(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(width, height)`` from a GOT-10k ``meta_info.ini`` line ``resolution: (1920, 1080)``, or None."""
    if not Path(path).is_file():
        return None
    for number, line in enumerate(Path(path).read_text(errors='replace').splitlines(), start=1):
        key, _, value = line.partition(':')
        if key.strip() == 'resolution':
            try:
                width, height = ast.literal_eval(value.strip())
                return int(width), int(height)
            except (ValueError, SyntaxError, TypeError):
                raise BoxFileError(path, f'unreadable resolution {value.strip()!r}', number) from None
    return None


def read_lasot_sequence(folder: str | os.PathLike) -> SequenceAnnotation:
    """A LaSOT sequence folder: its boxes and the ``full_occlusion`` / ``out_of_view`` attributes
    (those whose file exists)."""
    folder = Path(folder)
    boxes = read_box_file(folder / GROUND_TRUTH_FILE)
    attributes = {}
    for name in LASOT_FLAG_FILES:
        flags = read_flag_file(folder / f'{name}.txt', len(boxes))
        if flags is not None:
            attributes[name] = flags
    return SequenceAnnotation(boxes, None, attributes)


def trackingnet_annotation_file(split_dir: str | os.PathLike, name: str) -> Path:
    """``<split>/anno/<name>.txt``."""
    return Path(split_dir) / 'anno' / f'{name}.txt'


def read_trackingnet_sequence(split_dir: str | os.PathLike, name: str) -> SequenceAnnotation:
    """A TrackingNet sequence of a split folder (``TEST``, ``TRAIN_<k>``): its boxes; nothing flagged."""
    return SequenceAnnotation(read_box_file(trackingnet_annotation_file(split_dir, name)))
