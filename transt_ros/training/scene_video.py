"""Generated videos with what real video does to a tracked object (the ``mixed`` and ``hard`` presets).

A video is a pure function of ``(seed, index)`` and the set of enabled effects: every random
parameter is drawn in a fixed order whether its effect is on or not, so turning one effect off
changes only what that effect does. Layers, back to front: a background photograph, clutter
objects, distractors behind the target, the target, distractors and an occluder in front. Each
layer is a texture (a photograph cut or a procedural pattern) with a shape mask, placed in the
world by a similarity transform (position, rotation, scale), then seen through the camera
homography of the frame (zoom, shake, perspective tilt); blur, deformation and illumination
are applied as the frame is rendered.

Effects (:data:`EFFECTS`): ``motion_blur`` (fast motion, each layer smeared along its image
motion, the background along the camera's), ``rotation`` (in-plane), ``zoom`` (camera zoom and a
larger scale change of the target), ``occlusion`` (an occluder as large as or larger than the
target crosses it: partial, then full occlusion), ``out_of_view`` (the target leaves the frame
about mid-video and comes back), ``distractors`` (copies of the target's texture cross it, in
front or behind), ``illumination``, ``camera_shake``, ``perspective``, ``deformation`` (non-rigid
bending and squash/stretch) and ``low_texture`` (a flat or washed-out target).

Ground truth: the box of frame ``t`` is the axis-aligned bounding box of the target's silhouette
(its shape mask after deformation, rotation, scale and camera, before blur; the parts hidden by
layers in front included) clipped to the frame, in pixel-edge coordinates. The target is
*absent* (box NaN, not visible) when less than :data:`MIN_VISIBLE_FRACTION` of its silhouette is
visible: outside the frame or under a layer in front. Evaluation skips such frames, as the
benchmarks' absent / full-occlusion flags do.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from .scene_effects import (
    apply_gain,
    apply_homography,
    camera_matrix,
    deform,
    deformation_maps,
    illumination_gain,
    motion_blur,
)
from .scene_textures import PROCEDURAL_KINDS, low_texture, photo_cut, photos, procedural_texture, shape_mask

EFFECTS = ('motion_blur', 'rotation', 'zoom', 'occlusion', 'out_of_view', 'distractors', 'illumination',
           'camera_shake', 'perspective', 'deformation', 'low_texture')
MIN_VISIBLE_FRACTION = 0.1
"""Below this visible fraction of its silhouette the target counts as absent (fully occluded/out of view)."""
ASSET_CACHE_SIZE = 32


class Periodic(NamedTuple):
    """``amplitude * sin(2 pi t / period + phase)`` (:func:`.scene_effects.periodic`); array fields: a sum
    of components."""

    amplitude: float | np.ndarray
    period: float | np.ndarray
    phase: float | np.ndarray


class Tilt(NamedTuple):
    """Camera perspective tilt: x and y projective amplitudes (1/px) of one sine."""

    x_amplitude: float
    y_amplitude: float
    period: float
    phase: float


class Wiggle(NamedTuple):
    """A slow sinusoidal offset (pixels) added to a layer's path."""

    x_amplitude: float
    y_amplitude: float
    period: float
    phase: float


class Rotation(NamedTuple):
    """In-plane angle (radians) at frame t:
    ``angle + spin * t + wobble * sin(2 pi t / wobble_period + wobble_phase)``."""

    angle: float
    spin: float
    wobble: float
    wobble_period: float
    wobble_phase: float


class Deformation(NamedTuple):
    """Non-rigid bending and squash/stretch of a layer."""

    bend: float
    """Bend amplitude (fraction of the side)."""
    wavelength: float
    speed: float
    """Phase speed of the bend per frame."""
    squash: float
    """Log-amplitude of the squash/stretch."""
    squash_period: float


class ColourDrift(NamedTuple):
    """Per-channel log-gain amplitudes and their phase (the period is the brightness drift's)."""

    red: float
    green: float
    blue: float
    phase: float


class LightBand(NamedTuple):
    """A soft band of light and shade sweeping across the frame."""

    strength: float
    direction: float
    """Radians."""
    speed: float
    """Frames^-1."""
    phase: float


class Illumination(NamedTuple):
    """The arguments of :func:`.scene_effects.illumination_gain` after ``t``."""

    drift: Periodic
    """Log-gain of the overall brightness."""
    colour: ColourDrift
    light: LightBand


class PhotoView(NamedTuple):
    """Where the background camera looks in its photo: fractions of the free room and a zoom."""

    u: float
    v: float
    zoom: float


class Background(NamedTuple):
    photo: int
    """Index into :func:`.scene_textures.photos`."""
    view: PhotoView
    pan: tuple[float, float]
    """Change of ``view.u``, ``view.v`` per frame."""


@dataclass(frozen=True)
class TextureRecipe:
    """How a layer's texture is made (:meth:`SceneVideos._texture`), one shape for every source.

    ``source``: ``'photo'`` (a cut of photo ``photo``, or of a random one when -1; the most
    contrasted of a few cuts when ``textured``, else the least; washed out when ``low``),
    ``'procedural'`` (pattern ``kind`` of :data:`.scene_textures.PROCEDURAL_KINDS`) or ``'target'``
    (the target's texture times ``tint``: a look-alike). ``seed`` seeds the texture's own generator.
    """

    source: str
    seed: int = 0
    kind: str = ''
    photo: int = -1
    textured: bool = True
    low: bool = False
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


NO_WIGGLE = Wiggle(0.0, 0.0, 50.0, 0.0)
NO_SCALE_CHANGE = Periodic(0.0, 100.0, 0.0)
NO_ROTATION = Rotation(0.0, 0.0, 0.0, 60.0, 0.0)
NO_DEFORMATION = Deformation(0.0, 1.0, 0.0, 0.0, 30.0)


@dataclass
class Motion:
    """Centre of a layer in world pixels at frame ``t``.

    ``bounce``: (u, v) = ``start + velocity * t`` folded into [-margin, 1 + margin] (a bounce off
    walls ``margin`` beyond the frame), mapped onto the free range of the frame; ``cross``: a
    straight line through ``anchor`` at ``t_cross``. Both add a slow sinusoidal ``wiggle``.
    """

    kind: str
    start: tuple[float, float] = (0.5, 0.5)
    velocity: tuple[float, float] = (0.0, 0.0)
    margin: float = 0.0
    anchor: tuple[float, float] = (0.0, 0.0)
    t_cross: float = 0.0
    wiggle: Wiggle = NO_WIGGLE

    def centre(self, t: float, size: tuple[float, float], frame_size: tuple[int, int]) -> np.ndarray:
        ax, ay, period, phase = self.wiggle
        angle = 2 * np.pi * t / period + phase
        wiggle = np.array([ax * math.sin(angle), ay * math.cos(angle)])
        if self.kind == 'cross':
            return np.asarray(self.anchor) + np.asarray(self.velocity) * (t - self.t_cross) + wiggle
        span = 1 + 2 * self.margin
        centre = []
        for axis in range(2):
            s = (self.start[axis] + self.margin) / span + self.velocity[axis] * t / span
            s = s % 2.0
            u = -self.margin + span * (2.0 - s if s > 1.0 else s)
            centre.append(size[axis] / 2 + u * (frame_size[axis] - size[axis]))
        return np.array(centre) + wiggle


@dataclass
class Layer:
    texture: TextureRecipe
    shape: str
    size: tuple[float, float]
    motion: Motion
    scale: Periodic = NO_SCALE_CHANGE
    """Log-scale change."""
    rotation: Rotation = NO_ROTATION
    deformation: Deformation = NO_DEFORMATION
    seed: int = 0

    def texture_size(self) -> tuple[int, int]:
        """Texture pixels: 1.25 x the layer's size (longest side 32..128)."""
        longest = max(self.size)
        factor = min(max(1.25 * longest, 32.0), 128.0) / longest
        return max(8, round(self.size[0] * factor)), max(8, round(self.size[1] * factor))


@dataclass
class SceneVideo:
    enabled: frozenset
    background: Background
    camera: dict
    """Keyword arguments of :func:`.scene_effects.camera_matrix`: ``zoom`` (Periodic), ``shake`` (two
    Periodic, x and y), ``roll`` (Periodic), ``tilt`` (Tilt), those of the enabled effects."""
    illumination: Illumination | None
    exposure: float
    behind: list[Layer] = field(default_factory=list)
    target: Layer | None = None
    front: list[Layer] = field(default_factory=list)


@dataclass
class _Target:
    """The target layer and its size (square root of the area) before the aspect ratio, which the
    other layers are drawn relative to."""

    layer: Layer
    size: float


@dataclass
class _Asset:
    texture: np.ndarray
    mask: np.ndarray


@dataclass
class _Warped:
    x: int
    y: int
    texture: np.ndarray | None
    mask: np.ndarray


def _fold(value: float) -> float:
    """Triangle wave folding any real into [0, 1] (a bounce off both walls)."""
    value %= 2.0
    return 2.0 - value if value > 1.0 else value


class SceneVideos:
    """The renderer behind ``SyntheticVideos(preset='mixed'|'hard')``.

    ``effect_probability``: chance of each effect in ``effects`` per video (1 for ``hard``).
    """

    def __init__(self, num_videos: int, frames_per_video: int, frame_size: tuple[int, int], seed: int,
                 object_sizes: tuple[float, float], effects=EFFECTS, effect_probability: float = 1.0,
                 max_clutter: int = 2):
        unknown = sorted(set(effects) - set(EFFECTS))
        if unknown:
            raise ValueError(f'unknown scene effects {unknown}; known: {list(EFFECTS)}')
        if not 0.0 <= effect_probability <= 1.0:
            raise ValueError(f'effect_probability must be in [0, 1], got {effect_probability}')
        self.num_videos, self.frames_per_video = num_videos, frames_per_video
        self.frame_size = frame_size
        self.seed = seed
        self.object_sizes = object_sizes
        self.effects = frozenset(effects)
        self.effect_probability = effect_probability
        self.max_clutter = max_clutter
        self._videos: dict[int, SceneVideo] = {}
        self._assets: OrderedDict = OrderedDict()
        self._states: OrderedDict = OrderedDict()

    # ----------------------------------------------------------------- parameters
    def video(self, index: int) -> SceneVideo:
        if index not in self._videos:
            self._videos[index] = self._random_video(np.random.default_rng([self.seed, index]))
        return self._videos[index]

    def _random_video(self, rng: np.random.Generator) -> SceneVideo:
        """Every random parameter of one video (no pixels), drawn from ``rng`` in a fixed order: the
        effects, camera and light, background, target, clutter, look-alikes, occluder. Each helper draws
        the same values whether its effect is on or not (see the module docstring); do not reorder."""
        on = self._random_effects(rng)
        camera, illumination, exposure = self._random_camera_and_light(rng, on)
        background = self._random_background(rng)
        target = self._random_target(rng, on)
        behind = self._random_clutter(rng, target.size)
        front: list[Layer] = []
        for _ in range(2):
            lookalike, in_front = self._random_lookalike(rng, on, target)
            if on['distractors'] and (len(front) + len(behind)) < 8:
                (front if in_front else behind).append(lookalike)
        occluder = self._random_occluder(rng, target)
        if on['occlusion']:
            front.append(occluder)
        return SceneVideo(frozenset(name for name, value in on.items() if value), background, camera,
                          illumination if on['illumination'] else None, exposure if on['motion_blur'] else 0.0,
                          behind, target.layer, front)

    def _random_effects(self, rng: np.random.Generator) -> dict[str, bool]:
        """Each of :data:`EFFECTS` on with ``effect_probability`` (one draw each, enabled or not)."""
        return {name: bool(rng.random() < self.effect_probability) and name in self.effects for name in EFFECTS}

    def _random_camera_and_light(self, rng: np.random.Generator, on: dict[str, bool]
                                 ) -> tuple[dict, Illumination, float]:
        """The camera's ``camera_matrix`` arguments (those of the enabled effects), the illumination and
        the exposure time (motion blur)."""
        width = self.frame_size[0]
        zoom = Periodic(rng.uniform(0.1, 0.3), rng.uniform(60, 200), rng.uniform(0, 2 * np.pi))
        shake = tuple(Periodic(rng.uniform([2.0, 0.8, 0.5], [6.0, 2.5, 1.5]),
                               rng.uniform([25, 3.1, 2.1], [60, 4.9, 2.9]), rng.uniform(0, 2 * np.pi, 3))
                      for _ in range(2))
        roll = Periodic(rng.uniform([0.005, 0.002], [0.03, 0.01]), rng.uniform([30, 2.3], [80, 4.3]),
                        rng.uniform(0, 2 * np.pi, 2))
        tilt = Tilt(rng.uniform(-1, 1) * rng.uniform(3e-4, 9e-4) * 320 / width,
                    rng.uniform(-1, 1) * rng.uniform(3e-4, 9e-4) * 320 / width, rng.uniform(80, 240),
                    rng.uniform(0, 2 * np.pi))
        camera = {}
        if on['zoom']:
            camera['zoom'] = zoom
        if on['camera_shake']:
            camera['shake'], camera['roll'] = shake, roll
        if on['perspective']:
            camera['tilt'] = tilt
        illumination = Illumination(
            Periodic(rng.uniform(0.15, 0.35), rng.uniform(40, 150), rng.uniform(0, 2 * np.pi)),
            ColourDrift(*rng.uniform(-0.12, 0.12, 3), rng.uniform(0, 2 * np.pi)),
            LightBand(rng.uniform(0.15, 0.35), rng.uniform(0, 2 * np.pi), rng.uniform(0.004, 0.015), rng.uniform(0, 1)))
        exposure = rng.uniform(0.5, 1.0)
        return camera, illumination, exposure

    @staticmethod
    def _random_background(rng: np.random.Generator) -> Background:
        photo = int(rng.integers(len(photos())))
        return Background(photo, PhotoView(rng.random(), rng.random(), rng.uniform(0.4, 1.0)),
                          (rng.uniform(-0.003, 0.003), rng.uniform(-0.003, 0.003)))

    def _random_target(self, rng: np.random.Generator, on: dict[str, bool]) -> _Target:
        """The target: size, path (leaving the view with ``out_of_view``), scale change, rotation,
        deformation, shape and texture."""
        size = rng.uniform(*self.object_sizes)
        aspect = math.exp(rng.uniform(-0.7, 0.7))
        target_size = (size * math.sqrt(aspect), size / math.sqrt(aspect))
        motion = self._random_target_motion(rng, on, size)
        scale_amplitude = rng.uniform(0.3, 0.6) if on['zoom'] else rng.uniform(0.0, 0.15)
        scale = Periodic(scale_amplitude, rng.uniform(40, 160), rng.uniform(0, 2 * np.pi))
        rotation = Rotation(rng.uniform(-0.5, 0.5), rng.uniform(-0.04, 0.04), rng.uniform(0.1, 0.6),
                            rng.uniform(30, 90), rng.uniform(0, 2 * np.pi))
        if not on['rotation']:
            rotation = NO_ROTATION
        deformation = Deformation(rng.uniform(0.03, 0.08), rng.uniform(0.7, 1.5), rng.uniform(0.1, 0.3),
                                  rng.uniform(0.1, 0.25), rng.uniform(15, 40))
        if not on['deformation']:
            deformation = NO_DEFORMATION
        shape = ('rect', 'ellipse', 'blob')[int(rng.choice(3, p=[0.4, 0.3, 0.3]))]
        texture = self._texture_recipe(rng, on['low_texture'])
        layer = Layer(texture, shape, target_size, motion, scale, rotation, deformation, seed=int(rng.integers(2**31)))
        return _Target(layer, size)

    def _random_target_motion(self, rng: np.random.Generator, on: dict[str, bool], size: float) -> Motion:
        """A bounce, faster with ``motion_blur``; with ``out_of_view`` it leaves the frame about mid-video
        through a wall ``margin`` beyond it (and comes back)."""
        fast = rng.uniform(1.5, 3.0) if on['motion_blur'] else 1.0
        speed = rng.uniform(0.003, 0.02) * fast
        angle = rng.uniform(0, 2 * np.pi)
        velocity = [speed * math.cos(angle), speed * math.sin(angle)]
        start = [rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85)]
        margin = rng.uniform(0.15, 0.3)
        exit_axis = int(rng.integers(2))
        exit_time = rng.uniform(0.3, 0.55) * self.frames_per_video
        toward_low = start[exit_axis] < 0.5
        if on['out_of_view']:
            distance = (start[exit_axis] + margin) if toward_low else (1 + margin - start[exit_axis])
            velocity[exit_axis] = distance / exit_time * (-1 if toward_low else 1)
        wiggle = Wiggle(rng.uniform(0, 0.15) * size, rng.uniform(0, 0.15) * size, rng.uniform(20, 60),
                        rng.uniform(0, 6.3))
        return Motion('bounce', tuple(start), tuple(velocity), margin if on['out_of_view'] else 0.0, wiggle=wiggle)

    def _random_clutter(self, rng: np.random.Generator, size: float) -> list[Layer]:
        """0 .. ``max_clutter`` objects bouncing behind the target."""
        behind = []
        for _ in range(int(rng.integers(0, self.max_clutter + 1))):
            clutter_size = size * rng.uniform(0.6, 1.4)
            clutter_aspect = math.exp(rng.uniform(-0.7, 0.7))
            heading = rng.uniform(0, 2 * np.pi)
            clutter_speed = rng.uniform(0.003, 0.02)
            behind.append(Layer(self._texture_recipe(rng, False), ('rect', 'ellipse')[int(rng.integers(2))],
                                (clutter_size * math.sqrt(clutter_aspect), clutter_size / math.sqrt(clutter_aspect)),
                                Motion('bounce', (rng.random(), rng.random()),
                                       (clutter_speed * math.cos(heading), clutter_speed * math.sin(heading))),
                                seed=int(rng.integers(2**31))))
        return behind

    def _centre_of(self, target: Layer, t: float) -> np.ndarray:
        return target.motion.centre(t, target.size, self.frame_size)

    def _random_lookalike(self, rng: np.random.Generator, on: dict[str, bool], target: _Target
                          ) -> tuple[Layer, bool]:
        """A tinted copy of the target crossing its path near a random frame, and whether it passes in
        front (the caller keeps it only with ``distractors``)."""
        t_cross = rng.uniform(0.15, 0.85) * self.frames_per_video
        heading = rng.uniform(0, 2 * np.pi)
        cross_speed = rng.uniform(1.0, 4.0)
        offset = rng.uniform(-0.3, 0.3) * target.size
        anchor = self._centre_of(target.layer, t_cross) + offset * np.array([-math.sin(heading), math.cos(heading)])
        tint = tuple(rng.uniform(0.9, 1.1, 3))
        crossing = (cross_speed * math.cos(heading), cross_speed * math.sin(heading))
        lookalike = Layer(TextureRecipe('target', tint=tint), target.layer.shape,
                          tuple(s * rng.uniform(0.8, 1.2) for s in target.layer.size),
                          Motion('cross', velocity=crossing, anchor=tuple(anchor), t_cross=t_cross),
                          rotation=Rotation(rng.uniform(-0.5, 0.5) if on['rotation'] else 0.0, 0.0, 0.0, 60.0, 0.0),
                          seed=int(rng.integers(2**31)))
        return lookalike, rng.random() < 0.3

    def _random_occluder(self, rng: np.random.Generator, target: _Target) -> Layer:
        """An object as large as the target or larger crossing it (the caller keeps it only with ``occlusion``)."""
        size = target.size
        occluder_size = size * rng.uniform(1.0, 1.8)
        t_occlusion = rng.uniform(0.25, 0.75) * self.frames_per_video
        duration = rng.uniform(12, 30)
        heading = rng.uniform(0, 2 * np.pi)
        occluder_speed = (occluder_size + size) / duration
        return Layer(self._texture_recipe(rng, False), ('rect', 'blob')[int(rng.integers(2))],
                     (occluder_size * rng.uniform(0.8, 1.25), occluder_size * rng.uniform(0.8, 1.25)),
                     Motion('cross', velocity=(occluder_speed * math.cos(heading), occluder_speed * math.sin(heading)),
                            anchor=tuple(self._centre_of(target.layer, t_occlusion)), t_cross=t_occlusion),
                     seed=int(rng.integers(2**31)))

    @staticmethod
    def _texture_recipe(rng: np.random.Generator, low: bool) -> TextureRecipe:
        """A photo cut (textured) or a procedural pattern; with ``low``, a washed-out photo cut or a flat
        pattern. Draws the same four values either way."""
        procedural = rng.random() < 0.25
        kind = PROCEDURAL_KINDS[int(rng.integers(len(PROCEDURAL_KINDS) - 1))]  # 'flat' only when low
        seed = int(rng.integers(2**31))
        flat = rng.random() < 0.5
        if low:
            return TextureRecipe('procedural', seed, kind='flat') if flat else \
                TextureRecipe('photo', seed, textured=False, low=True)
        return TextureRecipe('procedural', seed, kind=kind) if procedural else TextureRecipe('photo', seed)

    # ----------------------------------------------------------------- assets
    def _texture(self, recipe: TextureRecipe, size: tuple[int, int], target: _Asset | None) -> np.ndarray:
        width, height = size
        if recipe.source == 'target':
            return np.clip(cv2.resize(target.texture, size, interpolation=cv2.INTER_AREA).astype(np.float32)
                           * np.float32(recipe.tint), 0, 255).astype(np.uint8)
        if recipe.source == 'procedural':
            return procedural_texture(np.random.default_rng(recipe.seed), height, width, recipe.kind)
        rng = np.random.default_rng(recipe.seed)
        image = photo_cut(rng, height, width, recipe.textured, None if recipe.photo < 0 else recipe.photo)
        return low_texture(image, rng) if recipe.low else image

    def _assets_of(self, index: int) -> dict:
        if index in self._assets:
            self._assets.move_to_end(index)
            return self._assets[index]
        video = self.video(index)
        assets = {}
        layers = [('target', video.target)] + [(('behind', i), layer) for i, layer in enumerate(video.behind)] \
            + [(('front', i), layer) for i, layer in enumerate(video.front)]
        for key, layer in layers:
            size = layer.texture_size()
            texture = self._texture(layer.texture, size, assets.get('target'))
            mask = shape_mask(np.random.default_rng(layer.seed), size[1], size[0], layer.shape)
            assets[key] = _Asset(texture, mask)
        self._assets[index] = assets
        if len(self._assets) > ASSET_CACHE_SIZE:
            self._assets.popitem(last=False)
        return assets

    # ----------------------------------------------------------------- geometry
    def camera(self, video: SceneVideo, t: float) -> np.ndarray:
        width, height = self.frame_size
        return camera_matrix(width, height, t, **video.camera)

    def layer_matrix(self, layer: Layer, t: float, camera: np.ndarray) -> np.ndarray:
        """3x3 texture pixel centres -> image pixel centres at frame ``t``."""
        tw, th = layer.texture_size()
        amplitude, period, phase = layer.scale
        squash = layer.deformation.squash * math.sin(2 * np.pi * t / layer.deformation.squash_period)
        scale = math.exp(amplitude * math.sin(2 * np.pi * t / period + phase))
        width, height = layer.size[0] * scale * math.exp(squash), layer.size[1] * scale * math.exp(-squash)
        angle0, spin, wobble, wobble_period, wobble_phase = layer.rotation
        angle = angle0 + spin * t + wobble * math.sin(2 * np.pi * t / wobble_period + wobble_phase)
        cx, cy = layer.motion.centre(t, layer.size, self.frame_size)
        sx, sy = width / tw, height / th
        cos, sin = math.cos(angle), math.sin(angle)
        ox, oy = (tw - 1) / 2, (th - 1) / 2
        placement = np.array([[cos * sx, -sin * sy, cx - cos * sx * ox + sin * sy * oy],
                              [sin * sx, cos * sy, cy - sin * sx * ox - cos * sy * oy],
                              [0.0, 0.0, 1.0]])
        return camera @ placement

    def _deformed(self, layer: Layer, asset: _Asset, t: float, with_texture: bool):
        amplitude, wavelength, speed = layer.deformation.bend, layer.deformation.wavelength, layer.deformation.speed
        if amplitude == 0:
            return (asset.texture if with_texture else None), asset.mask
        maps = deformation_maps(asset.mask.shape[0], asset.mask.shape[1], amplitude, wavelength, speed * t)
        return (deform(asset.texture, maps) if with_texture else None), deform(asset.mask, maps)

    def _warp(self, matrix, texture, mask, clip: bool, pad: int = 0) -> _Warped | None:
        th, tw = mask.shape
        corners = apply_homography(matrix, [(-0.5, -0.5), (tw - 0.5, -0.5), (tw - 0.5, th - 0.5), (-0.5, th - 0.5)])
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - pad
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1 + pad
        if clip:
            width, height = self.frame_size
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) > 16 * self.frame_size[0] * self.frame_size[1]:
            return None
        shifted = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]]) @ matrix
        size = (int(x1 - x0), int(y1 - y0))
        warped_mask = cv2.warpPerspective(mask, shifted, size, flags=cv2.INTER_LINEAR, borderValue=0)
        warped_texture = None if texture is None else cv2.warpPerspective(
            texture, shifted, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return _Warped(int(x0), int(y0), warped_texture, warped_mask)

    @staticmethod
    def _may_overlap(matrix, layer: Layer, region) -> bool:
        tw, th = layer.texture_size()
        corners = apply_homography(matrix, [(-0.5, -0.5), (tw - 0.5, -0.5), (tw - 0.5, th - 0.5), (-0.5, th - 0.5)])
        (lx0, ly0), (lx1, ly1) = corners.min(axis=0), corners.max(axis=0)
        x0, y0, x1, y1 = region
        return lx1 >= x0 - 1 and lx0 <= x1 + 1 and ly1 >= y0 - 1 and ly0 <= y1 + 1

    def target_state(self, index: int, t: int) -> tuple[np.ndarray, float]:
        """(box (x, y, w, h) or NaNs, visible fraction) of the target at frame ``t``."""
        key = (index, t)
        if key in self._states:
            return self._states[key]
        video, assets = self.video(index), self._assets_of(index)
        camera = self.camera(video, t)
        _, mask = self._deformed(video.target, assets['target'], t, False)
        whole = self._warp(self.layer_matrix(video.target, t, camera), None, mask, clip=False)
        box, fraction = np.full(4, np.nan), 0.0
        if whole is not None:
            silhouette = (whole.mask >= 128).view(np.uint8)
            total = cv2.countNonZero(silhouette)
            width, height = self.frame_size
            x0, y0 = max(whole.x, 0), max(whole.y, 0)
            x1, y1 = min(whole.x + silhouette.shape[1], width), min(whole.y + silhouette.shape[0], height)
            if total and x1 > x0 and y1 > y0:
                inside = silhouette[y0 - whole.y:y1 - whole.y, x0 - whole.x:x1 - whole.x]
                visible = inside
                for position, layer in enumerate(video.front):
                    matrix = self.layer_matrix(layer, t, camera)
                    if not self._may_overlap(matrix, layer, (x0, y0, x1, y1)):
                        continue
                    cover = self._warp(matrix, None, assets['front', position].mask, clip=True)
                    if cover is None:
                        continue
                    cx0, cy0 = max(cover.x, x0), max(cover.y, y0)
                    cx1, cy1 = min(cover.x + cover.mask.shape[1], x1), min(cover.y + cover.mask.shape[0], y1)
                    if cx1 > cx0 and cy1 > cy0:
                        if visible is inside:
                            visible = inside.copy()
                        visible[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] &= \
                            (cover.mask[cy0 - cover.y:cy1 - cover.y, cx0 - cover.x:cx1 - cover.x] < 128).view(np.uint8)
                fraction = cv2.countNonZero(visible) / total
                if fraction >= MIN_VISIBLE_FRACTION:
                    bx, by, bw, bh = cv2.boundingRect(inside)
                    box = np.array([x0 + bx, y0 + by, bw, bh], dtype=np.float64)
        self._states[key] = (box, fraction)
        if len(self._states) > 4096:
            self._states.popitem(last=False)
        return box, fraction

    def boxes(self, index: int) -> np.ndarray:
        """(frames_per_video, 4) float boxes; NaN rows where the target is absent."""
        return np.stack([self.target_state(index, t)[0] for t in range(self.frames_per_video)])

    # ----------------------------------------------------------------- rendering
    def _render_background(self, video: SceneVideo, t: int, camera: np.ndarray) -> np.ndarray:
        width, height = self.frame_size
        photo_index, view, pan = video.background
        photo = photos()[photo_index]
        side = view[2] * min(photo.shape[1] / width, photo.shape[0] / height)
        room_x, room_y = photo.shape[1] - side * width, photo.shape[0] - side * height
        x0, y0 = _fold(view[0] + pan[0] * t) * room_x, _fold(view[1] + pan[1] * t) * room_y
        photo_to_world = np.array([[1 / side, 0, -x0 / side], [0, 1 / side, -y0 / side], [0, 0, 1.0]])
        canvas = cv2.warpPerspective(photo, camera @ photo_to_world, (width, height), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT)
        if video.exposure > 0 and t > 0:
            centre = np.array([[(width - 1) / 2, (height - 1) / 2]])
            motion = (apply_homography(camera, centre) - apply_homography(self.camera(video, t - 1), centre))[0]
            canvas = motion_blur(canvas, *(motion * video.exposure))
        return canvas

    def _paste(self, canvas, video: SceneVideo, layer: Layer, asset: _Asset, t: int, camera: np.ndarray,
               hidden: bool = False) -> None:
        texture, mask = self._deformed(layer, asset, t, True)
        matrix = self.layer_matrix(layer, t, camera)
        blur = np.zeros(2)
        if video.exposure > 0 and t > 0:
            tw, th = layer.texture_size()
            centre = [((tw - 1) / 2, (th - 1) / 2)]
            previous = self.layer_matrix(layer, t - 1, self.camera(video, t - 1))
            blur = (apply_homography(matrix, centre) - apply_homography(previous, centre))[0] * video.exposure
        pad = int(math.ceil(np.hypot(*blur))) // 2 + 1
        warped = self._warp(matrix, texture, mask, clip=True, pad=pad)
        if warped is None or hidden:
            return
        piece, alpha = warped.texture, warped.mask
        if np.hypot(*blur) >= 2:
            piece, alpha = motion_blur(piece, *blur), motion_blur(alpha, *blur)
        h, w = alpha.shape
        region = canvas[warped.y:warped.y + h, warped.x:warped.x + w]
        weight = alpha.astype(np.float32)[:, :, None] * np.float32(1 / 255)
        region[:] = (region + (piece.astype(np.float32) - region) * weight + 0.5).astype(np.uint8)

    def frame(self, index: int, t: int, draw_target: bool = True) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame ``t`` of video ``index`` (``draw_target=False``: without the target)."""
        video, assets = self.video(index), self._assets_of(index)
        camera = self.camera(video, t)
        canvas = self._render_background(video, t, camera)
        for position, layer in enumerate(video.behind):
            self._paste(canvas, video, layer, assets['behind', position], t, camera)
        self._paste(canvas, video, video.target, assets['target'], t, camera, hidden=not draw_target)
        for position, layer in enumerate(video.front):
            self._paste(canvas, video, layer, assets['front', position], t, camera)
        if video.illumination is not None:
            width, height = self.frame_size
            canvas = apply_gain(canvas, illumination_gain(width, height, t, *video.illumination))
        return canvas
