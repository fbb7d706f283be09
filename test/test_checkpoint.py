"""Checkpoint formats, safety, errors and the project-format round trip."""
import os
import pickle

import numpy as np
import pytest
import torch

from transt_ros.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from transt_ros.checkpoint.convert import main as convert_main
from transt_ros.checkpoint.keys import to_authors_layout
from transt_ros.model import TransTConfig, build_transt

from .golden_helpers import GOLDEN_DIR, golden_authors_state_dict

LIGHT = TransTConfig(backbone='resnet18', d_model=64, nhead=4, num_fusion_layers=1, dim_feedforward=128,
                     template_size=64, search_size=128)


def _outputs(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    config = model.config
    z = torch.randn(1, 3, config.template_size, config.template_size, generator=generator)
    x = torch.randn(1, 3, config.search_size, config.search_size, generator=generator)
    with torch.no_grad():
        return model(template=z, search=x)


def test_ltr_training_checkpoint_reads_without_ltr():
    import importlib.util
    assert importlib.util.find_spec('ltr') is None
    checkpoint = read_checkpoint(GOLDEN_DIR / 'ltr_format_checkpoint.pth')
    assert checkpoint.source_format == 'authors-training'
    assert checkpoint.meta['net_type'] == 'TransT'
    assert len(checkpoint.state_dict) == 12
    golden = golden_authors_state_dict()
    for key, value in checkpoint.state_dict.items():
        torch.testing.assert_close(value, golden[key], rtol=0, atol=0)


def test_ltr_checkpoint_with_heads_only_is_refused_clearly():
    with pytest.raises(CheckpointError, match='not a TransT state dict|missing keys'):
        load_model(GOLDEN_DIR / 'ltr_format_checkpoint.pth')


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


@pytest.mark.parametrize('wrap', ['project', 'bare'])
def test_hostile_checkpoint_is_rejected_without_running_payload(tmp_path, wrap):
    marker = tmp_path / 'payload_ran'
    hostile = {'model': build_transt(LIGHT).state_dict(), 'config': LIGHT.to_dict(), 'meta': _Payload(marker)}
    if wrap == 'bare':
        hostile = {'weights': torch.zeros(3), 'hook': _Payload(marker)}
    path = tmp_path / 'hostile.pth'
    torch.save(hostile, path)
    with pytest.raises(CheckpointError, match='refusing'):
        load_model(path)
    assert not marker.exists()


def test_hostile_legacy_pickle_is_rejected(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'legacy.pth'
    torch.save({'net': {'a': torch.zeros(1)}, 'x': _Payload(marker)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match='posix.system|os.system|nt.system'):
        read_checkpoint(path)
    assert not marker.exists()


def test_project_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(1)
    model = build_transt(LIGHT).eval()
    path = save_checkpoint(tmp_path / 'light.pth', model, meta={'note': 'round trip'})
    loaded = load_model(path)
    assert loaded.config == LIGHT
    assert read_checkpoint(path).meta['note'] == 'round trip'
    expected, actual = _outputs(model), _outputs(loaded)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]


def test_half_checkpoint_is_smaller_and_close(tmp_path):
    torch.manual_seed(2)
    model = build_transt(LIGHT).eval()
    full = save_checkpoint(tmp_path / 'full.pth', model)
    half = save_checkpoint(tmp_path / 'half.pth', model, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_model(half)
    assert next(loaded.parameters()).dtype == torch.float32
    torch.testing.assert_close(_outputs(loaded)['pred_boxes'], _outputs(model)['pred_boxes'], atol=5e-3, rtol=0)


def test_bare_state_dicts_in_both_layouts_and_wrapper_prefixes():
    torch.manual_seed(3)
    model = build_transt(LIGHT).eval()
    reference = _outputs(model)['pred_logits']
    for state_dict in (model.state_dict(), to_authors_layout(model.state_dict()),
                       {'module.' + k: v for k, v in model.state_dict().items()}):
        loaded = load_model(state_dict, config=LIGHT)
        torch.testing.assert_close(_outputs(loaded)['pred_logits'], reference, rtol=0, atol=0)


def test_architecture_is_inferred_from_a_bare_state_dict():
    model = build_transt(TransTConfig(backbone='resnet18', d_model=64, nhead=8, num_fusion_layers=2,
                                      dim_feedforward=96))
    loaded = load_model(model.state_dict())
    assert (loaded.config.backbone, loaded.config.d_model, loaded.config.num_fusion_layers,
            loaded.config.dim_feedforward) == ('resnet18', 64, 2, 96)


def test_missing_unexpected_and_misshapen_keys_are_named():
    state_dict = dict(build_transt(LIGHT).state_dict())
    state_dict.pop('class_embed.layers.2.bias')
    state_dict['extra.weight'] = torch.zeros(1)
    state_dict['bbox_embed.layers.2.weight'] = torch.zeros(5, 64)
    with pytest.raises(CheckpointError) as error:
        load_model(state_dict, config=LIGHT)
    message = str(error.value)
    assert 'class_embed.layers.2.bias' in message
    assert 'extra.weight' in message
    assert 'bbox_embed.layers.2.weight' in message and '(5, 64)' in message


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'empty', 'missing', 'not_a_checkpoint'])
def test_damaged_files_give_clear_errors(tmp_path, damage):
    good = save_checkpoint(tmp_path / 'good.pth', build_transt(LIGHT))
    path = tmp_path / 'bad.pth'
    if damage == 'truncated':
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == 'garbage':
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif damage == 'empty':
        path.write_bytes(b'')
    elif damage == 'not_a_checkpoint':
        path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_model(path)


def test_converter_writes_project_format(tmp_path):
    source = tmp_path / 'authors.pth'
    torch.manual_seed(4)
    model = build_transt(LIGHT).eval()
    torch.save({'net': to_authors_layout(model.state_dict()), 'epoch': 3}, source)
    target = tmp_path / 'project.pth'
    assert convert_main([str(source), str(target), '--nhead', '4', '--template-size', '64',
                         '--search-size', '128']) == 0
    checkpoint = read_checkpoint(target)
    assert checkpoint.source_format == 'project'
    assert checkpoint.meta['source_format'] == 'authors-training'
    assert checkpoint.config.nhead == 4
    torch.testing.assert_close(_outputs(load_model(target))['pred_boxes'], _outputs(model)['pred_boxes'],
                               rtol=0, atol=0)
    assert convert_main([str(tmp_path / 'nope.pth'), str(target)]) == 1
