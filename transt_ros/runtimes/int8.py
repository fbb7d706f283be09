"""int8 post-training quantisation of the per-frame step with NNCF, for the OpenVINO backend.

``quantize_track_step(folder, samples)`` reads the exported ``onnx/track.onnx`` of a weights folder
(``model_cache.py``), quantises it with NNCF on ``samples`` (inputs of the per-frame step: ``pos``,
``attended``, ``search`` as the tracker feeds them; ``transt_ros.deploy.calibration`` makes them from
generated scenes) and stores the result as OpenVINO IR in ``<folder>/openvino_int8/``. The template step
stays float (it runs once per target).
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .backends import require

INT8_FOLDER = 'openvino_int8'


def int8_model_path(folder: Path) -> Path:
    return Path(folder) / INT8_FOLDER / 'track.xml'


def quantize_track_step(folder: Path, samples: Sequence[dict[str, np.ndarray]]) -> tuple[Path, float]:
    """Quantise ``<folder>/onnx/track.onnx`` on ``samples``; returns (the IR path, seconds taken)."""
    if not samples:
        raise ValueError('int8 calibration needs at least one sample')
    ov, nncf = require('openvino'), require('nncf')
    started = time.perf_counter()
    network = ov.Core().read_model(str(Path(folder) / 'onnx' / 'track.onnx'))
    quantized = nncf.quantize(network, nncf.Dataset(list(samples)), subset_size=len(samples),
                              model_type=nncf.ModelType.TRANSFORMER)
    staging = Path(folder) / f'.{INT8_FOLDER}.{os.getpid()}'
    shutil.rmtree(staging, ignore_errors=True)
    ov.save_model(quantized, str(staging / 'track.xml'))
    target = Path(folder) / INT8_FOLDER
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # readers see the whole IR or none
    return int8_model_path(folder), time.perf_counter() - started
