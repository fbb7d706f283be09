import os
import shutil
import tempfile

import pytest
import torch

from transt_ros.checkpoint import load_model, save_checkpoint
from transt_ros.model import TransTConfig, build_transt

from .golden_helpers import golden_authors_state_dict


@pytest.fixture(scope='session')
def golden_model():
    """The authors' architecture with the golden weights, loaded as a user's transt.pth is."""
    torch.manual_seed(0)
    return load_model(golden_authors_state_dict())


@pytest.fixture(scope='session')
def light_checkpoint(tmp_path_factory):
    """A random-weight light model (resnet18, d_model 64, one fusion layer, 64/128 px crops) as a
    project checkpoint: for tests of the pipelines around the tracker, not of its accuracy."""
    path = tmp_path_factory.mktemp('model') / 'light.pth'
    save_checkpoint(path, build_transt(TransTConfig(backbone='resnet18', d_model=64, nhead=4, num_fusion_layers=1,
                                                    dim_feedforward=128, template_size=64, search_size=128)))
    return path


def pytest_configure(config):
    config.addinivalue_line('markers', 'cuda: needs a CUDA device; skipped with the reason where there is none')
    # exported/compiled models (transt_ros/runtimes/model_cache.py) of this run, shared by its tests and the
    # processes they start, never the user's ~/.cache
    if 'TRANST_CACHE_DIR' not in os.environ:
        config._transt_cache = os.environ['TRANST_CACHE_DIR'] = tempfile.mkdtemp(prefix='transt-test-cache-')


def pytest_unconfigure(config):
    cache = getattr(config, '_transt_cache', None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)
        os.environ.pop('TRANST_CACHE_DIR', None)
