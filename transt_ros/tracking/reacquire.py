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
the local step and its motion prior decide) is the candidate; it replaces the local answer when it
reaches the recover threshold and beats the local score, and the target's centre and size are reset
to it (the next frame searches locally around it). While TRACKING
nothing changes: the step is the authors'.

Cost bound: a LOST target's frame is one forward of at most ``1 + max(1, max_tiles)`` crops
(growing phase: 2), on the host path (crops with OpenCV).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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
    """

    hysteresis: Hysteresis = DEMO_MODEL_HYSTERESIS
    growth: float = 1.5
    max_search_scale: float = 3.0
    max_tiles: int = 9
    tile_overlap: float = 0.5

    def __post_init__(self):
        if self.growth < 1.0 or self.max_search_scale < 1.0:
            raise ValueError(f'growth and max_search_scale must be at least 1, got {self.growth}, '
                             f'{self.max_search_scale}')
        if self.max_tiles < 1:
            raise ValueError(f'max_tiles must be at least 1, got {self.max_tiles}')
        if not 0.0 <= self.tile_overlap < 1.0:
            raise ValueError(f'tile_overlap must be in [0, 1), got {self.tile_overlap}')

    @property
    def growing_steps(self) -> int:
        """LOST frames of the growing phase (before the tiles)."""
        if self.growth <= 1.0:
            return 0
        return int(math.floor(math.log(self.max_search_scale) / math.log(self.growth) + 1e-9))


@dataclass
class LostSearch:
    """One target's re-acquisition state.

    ``good_size``: (w, h) pixels at the last confident step (score >= lost_threshold while
    TRACKING), None before the first; ``lost``, ``low_count``: the hysteresis of a ``Tracker``'s
    own targets (the node's registry keeps its own and reports it through :meth:`update`);
    ``steps``: wider searches since the target became LOST (0 while TRACKING).
    """

    good_size: np.ndarray | None = None
    lost: bool = False
    low_count: int = 0
    steps: int = 0

    def update(self, lost: bool, score: float, size: np.ndarray, lost_threshold: float) -> None:
        """After a frame the hysteresis judged ``lost`` or not: remember a confident size; a target
        found again starts its next search from the beginning."""
        self.lost = lost
        if not lost:
            self.steps = 0
            if score >= lost_threshold:
                self.good_size = np.array(size, dtype=float)

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
