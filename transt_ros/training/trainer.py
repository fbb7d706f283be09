"""The training loop: model set-up, optimisation, logging, checkpoints, resume.

One :class:`Trainer` per process; under ``torchrun`` the model is wrapped in
``DistributedDataParallel`` and each rank draws its own disjoint samples. Steps are
optimizer steps; ``epoch = step // steps_per_epoch`` with ``steps_per_epoch =
samples_per_epoch // (batch_size x world_size)``; the learning rate drops at epoch ends.
``train.max_wall_seconds`` ends a run early, like its last step (checkpoint, ``model.pth``).
Optional packages: without tqdm there is no progress bar (progress is logged instead), without
TensorBoard only ``log.csv`` is written.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

try:
    from tqdm import tqdm
except ImportError:  # a bare machine: progress goes to the log
    tqdm = None

from ..checkpoint import FORMAT_VERSION
from ..checkpoint import save_checkpoint as write_model_checkpoint
from ..model import build_transt
from . import distributed
from .checkpointing import (
    CheckpointManager,
    capture_rng_state,
    load_backbone_weights,
    load_initial_weights,
    read_training_checkpoint,
    restore_rng_state,
)
from .config import TrainingConfig
from .datasets import build_dataset
from .logs import TrainingLog
from .loss import TransTLoss
from .processing import PairProcessing
from .sampler import SKIP_REASONS, PairDataset, StepBatchSampler, seed_worker

logger = logging.getLogger('transt_ros.training')
LOSS_TERMS = ('loss', 'loss_ce', 'loss_bbox', 'loss_giou', 'iou')


class _LossWindow:
    """The loss terms summed over the steps since the last log line, and when those steps began."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums = {name: 0.0 for name in LOSS_TERMS}
        self.steps = 0
        self.start = time.perf_counter()

    def add(self, values: dict) -> None:
        for name in LOSS_TERMS:
            self.sums[name] += values[name]
        self.steps += 1

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


class _NoProgress:
    """Stands in for a disabled (or missing) tqdm bar."""

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def update(self, count: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def tensorboard_available() -> bool:
    return importlib.util.find_spec('tensorboard') is not None


def initialise_weights(model: nn.Module, config: TrainingConfig) -> None:
    """Xavier-uniform for every matrix outside the backbone, then the optional trunk
    (ImageNet) weights and fine-tuning checkpoint."""
    if config.init.xavier and not config.init.checkpoint:
        for name, parameter in model.named_parameters():
            if not name.startswith('backbone.') and parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)
    if config.init.backbone_weights:
        missing, unexpected = load_backbone_weights(model, config.init.backbone_weights)
        logger.info('backbone weights %s: %d missing keys %s, %d unexpected keys %s', config.init.backbone_weights,
                    len(missing), missing[:5], len(unexpected), unexpected[:5])
    if config.init.checkpoint:
        missing, unexpected, source = load_initial_weights(model, config.init.checkpoint)
        logger.info('initial weights %s (%s): %d missing keys %s, %d unused keys %s', config.init.checkpoint,
                    source, len(missing), missing[:5], len(unexpected), unexpected[:5])


def freeze_backbone(model: nn.Module, trainable_layers: list[str], freeze_bn: bool) -> None:
    """As the authors (DETR's backbone): only ``trainable_layers`` of the trunk learn, and its
    batch norms are frozen (parameters fixed, running statistics used) when ``freeze_bn``."""
    for name, module in model.backbone.named_modules():
        frozen_bn = freeze_bn and isinstance(module, nn.modules.batchnorm._BatchNorm)
        for parameter_name, parameter in module.named_parameters(recurse=False):
            full = f'{name}.{parameter_name}'.removeprefix('body.')
            if frozen_bn or not full.startswith(tuple(f'{layer}.' for layer in trainable_layers)):
                parameter.requires_grad_(False)


def build_pairs(config: TrainingConfig, datasets=None) -> PairDataset:
    data = config.data
    if datasets is None:
        datasets = [build_dataset(spec.kind, spec.root, spec.options) for spec in data.datasets]
    weights = [spec.weight for spec in data.datasets]
    processing = PairProcessing.from_config(data, config.model.template_size, config.model.search_size)
    return PairDataset(datasets, weights, processing, data.samples_per_epoch, data.max_gap, config.train.seed,
                       data.min_visible_frames, data.min_sequence_length, data.max_attempts)


class Trainer:
    """``model``/``datasets`` may be given (tests, benchmarks); by default built from ``config``."""

    def __init__(self, config: TrainingConfig, model: nn.Module | None = None, datasets=None):
        self.config = config
        train = config.train
        self.context = distributed.setup(train.device, train.distributed_backend)
        self.device = self.context.device
        if train.deterministic:
            os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        torch.manual_seed(train.seed)
        np.random.seed(train.seed)
        self.model = model if model is not None else build_transt(config.model)
        initialise_weights(self.model, config)
        freeze_backbone(self.model, config.optim.trainable_backbone_layers, config.optim.freeze_backbone_bn)
        self.model.to(self.device)
        self.network = self.model
        if self.context.is_distributed:
            self.network = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == 'cuda' else None)
        self.criterion = TransTLoss.from_config(config.loss).to(self.device)
        self.optimizer = self._build_optimizer()
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, config.optim.lr_drop_epochs,
                                                         config.optim.lr_drop_factor)
        self.amp_dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(train.amp)
        if self.amp_dtype is not None and self.device.type != 'cuda':
            logger.warning('train.amp=%s needs CUDA; training in float32 on %s', train.amp, self.device)
            self.amp_dtype = None
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.amp_dtype == torch.float16)
        self.pairs = build_pairs(config, datasets)
        self.steps_per_epoch = config.data.samples_per_epoch // (train.batch_size * self.context.world_size)
        if self.steps_per_epoch < 1:
            raise ValueError(f'data.samples_per_epoch ({config.data.samples_per_epoch}) is smaller than one '
                             f'global batch ({train.batch_size} x {self.context.world_size} processes)')
        self.output_dir = Path(train.output_dir)
        self.checkpoints = CheckpointManager(self.output_dir / 'checkpoints', config.checkpoint.keep_last)
        self.step = 0
        self.wall_drop_done = False
        self.skips = torch.zeros(len(SKIP_REASONS), dtype=torch.int64)
        latest = self.checkpoints.latest() if config.checkpoint.resume else None
        if latest is not None:
            self.resume(latest)
        else:
            torch.manual_seed(int(np.random.SeedSequence([train.seed, self.context.rank]).generate_state(1)[0]))

    def _build_optimizer(self) -> torch.optim.Optimizer:
        optim = self.config.optim
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [{'params': [p for n, p in named if not n.startswith('backbone.')], 'lr': optim.lr},
                  {'params': [p for n, p in named if n.startswith('backbone.')], 'lr': optim.backbone_lr}]
        return torch.optim.AdamW([g for g in groups if g['params']], lr=optim.lr, weight_decay=optim.weight_decay)

    @property
    def epoch(self) -> int:
        return self.step // self.steps_per_epoch

    def total_steps(self) -> int:
        total = self.config.train.epochs * self.steps_per_epoch
        max_steps = self.config.train.max_steps
        return min(total, max_steps) if max_steps else total

    def set_train_mode(self) -> None:
        self.network.train()
        if self.config.optim.freeze_backbone_bn:
            for module in self.model.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def train_step(self, batch: dict) -> dict:
        """One optimizer step on a collated batch; returns the loss terms as floats."""
        template = batch['template'].to(self.device, non_blocking=True)
        search = batch['search'].to(self.device, non_blocking=True)
        boxes = batch['search_box'].to(self.device, non_blocking=True)
        autocast = (torch.autocast('cuda', dtype=self.amp_dtype) if self.amp_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            outputs = self.network(template=template, search=search)
        side = self.config.model.search_size // 8
        losses = self.criterion(outputs, boxes, (side, side))
        bad = (~torch.isfinite(losses['loss'].detach())).float()
        if self.context.is_distributed:
            distributed.all_reduce_sum(bad)  # every rank stops together, none hangs in backward
        if bad.item() > 0:
            raise FloatingPointError(f'loss is {losses["loss"].item()} at step {self.step + 1}; stopping')
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses['loss']).backward()
        if self.config.optim.grad_clip_norm > 0:
            self.scaler.unscale_(self.optimizer)
            parameters = [p for group in self.optimizer.param_groups for p in group['params']]
            nn.utils.clip_grad_norm_(parameters, self.config.optim.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.skips += batch['skips'].sum(dim=0)
        return {name: losses[name].item() for name in LOSS_TERMS}

    def _show_progress(self) -> bool:
        return self.context.is_main and self.config.train.progress_bar and tqdm is not None

    def _out_of_time(self, elapsed: float) -> bool:
        """``train.max_wall_seconds`` reached (by rank 0's clock, shared so all ranks stop together)."""
        budget = self.config.train.max_wall_seconds
        if budget is None:
            return False
        if not self.context.is_distributed:
            return elapsed >= budget
        flag = torch.tensor([1.0 if elapsed >= budget else 0.0], device=self.device)
        distributed.all_reduce_sum(flag)
        return bool(flag.item() > 0)

    def _adjust_learning_rate(self, elapsed: float, warmup_base: list[float] | None) -> None:
        """Linear warm-up over ``optim.warmup_steps``; one drop by ``optim.lr_drop_factor`` after
        ``optim.lr_drop_wall_fraction`` of ``train.max_wall_seconds``."""
        optim, budget = self.config.optim, self.config.train.max_wall_seconds
        groups = self.optimizer.param_groups
        if warmup_base is not None and self.step <= optim.warmup_steps:
            factor = min(1.0, (self.step + 1) / optim.warmup_steps)
            for group, base in zip(groups, warmup_base):
                group['lr'] = base * factor
        if (budget and optim.lr_drop_wall_fraction and not self.wall_drop_done
                and elapsed >= optim.lr_drop_wall_fraction * budget):
            self.wall_drop_done = True
            for group in groups:
                group['lr'] *= optim.lr_drop_factor
            if warmup_base is not None:
                warmup_base[:] = [base * optim.lr_drop_factor for base in warmup_base]
            logger.info('step %d: %.0f s of %.0f s, learning rate dropped to %g', self.step, elapsed, budget,
                        groups[0]['lr'])

    def loader(self, start_step: int, end_step: int) -> DataLoader:
        context, train = self.context, self.config.train
        batches = StepBatchSampler(self.config.data.samples_per_epoch, train.batch_size, start_step, end_step,
                                   context.rank, context.world_size)
        workers = self.config.data.num_workers
        return DataLoader(self.pairs, batch_sampler=batches, num_workers=workers,
                          prefetch_factor=self.config.data.prefetch_factor if workers else None,
                          worker_init_fn=seed_worker if workers else None,
                          generator=torch.Generator().manual_seed(train.seed * 1000 + context.rank),
                          pin_memory=self.device.type == 'cuda', persistent_workers=False)

    def train(self) -> list[dict]:
        """Run from the current step to the end (or ``train.max_steps``); returns this rank's
        per-step records {'step', 'epoch', 'lr', *loss terms}."""
        end = self.total_steps()
        history: list[dict] = []
        if self.step >= end:
            logger.info('nothing to do: step %d of %d already reached', self.step, end)
            return history
        log = self._open_log() if self.context.is_main else None
        progress = (tqdm(total=end, initial=self.step, unit='step', dynamic_ncols=True) if self._show_progress()
                    else _NoProgress())
        window = _LossWindow()
        started = time.monotonic()
        warmup_base = ([group['lr'] for group in self.optimizer.param_groups]
                       if self.step < self.config.optim.warmup_steps else None)
        self.set_train_mode()
        try:
            for batch in self.loader(self.step, end):
                self._adjust_learning_rate(time.monotonic() - started, warmup_base)
                lr = self.optimizer.param_groups[0]['lr']
                values = self.train_step(batch)
                self.step += 1
                history.append({'step': self.step, 'epoch': (self.step - 1) // self.steps_per_epoch, 'lr': lr,
                                **values})
                if self._after_step(values, lr, window, log, progress, end, started):
                    break
        except KeyboardInterrupt:
            if not self.context.is_distributed and self.step > 0:
                logger.warning('interrupted: saving a checkpoint at step %d', self.step)
                self.save_checkpoint()
            raise
        finally:
            progress.close()
            if log is not None:
                log.close()
        if self.context.is_main:
            path = write_model_checkpoint(self.output_dir / 'model.pth', self.model, meta=self._meta())
            logger.info('step %d: weights written to %s', self.step, path)
        return history

    def _open_log(self) -> TrainingLog:
        columns = [*LOSS_TERMS, 'lr', 'samples_per_s', *(f'skipped_{r}' for r in SKIP_REASONS)]
        log = TrainingLog(self.output_dir, columns, tensorboard=tensorboard_available())
        if not tensorboard_available():
            logger.info('TensorBoard is not installed: logging to %s only', log.csv_path)
        return log

    def _after_step(self, values: dict, lr: float, window: _LossWindow, log: TrainingLog | None, progress, end: int,
                    started: float) -> bool:
        """What follows an optimizer step: progress, the epoch's learning-rate drop, the log line, the
        checkpoint; True when ``train.max_wall_seconds`` is reached (stop)."""
        batch_samples = self.config.train.batch_size * self.context.world_size
        window.add(values)
        elapsed = window.elapsed()
        progress.set_postfix({'loss': f'{values["loss"]:.3f}', 'ce': f'{values["loss_ce"]:.3f}',
                              'l1': f'{values["loss_bbox"]:.3f}', 'giou': f'{values["loss_giou"]:.3f}',
                              'samples/s': f'{window.steps * batch_samples / max(elapsed, 1e-9):.1f}'},
                             refresh=False)
        progress.update(1)
        epoch_end = self.step % self.steps_per_epoch == 0
        if epoch_end:
            self.scheduler.step()
        if self.step % self.config.train.log_every == 0 or epoch_end or self.step == end:
            self._log_window(log, window.sums, window.steps, elapsed, lr, batch_samples)
            window.reset()
        out_of_time = self._out_of_time(time.monotonic() - started)
        if out_of_time and window.steps:
            self._log_window(log, window.sums, window.steps, elapsed, lr, batch_samples)
        if self._checkpoint_due(epoch_end, end) or out_of_time:
            self.save_checkpoint()
        if out_of_time:
            logger.info('step %d: train.max_wall_seconds (%g s) reached; stopping', self.step,
                        self.config.train.max_wall_seconds)
        return out_of_time

    def _checkpoint_due(self, epoch_end: bool, end: int) -> bool:
        every = self.config.checkpoint
        return (self.step == end or (every.every_steps > 0 and self.step % every.every_steps == 0)
                or (epoch_end and self.epoch % every.every_epochs == 0))

    def _log_window(self, log, window, steps, elapsed, lr, batch_samples) -> None:
        means = torch.tensor([window[name] / steps for name in LOSS_TERMS], dtype=torch.float64)
        skips = self.skips.clone()
        if self.context.is_distributed:
            means = distributed.all_reduce_sum(means.to(self.device)).cpu() / self.context.world_size
            skips = distributed.all_reduce_sum(skips.to(self.device)).cpu()
        if log is None:
            return
        values = dict(zip(LOSS_TERMS, means.tolist()))
        values.update(lr=lr, samples_per_s=steps * batch_samples / max(elapsed, 1e-9))
        values.update({f'skipped_{reason}': int(count) for reason, count in zip(SKIP_REASONS, skips.tolist())})
        log.write(self.step, self.epoch, values)
        if not self._show_progress():
            logger.info('step %d epoch %d: loss %.4f (ce %.4f, l1 %.4f, giou %.4f), iou %.3f, lr %.2e, %.1f samples/s',
                        self.step, self.epoch, values['loss'], values['loss_ce'], values['loss_bbox'],
                        values['loss_giou'], values['iou'], lr, values['samples_per_s'])
        if skips.any() and self.step % self.steps_per_epoch == 0:
            logger.info('epoch %d: skipped so far %s', self.epoch,
                        {r: int(c) for r, c in zip(SKIP_REASONS, skips.tolist()) if c})

    def _meta(self) -> dict:
        return {'format_version': FORMAT_VERSION, 'created_by': 'transt-train', 'epoch': self.epoch,
                'step': self.step, 'torch_version': str(torch.__version__)}

    def save_checkpoint(self) -> Path | None:
        """All ranks call this (RNG states are gathered); rank 0 writes."""
        rng_states = distributed.all_gather_objects(capture_rng_state())
        skips = self.skips.clone()
        if not self.context.is_main:
            return None
        state = {
            'model': {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            'config': self.model.config.to_dict() if hasattr(self.model, 'config') else self.config.model.to_dict(),
            'meta': self._meta(),
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'scaler': self.scaler.state_dict(),
            'epoch': self.epoch,
            'step': self.step,
            'steps_per_epoch': self.steps_per_epoch,
            'skips': skips,
            'rng': rng_states,
            'training_config': self.config.to_dict(),
        }
        path = self.checkpoints.save(state, self.step)
        logger.info('step %d (epoch %d): checkpoint %s', self.step, self.epoch, path)
        return path

    def resume(self, path: Path) -> None:
        state = read_training_checkpoint(path)
        stored_model = state.get('config')
        if stored_model and stored_model != self.config.model.to_dict():
            raise ValueError(f'{path}: trained with model {stored_model}, but the config asks for '
                             f'{self.config.model.to_dict()}; use another train.output_dir or '
                             'checkpoint.resume=false')
        if state['steps_per_epoch'] != self.steps_per_epoch:
            raise ValueError(f'{path}: {state["steps_per_epoch"]} steps per epoch, now {self.steps_per_epoch} '
                             '(data.samples_per_epoch, train.batch_size or the number of processes changed)')
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        if state.get('scaler'):
            self.scaler.load_state_dict(state['scaler'])
        self.step = int(state['step'])
        self.skips = state['skips'].clone()
        rng_states = state['rng']
        rank = self.context.rank
        if len(rng_states) == self.context.world_size:
            restore_rng_state(rng_states[rank])
        else:
            restore_rng_state(rng_states[0])
            torch.manual_seed(int(np.random.SeedSequence([self.config.train.seed, rank, self.step])
                                  .generate_state(1)[0]))
        logger.info('resumed from %s at step %d (epoch %d)', path, self.step, self.epoch)

    def close(self) -> None:
        distributed.cleanup(self.context)
