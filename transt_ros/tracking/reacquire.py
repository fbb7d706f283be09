"""Finding a LOST target again: a wider search than the authors' window, bounded per frame.

TransT looks for the target in one square crop around its last position, ``search_area_factor``
(4) times the target's context side, with a window penalty that favours the centre. A target that
comes back outside that square (it left the view, was occluded while moving) is never found
again. While a target is LOST (:mod:`.lost_state`: ``lost_frames`` scores below ``lost_threshold``)
its step adds wider crops to the local one, LOST frame ``k = 1, 2, ...`` (:attr:`LostSearch.steps`):

1. **growing**: one crop around the current centre, of side ``anchor side * growth ** k`` while
   that stays within ``max_search_scale`` anchor sides (resized to the network's search size: the
   target looks smaller);
2. then **tiles**: the whole frame covered by crops of the anchor side (the target at the scale
   the network saw while tracking), centres on a grid spaced at most ``(1 - tile_overlap)`` sides
   apart; at most ``max_tiles`` per frame, the tile set taken in turns over frames when the frame
   needs more (every tile is searched within ``ceil(tiles / max_tiles)`` frames).

The anchor side is the search side of the last size seen with a confident score (the size drifts
while the score is low). The local crop and the wider ones go through **one** forward (the
target's template repeated along the batch). In the wider crops the window penalty is off (the
target may be anywhere) and the best raw score over their cells outside the local crop (inside it
the local step and its motion prior decide) is the candidate. The network's score alone does not
tell the target from another object (the bundled demo model scores a wrong object up to 0.99), so a
candidate must also pass two checks before it replaces the local answer:

* **appearance**: it must look more like the target than the local answer does: the Bhattacharyya
  coefficient of its box's hue-saturation histogram with the target's (:func:`colour_model`, taken
  in the box the target was initialised with, on the first frame it is stepped on) must exceed the
  local answer's by ``colour_margin``. A target that is still there at a low score keeps the local
  answer (it looks like itself), a look-alike next to it does not beat it;
* **confirmation** (``confirm``): it must be found again on the next LOST frame, by the authors' step
  (window penalty on) in one more crop of the anchor side around it, with the same checks.

Then it replaces the local answer when its raw score also reaches the recover threshold and beats
the local score, and the target's centre and size are reset to it (the next frame searches locally
around it). While TRACKING nothing changes: the step is the authors'.

Cost bound: a LOST target's frame is one forward of at most ``2 + max(1, max_tiles)`` crops (the
local one, the wider ones, the confirmation crop; growing phase: at most 3), on the host path (crops
with OpenCV), and at most three histograms of a box.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .lost_state import LOST, TRACKING, Hysteresis, next_state

DEMO_MODEL_HYSTERESIS = Hysteresis(lost_threshold=0.9, recover_threshold=0.95, lost_frames=3)
"""LOST after 3 scores below 0.9, found at 0.95: chosen for the bundled demo model on generated
``hard`` scenes of a seed other than the evaluation's (see ``benchmarks/reacquire.py``)."""


@dataclass(frozen=True)
class ReacquireParams:
    """How a LOST target is searched for (see the module docstring).

    ``hysteresis``: when a target of a :class:`~.tracker.Tracker` / ``MultiTracker`` is LOST and
    when a candidate is accepted (``recover_threshold``); the node's track registry uses its own
    (the node's ``lost_threshold`` ... parameters). The thresholds are in the model's score scale;
    the default suits the bundled demo model, which stays over-confident on a wrong object (scores
    0.8-0.95 there, above 0.99 on the target on the generated scenes: :data:`DEMO_MODEL_HYSTERESIS`);
    a model whose score falls when the target is gone (the authors' ``transt.pth``) wants lower ones,
    e.g. the node's default ``Hysteresis()`` (0.3, 0.5, 5 frames).
    ``growth``: search side factor per LOST frame; ``max_search_scale``: bound of the growing side,
    in anchor sides; ``max_tiles``: crops of the whole-frame search per frame (bounds its cost);
    ``tile_overlap``: fraction of a tile side shared by neighbouring tiles.
    ``colour_margin``: how much more a candidate's colour must match the target's than the local
    answer's (Bhattacharyya coefficients in [0, 1]; -1 turns the check off); ``confirm``: a candidate
    is taken only when found again on the next LOST frame (one more crop).
    Chosen on generated scenes of seeds other than the evaluation's (``benchmarks/reacquire.py``).
    """

    hysteresis: Hysteresis = DEMO_MODEL_HYSTERESIS
    growth: float = 1.5
    max_search_scale: float = 3.0
    max_tiles: int = 9
    tile_overlap: float = 0.5
    colour_margin: float = 0.2
    confirm: bool = True

    def __post_init__(self):
        if self.growth < 1.0 or self.max_search_scale < 1.0:
            raise ValueError(f'growth and max_search_scale must be at least 1, got {self.growth}, '
                             f'{self.max_search_scale}')
        if self.max_tiles < 1:
            raise ValueError(f'max_tiles must be at least 1, got {self.max_tiles}')
        if not 0.0 <= self.tile_overlap < 1.0:
            raise ValueError(f'tile_overlap must be in [0, 1), got {self.tile_overlap}')
        if not -1.0 <= self.colour_margin <= 1.0:
            raise ValueError(f'colour_margin must be in [-1, 1], got {self.colour_margin}')

    @property
    def growing_steps(self) -> int:
        """LOST frames of the growing phase (before the tiles)."""
        if self.growth <= 1.0:
            return 0
        return int(math.floor(math.log(self.max_search_scale) / math.log(self.growth) + 1e-9))


def reacquire_params(value: bool | ReacquireParams | None) -> ReacquireParams | None:
    """``Tracker(reacquire=...)``'s value as parameters: True the defaults, False/None off."""
    if isinstance(value, ReacquireParams):
        return value
    return ReacquireParams() if value else None


@dataclass
class LostSearch:
    """One target's re-acquisition state.

    ``good_size``: (w, h) pixels at the last confident step (score >= lost_threshold while
    TRACKING), None before the first; ``lost``, ``low_count``: the hysteresis of a ``Tracker``'s
    own targets (the node's registry keeps its own and reports it through :meth:`update`);
    ``steps``: wider searches since the target became LOST (0 while TRACKING); ``colour``: the
    target's :func:`colour_model`, taken once, from its box before its first step (None before, and
    while that box holds no pixels of the frame: no candidate passes the colour check then);
    ``pending``: the centre (x, y) of a candidate awaiting its confirmation on the next LOST frame.
    """

    good_size: np.ndarray | None = None
    lost: bool = False
    low_count: int = 0
    steps: int = 0
    colour: np.ndarray | None = None
    pending: tuple[float, float] | None = None

    def update(self, lost: bool, score: float, size: np.ndarray, lost_threshold: float) -> None:
        """After a frame the hysteresis judged ``lost`` or not: remember a confident size; a target
        found again starts its next search from the beginning."""
        self.lost = lost
        if not lost:
            self.steps, self.pending = 0, None
            if score >= lost_threshold:
                self.good_size = np.array(size, dtype=float)

    def remember_colour(self, frame: np.ndarray, center, size) -> None:
        """Take the target's colour model from the box at ``center`` of ``size`` in ``frame``, once."""
        if self.colour is None:
            self.colour = colour_model(frame, (center[0] - size[0] / 2, center[1] - size[1] / 2, size[0], size[1]))

    def looks_like(self, frame: np.ndarray, box) -> float:
        """:func:`colour_similarity` of ``box`` (x, y, w, h) in ``frame`` to the target's colours."""
        return colour_similarity(self.colour, frame, box)

    def observe(self, score: float, size: np.ndarray, hysteresis: Hysteresis) -> None:
        """One frame of the hysteresis (:func:`~.lost_state.next_state`), then :meth:`update`."""
        state, self.low_count = next_state(LOST if self.lost else TRACKING, score, self.low_count,
                                           hysteresis.lost_threshold, hysteresis.recover_threshold,
                                           hysteresis.lost_frames)
        self.update(state == LOST, score, size, hysteresis.lost_threshold)


@dataclass(frozen=True)
class SearchCrop:
    """A square crop of the frame: ``center`` (x, y) and ``side`` in pixels."""

    center: tuple[float, float]
    side: int


@dataclass(frozen=True)
class Candidate:
    """The best cell of the wider crops: raw target probability, box (cx, cy, w, h) in pixels (not clipped)."""

    score: float
    box: tuple[float, float, float, float]


def axis_centres(length: int, side: int, overlap: float) -> np.ndarray:
    """Tile centres along one image axis of ``length`` pixels: the first and last tiles touch the
    borders, neighbours at most ``(1 - overlap) * side`` apart; one centred tile when ``side >= length``."""
    if side >= length:
        return np.array([length / 2])
    stride = max(1.0, (1.0 - overlap) * side)
    count = math.ceil((length - side) / stride) + 1
    return np.linspace(side / 2, length - side / 2, count)


def frame_tiles(width: int, height: int, side: int, overlap: float) -> list[SearchCrop]:
    """Crops of ``side`` pixels covering a ``width`` x ``height`` frame, row-major."""
    return [SearchCrop((float(x), float(y)), int(side))
            for y in axis_centres(height, side, overlap) for x in axis_centres(width, side, overlap)]


def tile_turn(tiles: list[SearchCrop], turn: int, max_tiles: int) -> list[SearchCrop]:
    """The ``turn``-th share of ``tiles`` (at most ``max_tiles``), interleaved so that each share
    spans the frame; the shares cycle over every tile."""
    shares = math.ceil(len(tiles) / max_tiles)
    return tiles[turn % shares::shares]


def wide_crops(params: ReacquireParams, step: int, center, anchor_side: int, width: int, height: int
               ) -> list[SearchCrop]:
    """The wider crops of LOST frame ``step`` (1, 2, ...) of a target at ``center`` whose anchor
    search side is ``anchor_side`` pixels, in a ``width`` x ``height`` frame: one growing crop, or
    at most ``max_tiles`` tiles."""
    if step <= params.growing_steps:
        side = int(math.ceil(anchor_side * params.growth ** step))
        return [SearchCrop((float(center[0]), float(center[1])), side)]
    tiles = frame_tiles(width, height, anchor_side, params.tile_overlap)
    return tile_turn(tiles, step - params.growing_steps - 1, params.max_tiles)


def best_candidate(scores: np.ndarray, boxes: np.ndarray, crops: list[SearchCrop],
                   searched: SearchCrop | None = None) -> Candidate | None:
    """The best cell of ``crops`` by raw score (no window penalty), leaving out the cells whose box
    centre lies in ``searched`` (the local crop: there the local step's motion prior decides); None
    when every cell is left out.

    ``scores`` (n, cells): target probabilities; ``boxes`` (n, cells, 4): normalised (cx, cy, w, h)
    in each crop, as the network answers them.
    """
    sides = np.array([crop.side for crop in crops], dtype=np.float64)[:, None]
    corners = np.array([crop.center for crop in crops], dtype=np.float64) - sides / 2
    decoded = np.asarray(boxes, dtype=np.float64) * sides[..., None]
    decoded[..., :2] += corners[:, None, :]
    candidates = np.asarray(scores, dtype=np.float64).copy()
    if searched is not None:
        inside = np.all(np.abs(decoded[..., :2] - np.asarray(searched.center)) < searched.side / 2, axis=-1)
        candidates[inside] = -np.inf
    row, cell = np.unravel_index(int(np.argmax(candidates)), candidates.shape)
    if not np.isfinite(candidates[row, cell]):
        return None
    return Candidate(float(scores[row, cell]), tuple(float(v) for v in decoded[row, cell]))


COLOUR_BINS = (16, 8)
"""Hue and saturation bins of :func:`colour_model` (no value channel: brightness changes)."""


def colour_model(frame: np.ndarray, box) -> np.ndarray | None:
    """The hue-saturation histogram (:data:`COLOUR_BINS`, summing to 1) of the pixels of ``box``
    (x, y, w, h) in the RGB ``frame``, clipped to it; None when less than 2x2 pixels remain."""
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None
    height, width = frame.shape[:2]
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    histogram = cv2.calcHist([hsv], [0, 1], None, list(COLOUR_BINS), [0, 180, 0, 256]).ravel()
    return histogram / histogram.sum()


def colour_similarity(model: np.ndarray | None, frame: np.ndarray, box) -> float:
    """Bhattacharyya coefficient of ``model`` and ``box``'s :func:`colour_model` in ``frame``: 1 for the
    same colours, 0 for disjoint ones (and when either is missing)."""
    other = colour_model(frame, box)
    if model is None or other is None:
        return 0.0
    return float(np.sum(np.sqrt(model * other)))
