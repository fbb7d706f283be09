"""Training config: YAML loading, overrides, unknown keys, the command line."""
from pathlib import Path

import pytest
import yaml

from transt_ros.training import cli
from transt_ros.training.config import ConfigError, TrainingConfig, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_authors_settings():
    config = TrainingConfig()
    assert (config.optim.lr, config.optim.backbone_lr, config.optim.weight_decay) == (1e-4, 1e-5, 1e-4)
    assert (config.optim.lr_drop_epochs, config.optim.grad_clip_norm) == (500, 0.1)
    assert (config.loss.ce_weight, config.loss.bbox_weight, config.loss.giou_weight,
            config.loss.background_weight) == (8.334, 5.0, 2.0, 0.0625)
    data = config.data
    assert (data.template_area_factor, data.search_area_factor, data.max_gap) == (2.0, 4.0, 100)
    assert (data.search_center_jitter, data.search_scale_jitter) == (3.0, 0.25)
    assert (data.template_center_jitter, data.template_scale_jitter) == (0.0, 0.0)
    assert (data.brightness_jitter, data.grayscale_probability) == (0.2, 0.05)
    assert (config.model.template_size, config.model.search_size) == (128, 256)


@pytest.mark.parametrize('name', sorted(p.name for p in (ROOT / 'config').glob('train_*.yaml')))
def test_shipped_configs_load(name):
    config = load_config(ROOT / 'config' / name)
    assert config.data.datasets


def test_overrides_are_typed_and_reach_lists(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text(yaml.safe_dump({'data': {'datasets': [{'kind': 'synthetic'}, {'kind': 'synthetic'}]}}))
    config = load_config(path, ['optim.lr=1e-3', 'train.batch_size=8', 'data.datasets.1.weight=3',
                                'data.datasets.0.num_videos=7', 'train.max_steps=null', 'model.backbone=resnet18'])
    assert config.optim.lr == 1e-3 and config.train.batch_size == 8
    assert config.data.datasets[1].weight == 3.0
    assert config.data.datasets[0].options == {'num_videos': 7}
    assert config.model.backbone == 'resnet18' and config.train.max_steps is None


@pytest.mark.parametrize('overrides, message', [
    (['optim.learning_rate=1'], 'optim.learning_rate'),
    (['trian.epochs=1'], 'trian'),
    (['model.layers=2'], 'model.layers'),
    (['data.datasets.0.colour=red'], 'data.datasets.0.colour'),
    (['data.datasets.0.kind=imagenet'], 'imagenet'),
    (['train.batch_size=four'], 'train.batch_size'),
    (['train.batch_size=0'], 'train.batch_size'),
    (['train.amp=fp8'], 'train.amp'),
    (['model.backbone=vgg'], 'backbone'),
    (['optim.lr'], 'key=value'),
])
def test_bad_keys_and_values_are_rejected_by_name(overrides, message):
    with pytest.raises(ConfigError, match=message.replace('.', r'\.')):
        load_config(None, overrides)


def test_unknown_key_in_a_file_is_rejected(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('train:\n  epochs: 3\n  bach_size: 4\n')
    with pytest.raises(ConfigError, match=r'unknown config key train\.bach_size'):
        load_config(path)


def test_to_dict_round_trips():
    config = load_config(ROOT / 'config' / 'train_tiny.yaml', ['data.datasets.0.seed=3'])
    again = load_config(None, [f'{k}={yaml.safe_dump(v, default_flow_style=True).strip()}'
                               for k, v in config.to_dict().items()])
    assert again == config


def test_cli_help_print_config_and_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['--help'])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert '--set' in help_text and 'optim.lr' in help_text and 'synthetic' in help_text
    assert cli.main([str(ROOT / 'config' / 'train_tiny.yaml'), '--set', 'optim.lr=2e-4', '--print-config']) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed['optim']['lr'] == 2e-4 and printed['model']['backbone'] == 'resnet18'
    assert cli.main(['--set', 'optim.momentum=0.9', '--print-config']) == 2
    assert 'optim.momentum' in capsys.readouterr().err
