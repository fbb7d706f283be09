"""The model and tracker equal the authors' implementation (reference outputs in test/data/golden)."""
import numpy as np
import pytest
import torch

from transt_ros.model import TransTConfig, build_transt
from transt_ros.model.inference import fast_inference_copy, fold_batchnorm, reference_copy
from transt_ros.model.position_encoding import sine_position_encoding
from transt_ros.tracking import Tracker

from .golden_helpers import VIDEOS, assert_tracks_golden, authors_key_rows, model_io


def test_state_dict_keys_match_the_authors_layout():
    model = build_transt()
    ours = {k.replace('backbone.body.', 'backbone.0.body.'): tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {key: tuple(shape) for key, shape, _ in authors_key_rows()}
    assert ours == theirs


@pytest.mark.parametrize('make_path', [fast_inference_copy, reference_copy], ids=['fast', 'reference'])
def test_model_outputs_equal_golden(golden_model, make_path):
    io = model_io()
    with torch.no_grad():
        out = make_path(golden_model)(template=torch.from_numpy(io['template']),
                                      search=torch.from_numpy(io['search']))
    assert out['pred_logits'].shape == (1, 1024, 2)
    assert out['pred_boxes'].shape == (1, 1024, 4)
    np.testing.assert_allclose(out['pred_logits'].numpy(), io['pred_logits'], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out['pred_boxes'].numpy(), io['pred_boxes'], atol=1e-3, rtol=0)


def test_backbone_and_position_encoding_equal_golden(golden_model):
    io = model_io()
    with torch.no_grad():
        feature = golden_model.backbone(torch.from_numpy(io['template']))
    reference = io['template_feature']
    np.testing.assert_allclose(feature.numpy(), reference, atol=1e-3 * max(1.0, np.abs(reference).max()), rtol=0)
    np.testing.assert_allclose(sine_position_encoding(16, 16, 128).numpy(), io['template_pos'], atol=1e-5)


@pytest.mark.parametrize('path,device_crop', [('fast', False), ('reference', False), ('fast', True)],
                         ids=['fast', 'reference', 'device-step'])
@pytest.mark.parametrize('name', VIDEOS)
def test_tracker_boxes_equal_golden(golden_model, name, path, device_crop):
    """The host paths and the device step (the body of the CUDA graph, run eagerly here)."""
    assert_tracks_golden(Tracker(golden_model, path=path, device_crop=device_crop), name)


def test_light_variants_build_and_run():
    config = TransTConfig(backbone='resnet18', d_model=64, nhead=4, num_fusion_layers=2, dim_feedforward=128,
                          template_size=64, search_size=128)
    model = build_transt(config).eval()
    with torch.no_grad():
        out = model(template=torch.randn(2, 3, 64, 64), search=torch.randn(2, 3, 128, 128))
    assert out['pred_logits'].shape == (2, 256, 2)
    assert out['pred_boxes'].shape == (2, 256, 4)
    assert ((out['pred_boxes'] >= 0) & (out['pred_boxes'] <= 1)).all()


def test_fast_copy_folds_every_batchnorm_and_leaves_the_original_alone(golden_model):
    keys_before = set(golden_model.state_dict())
    fast = fast_inference_copy(golden_model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert set(golden_model.state_dict()) == keys_before
    assert fold_batchnorm(build_transt(TransTConfig(backbone='resnet18')).backbone) == 1 + 2 * 6 + 2
