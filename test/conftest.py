import pytest
import torch

from transt_ros.checkpoint import load_model

from .golden_helpers import golden_authors_state_dict


@pytest.fixture(scope='session')
def golden_model():
    """The authors' architecture with the golden weights, loaded as a user's transt.pth is."""
    torch.manual_seed(0)
    return load_model(golden_authors_state_dict())


def pytest_configure(config):
    config.addinivalue_line('markers', 'cuda: needs a CUDA device; skipped with the reason where there is none')
