"""Rank-0 training logs: a CSV file and TensorBoard scalars, one row per logging window."""
from __future__ import annotations

import csv
from pathlib import Path


class TrainingLog:
    """``<output_dir>/log.csv`` (appended across resumes) and ``<output_dir>/tensorboard``."""

    def __init__(self, output_dir: str | Path, columns: list[str], tensorboard: bool = True):
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.columns = ['step', 'epoch', *columns]
        self.csv_path = self.output_dir / 'log.csv'
        new_file = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._csv_file = open(self.csv_path, 'a', newline='', encoding='utf-8')
        self._csv = csv.DictWriter(self._csv_file, fieldnames=self.columns, extrasaction='ignore')
        if new_file:
            self._csv.writeheader()
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.output_dir / 'tensorboard'))

    def write(self, step: int, epoch: int, values: dict) -> None:
        self._csv.writerow({'step': step, 'epoch': epoch, **values})
        self._csv_file.flush()
        if self._writer is not None:
            for name, value in values.items():
                group = 'skipped' if name.startswith('skipped_') else 'train'
                self._writer.add_scalar(f'{group}/{name.removeprefix("skipped_")}', value, step)

    def close(self) -> None:
        self._csv_file.close()
        if self._writer is not None:
            self._writer.close()
