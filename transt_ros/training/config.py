"""Typed training configuration, loaded from YAML; unknown keys are rejected by name.

A config file has the sections of :class:`TrainingConfig` (``model``, ``data``, ``optim``,
``loss``, ``train``, ``init``, ``checkpoint``); every key is optional and defaults to the
authors' TransT settings (pytracking ``ltr/train_settings/transt/transt.py``). Overrides
``section.key=value`` (values parsed as YAML; ``data.datasets.0.weight=2`` indexes lists)
are applied to the raw mapping before validation, so they are checked like file keys.

Without PyYAML (a bare GPU machine) a config file must be JSON, which is also YAML (lines that
start with ``#`` are skipped), and override values are read as JSON, else as plain strings.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

try:
    import yaml
except ImportError:  # a bare machine: JSON configs only (see the module docstring)
    yaml = None

from ..model import TransTConfig


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending key."""


@dataclass
class DatasetConfig:
    """One training source. ``kind`` picks the reader; other keys are the reader's options.

    Kinds: got10k, lasot, trackingnet, coco, custom, synthetic (see ``--help`` for options).
    """

    kind: str
    root: str = ''
    weight: float = 1.0
    options: dict = field(default_factory=dict)


@dataclass
class DataConfig:
    datasets: list[DatasetConfig] = field(default_factory=lambda: [DatasetConfig(kind='synthetic')])
    samples_per_epoch: int = 38000
    max_gap: int = 100
    num_workers: int = 4
    prefetch_factor: int = 2
    """Batches each loader worker prepares ahead (held in shared memory, /dev/shm)."""
    template_area_factor: float = 2.0
    search_area_factor: float = 4.0
    template_center_jitter: float = 0.0
    search_center_jitter: float = 3.0
    template_scale_jitter: float = 0.0
    search_scale_jitter: float = 0.25
    brightness_jitter: float = 0.2
    grayscale_probability: float = 0.05
    border: str = 'zero'
    min_visible_frames: int = 5
    min_sequence_length: int = 20
    max_attempts: int = 100


@dataclass
class OptimConfig:
    lr: float = 1e-4
    backbone_lr: float = 1e-5
    weight_decay: float = 1e-4
    lr_drop_epochs: int = 500
    lr_drop_factor: float = 0.1
    lr_drop_wall_fraction: float | None = None
    """With train.max_wall_seconds: also drop the learning rate once, after this fraction of it."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up over the first optimizer steps (0: none)."""
    grad_clip_norm: float = 0.1
    trainable_backbone_layers: list[str] = field(default_factory=lambda: ['layer2', 'layer3'])
    freeze_backbone_bn: bool = True


@dataclass
class LossConfig:
    ce_weight: float = 8.334
    bbox_weight: float = 5.0
    giou_weight: float = 2.0
    background_weight: float = 0.0625


@dataclass
class TrainConfig:
    epochs: int = 1000
    batch_size: int = 38
    seed: int = 0
    device: str = 'auto'
    amp: str = 'none'
    deterministic: bool = False
    max_steps: int | None = None
    max_wall_seconds: float | None = None
    """Stop after this many seconds of training (checkpoint and model.pth written as at the end)."""
    output_dir: str = 'runs/transt'
    log_every: int = 10
    progress_bar: bool = True
    distributed_backend: str = 'auto'


@dataclass
class InitConfig:
    xavier: bool = True
    backbone_weights: str | None = None
    checkpoint: str | None = None


@dataclass
class CheckpointConfig:
    every_epochs: int = 1
    every_steps: int = 0
    keep_last: int = 3
    resume: bool = True


@dataclass
class TrainingConfig:
    model: TransTConfig = field(default_factory=TransTConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: InitConfig = field(default_factory=InitConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def __post_init__(self):
        _check_choice('train.amp', self.train.amp, ('none', 'bf16', 'fp16'))
        _check_choice('train.distributed_backend', self.train.distributed_backend, ('auto', 'gloo', 'nccl'))
        _check_choice('data.border', self.data.border, ('zero', 'mean'))
        for key in ('train.batch_size', 'train.epochs', 'data.samples_per_epoch', 'train.log_every',
                    'optim.lr_drop_epochs', 'data.max_attempts', 'data.prefetch_factor'):
            section, name = key.split('.')
            if getattr(getattr(self, section), name) < 1:
                raise ConfigError(f'{key} must be at least 1')
        if self.train.max_wall_seconds is not None and not self.train.max_wall_seconds > 0:
            raise ConfigError('train.max_wall_seconds must be positive (or null)')
        fraction = self.optim.lr_drop_wall_fraction
        if fraction is not None and not 0 < fraction < 1:
            raise ConfigError('optim.lr_drop_wall_fraction must be in (0, 1) (or null)')
        if self.optim.warmup_steps < 0:
            raise ConfigError('optim.warmup_steps must not be negative')
        if self.checkpoint.keep_last < 1:
            raise ConfigError('checkpoint.keep_last must be at least 1')
        if not self.data.datasets:
            raise ConfigError('data.datasets is empty')
        if any(spec.weight <= 0 for spec in self.data.datasets):
            raise ConfigError('data.datasets[*].weight must be positive')

    def to_dict(self) -> dict:
        return to_dict(self)


def _check_choice(key, value, choices):
    if value not in choices:
        raise ConfigError(f'{key} must be one of {choices}, got {value!r}')


def to_dict(config) -> dict:
    """A plain (YAML/checkpoint-safe) dict; dataset options are flattened back into the entry."""
    raw = dataclasses.asdict(config)
    for entry in raw.get('data', {}).get('datasets', []):
        entry.update(entry.pop('options'))
    return raw


def _type_name(tp) -> str:
    return getattr(tp, '__name__', None) or str(tp).replace('typing.', '')


def coerce(value, tp, key: str):
    """Check/convert one YAML value to the annotated type ``tp``; ``key`` names it in errors."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f'{key}: {value!r} fits none of {tp}')
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f'{key}: expected a list, got {value!r}')
        (item_type,) = typing.get_args(tp) or (typing.Any,)
        return [coerce(item, item_type, f'{key}.{index}') for index, item in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is typing.Any:
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f'{key}: expected a mapping, got {value!r}')
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f'{key}: expected true/false, got {value!r}')
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f'{key}: expected an integer, got {value!r}')
        return value
    if tp is float:
        if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f'{key}: expected a number, got {value!r}')
        return float(value)
    if tp is str:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f'{key}: expected a string, got {value!r}')
        return str(value)
    raise ConfigError(f'{key}: unsupported type {_type_name(tp)}')


def _dataset_from_dict(raw, key: str) -> DatasetConfig:
    from .datasets import DATASET_KINDS

    if not isinstance(raw, dict):
        raise ConfigError(f'{key}: expected a mapping with a "kind", got {raw!r}')
    if 'kind' not in raw:
        raise ConfigError(f'{key}: missing "kind" (one of {sorted(DATASET_KINDS)})')
    kind = raw['kind']
    if kind not in DATASET_KINDS:
        raise ConfigError(f'{key}.kind: unknown dataset kind {kind!r}; known: {sorted(DATASET_KINDS)}')
    reader = DATASET_KINDS[kind]
    hints = typing.get_type_hints(reader.__init__)
    parameters = inspect.signature(reader.__init__).parameters
    known = [name for name in parameters if name not in ('self', 'root')]
    options = {}
    for name, value in raw.items():
        if name in ('kind', 'root', 'weight'):
            continue
        if name not in known:
            raise ConfigError(f'{key}.{name}: unknown option for dataset kind {kind!r}; '
                              f'known: {["root", "weight", *known]}')
        options[name] = coerce(value, hints.get(name, typing.Any), f'{key}.{name}')
    return DatasetConfig(kind=kind, root=coerce(raw.get('root', ''), str, f'{key}.root'),
                         weight=coerce(raw.get('weight', 1.0), float, f'{key}.weight'), options=options)


def from_dict(cls, raw, key: str = ''):
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by their full name."""
    if cls is DatasetConfig:
        return _dataset_from_dict(raw, key)
    prefix = f'{key}.' if key else ''
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f'{key or "config"}: expected a mapping, got {raw!r}')
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for name in raw:
        if name not in names:
            raise ConfigError(f'unknown config key {prefix}{name!s}; known keys under '
                              f'{key or "the top level"}: {names}')
    values = {name: coerce(raw[name], hints[name], f'{prefix}{name}') for name in names if name in raw}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f'{key or "config"}: {error}') from None


def apply_override(raw: dict, assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to the nested mapping ``raw`` in place."""
    if '=' not in assignment:
        raise ConfigError(f'override {assignment!r} is not of the form key=value')
    dotted, text = assignment.split('=', 1)
    parts = [part for part in dotted.strip().split('.') if part]
    if not parts:
        raise ConfigError(f'override {assignment!r} has an empty key')
    try:
        value = _parse_value(text) if text.strip() else None
    except ValueError as error:
        raise ConfigError(f'override {dotted}: value {text!r} is not valid YAML ({error})') from None
    node = raw
    for depth, part in enumerate(parts[:-1]):
        here = '.'.join(parts[:depth + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, here)]
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f'override {dotted}: {here} is not a section')
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, dotted)] = value
    else:
        node[last] = value


def _parse_value(text: str):
    """An override value: YAML, or without PyYAML JSON, else the plain string."""
    if yaml is not None:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(str(error)) from None
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()


def _parse_file(path: Path):
    text = path.read_text(encoding='utf-8')
    if yaml is not None:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f'{path}: not valid YAML ({error})') from None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith('#')]
    try:
        return json.loads('\n'.join(lines) or '{}')
    except ValueError as error:
        raise ConfigError(f'{path}: PyYAML is not installed and this is not JSON ({error}); install PyYAML '
                          'or write the config as JSON') from None


def _list_index(node: list, part: str, key: str) -> int:
    try:
        index = int(part)
    except ValueError:
        raise ConfigError(f'override {key}: {part!r} is not a list index') from None
    if not -len(node) <= index < len(node):
        raise ConfigError(f'override {key}: index {index} out of range (list of {len(node)})')
    return index


def load_config(path: str | Path | None = None, overrides: list[str] | tuple = ()) -> TrainingConfig:
    """Read a YAML file (or start from defaults), apply overrides, validate."""
    raw = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f'{path}: no such config file')
        raw = _parse_file(path) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f'{path}: the top level must be a mapping of sections')
    if any(item.split('=', 1)[0].startswith('data.datasets.') for item in overrides):
        if not isinstance(raw.get('data'), dict):
            raw['data'] = {}
        raw['data'].setdefault('datasets', to_dict(TrainingConfig())['data']['datasets'])
    for assignment in overrides:
        apply_override(raw, assignment)
    return from_dict(TrainingConfig, raw)


def describe(cls=TrainingConfig, prefix: str = '') -> list[str]:
    """One line per key: ``section.key (type, default value)``, for ``--help``."""
    lines = []
    hints = typing.get_type_hints(cls)
    defaults = cls() if cls is not DatasetConfig else None
    for item in dataclasses.fields(cls):
        tp = hints[item.name]
        if dataclasses.is_dataclass(tp) and tp is not DatasetConfig:
            lines += describe(tp, f'{prefix}{item.name}.')
        else:
            default = getattr(defaults, item.name) if defaults is not None else None
            if item.name == 'datasets':
                default = '[{kind: synthetic}]'
            lines.append(f'  {prefix}{item.name} ({_type_name(tp)}, default {default})')
    return lines
