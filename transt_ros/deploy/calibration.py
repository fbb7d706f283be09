"""int8 calibration data from generated scenes, and the int8 model made on demand.

The samples are the per-frame step's inputs exactly as a tracker feeds them: the fp32 PyTorch tracker
follows the ground-truth start box through ``mixed`` generated scenes (seed
:data:`~transt_ros.common.seeds.CALIBRATION_SCENE_SEED`, never trained on nor evaluated), and every
``model.track`` call it makes is recorded (template features and search crop).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..common.seeds import CALIBRATION_SCENE_SEED
from ..runtimes.int8 import int8_model_path, quantize_track_step
from ..runtimes.model_cache import exported_steps, model_folder, weights_digest
from ..tracking import Tracker
from ..tracking.tracker import prepare_model
from ..training.synthetic import SyntheticVideos

DEFAULT_SCENES, DEFAULT_FRAMES = 8, 12


class _RecordingModel:
    """A prepared model that records the inputs of every per-frame step it runs."""

    backend = 'torch'

    def __init__(self, model):
        self.model, self.config, self.samples = model, model.config, []

    def template(self, crop):
        return self.model.template(crop)

    def track(self, template, search):
        for row in range(search.shape[0]):
            self.samples.append({'pos': template.pos[row:row + 1].numpy().copy(),
                                 'attended': template.attended[row:row + 1].numpy().copy(),
                                 'search': search[row:row + 1].numpy().copy()})
        return self.model.track(template, search)


def calibration_samples(model: torch.nn.Module, scenes: int = DEFAULT_SCENES, frames: int = DEFAULT_FRAMES,
                        seed: int = CALIBRATION_SCENE_SEED) -> list[dict[str, np.ndarray]]:
    """``scenes`` x (``frames`` - 1) inputs of the per-frame step (see the module docstring)."""
    recorder = _RecordingModel(prepare_model(model, 'cpu', 'fp32', 'fast'))
    videos = SyntheticVideos(num_videos=scenes, frames_per_video=frames, seed=seed, preset='mixed')
    for index in range(scenes):
        tracker = Tracker(recorder, prepared=True)
        first_box = videos.boxes(index)[0]
        if not np.all(np.isfinite(first_box)):
            continue  # the target is absent at the start of this scene
        tracker.initialize(videos.frame(index, 0), first_box)
        for frame_id in range(1, frames):
            tracker.track(videos.frame(index, frame_id))
    return recorder.samples


def ensure_int8(model: torch.nn.Module, scenes: int = DEFAULT_SCENES, frames: int = DEFAULT_FRAMES,
                log=print) -> str:
    """Make the int8 per-frame step of ``model`` unless the cache has it; returns the weights digest."""
    digest = weights_digest(model)
    folder = model_folder(digest)
    if int8_model_path(folder).is_file():
        return digest
    exported_steps(model, digest)
    started = time.perf_counter()
    log(f'int8: calibrating on {scenes} generated scenes x {frames} frames (seed {CALIBRATION_SCENE_SEED}) ...')
    samples = calibration_samples(model, scenes, frames)
    path, seconds = quantize_track_step(folder, samples)
    log(f'int8: {len(samples)} samples, quantised in {seconds:.1f} s ({time.perf_counter() - started:.1f} s in all): '
        f'{path}')
    return digest
