"""Training callbacks of the library."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar, TQDMProgressBar
from torch import Tensor
from typing_extensions import override

from isr_lightning.optim import WarmupCosineLR
from isr_lightning.storage import is_url, join

__all__ = [
    "CropThroughput",
    "RichStepProgressBar",
    "RunCheckpoint",
    "TQDMStepProgressBar",
    "TrainingTimeBudget",
    "count_crops",
]

log = logging.getLogger(__name__)


class TrainingTimeBudget(Callback):
    """Train for a wall-clock budget with a complete learning-rate schedule.

    It times ``calibration_steps`` optimizer steps after the first one (the first step
    carries the start-up: dataloader workers, cold caches), sets the trainer's ``max_steps``
    to the steps that fit in the rest of the budget, and sets ``total_steps`` of every
    :class:`~isr_lightning.WarmupCosineLR`, so the cosine decay ends when the budget does
    (``Trainer(max_time=...)`` would cut the schedule short instead).

    Args:
        minutes: training budget in minutes (set-up and evaluation not included).
        calibration_steps: steps timed before the plan is made.
    """

    clock: Callable[[], float] = staticmethod(time.perf_counter)
    """Seconds on a monotonic clock; a test sets its own on an instance to control time."""

    def __init__(self, minutes: float, calibration_steps: int = 5) -> None:
        if minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {minutes}")
        if calibration_steps < 1:
            raise ValueError(f"calibration_steps must be >= 1, got {calibration_steps}")
        self.seconds = 60.0 * minutes
        self.calibration_steps = calibration_steps
        self.planned_steps: int | None = None

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = self.clock()
        self._first_step_end: float | None = None
        self._first_step = 0

    @override
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: object) -> None:
        step, now = trainer.global_step, self.clock()
        if self.planned_steps is not None or step < 1:
            return
        if self._first_step_end is None:
            self._first_step_end, self._first_step = now, step
            return
        timed = step - self._first_step
        if timed < self.calibration_steps:
            return
        seconds_per_step = (now - self._first_step_end) / timed
        remaining = self.seconds - (now - self._start)
        self.planned_steps = max(step + 1, step + int(remaining / seconds_per_step))
        if trainer.max_steps > 0:
            self.planned_steps = min(self.planned_steps, trainer.max_steps)
        trainer.fit_loop.epoch_loop.max_steps = self.planned_steps
        for config in trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, WarmupCosineLR):
                config.scheduler.total_steps = self.planned_steps
        log.info(
            "time budget %.0f s: %.2f s/step, training for %d steps",
            self.seconds,
            seconds_per_step,
            self.planned_steps,
        )


def count_crops(batch: Any) -> int:
    """Number of images in a training batch.

    ``num_crops`` of a :class:`~isr_lightning.FramePairBatch`, else the length of the first
    tensor found (the batch itself, or the first tensor of a tuple, list or dict).

    Raises:
        TypeError: no tensor to count.
    """
    if hasattr(batch, "num_crops"):
        return int(batch.num_crops)
    if isinstance(batch, Tensor):
        return int(batch.shape[0])
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    for item in items:
        if isinstance(item, Tensor):
            return int(item.shape[0])
    raise TypeError(f"cannot count the images of a {type(batch).__name__} batch")


class CropThroughput(Callback):
    """Log training throughput in crops (images) per second, data loading included.

    Every ``window`` training batches it logs ``{prefix}crops_per_sec`` (crops of this rank
    over the wall-clock time of the window, multiplied by ``world_size``) and
    ``{prefix}sec_per_step``. The first batch only starts the clock, so start-up is excluded.

    Args:
        window: batches per measurement.
        prefix: prefix of the logged names.
    """

    def __init__(self, window: int = 10, prefix: str = "train/") -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self.prefix = prefix
        self.last_crops_per_sec: float | None = None
        self._reset()

    def _reset(self) -> None:
        self._start: float | None = None
        self._crops = 0
        self._steps = 0

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._reset()

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if self._start is None:
            self._start = now
            return
        self._crops += count_crops(batch)
        self._steps += 1
        if self._steps < self.window:
            return
        elapsed = max(now - self._start, 1e-9)
        self.last_crops_per_sec = self._crops * trainer.world_size / elapsed
        pl_module.log(f"{self.prefix}crops_per_sec", self.last_crops_per_sec, rank_zero_only=True)
        pl_module.log(f"{self.prefix}sec_per_step", elapsed / self._steps, rank_zero_only=True)
        self._start, self._crops, self._steps = now, 0, 0


def _step_based(trainer: Trainer) -> bool:
    """Training is sized by ``max_steps`` alone (Lightning then sets ``max_epochs`` to -1)."""
    return trainer.max_steps is not None and trainer.max_steps > 0 and trainer.max_epochs in (None, -1)


class RichStepProgressBar(RichProgressBar):
    """Lightning's ``RichProgressBar``, counting steps out of ``max_steps`` in step-based training.

    Where Lightning's bar shows ``Epoch 0/-2`` (``max_steps`` set, no ``max_epochs``), this one
    shows ``Step`` and ``steps done/max_steps``; otherwise it is the same, with the same
    arguments. The video data module's epochs are units of reseeding, not passes over the
    data, so the shipped recipes train for ``max_steps``.
    """

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if _step_based(trainer) and self._counting_steps(trainer):
            return  # one bar for the whole run: epochs do not restart it
        super().on_train_epoch_start(trainer, pl_module)
        self._show_steps(trainer)

    def _counting_steps(self, trainer: Trainer) -> bool:
        if self.progress is None or self.train_progress_bar_id is None:
            return False
        return self.progress.tasks[self.train_progress_bar_id].total == trainer.max_steps

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._show_steps(trainer)

    def _show_steps(self, trainer: Trainer) -> None:
        if not _step_based(trainer) or self.progress is None or self.train_progress_bar_id is None:
            return
        style = self.theme.description
        self.progress.update(
            self.train_progress_bar_id,
            description=f"[{style}]Step" if style else "Step",
            total=trainer.max_steps,
            completed=trainer.global_step,
        )
        self.refresh()


class TQDMStepProgressBar(TQDMProgressBar):
    """Lightning's ``TQDMProgressBar``, counting steps out of ``max_steps`` in step-based training.

    Otherwise the same, with the same arguments. The ``isr-lightning`` and ``lightning``
    commands use it when a config names no progress bar.
    """

    @override
    def on_train_epoch_start(self, trainer: Trainer, *args: Any) -> None:
        step_based = _step_based(trainer)
        bar = self.train_progress_bar
        if step_based and bar.total == trainer.max_steps and str(bar.desc).startswith("Step"):
            return  # one bar for the whole run: epochs do not restart it
        super().on_train_epoch_start(trainer, *args)
        if step_based:
            bar = self.train_progress_bar
            bar.reset(total=trainer.max_steps)
            bar.n = trainer.global_step
            bar.set_description("Step")
            bar.refresh()

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not _step_based(trainer):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        step, bar = trainer.global_step, self.train_progress_bar
        if self.is_enabled and not bar.disable and (step % self.refresh_rate == 0 or step == trainer.max_steps):
            bar.n = step
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that always leaves ``last.ckpt`` in a predictable folder.

    * The folder is ``<trainer.default_root_dir>/checkpoints`` unless ``dirpath`` is given,
      whatever the logger (Lightning's own default nests it under the logger's run folder).
    * ``last.ckpt`` is written every ``every_n_train_steps`` steps, when training ends (also
      when a time budget or ``max_steps`` ends it between two saves) and when an exception or
      Ctrl+C stops it, so a run's progress is never lost.
    * By default only ``last.ckpt`` is kept (``save_top_k=0``); the other arguments are
      ``ModelCheckpoint``'s (``monitor``, ``save_top_k``... to keep the best ones too).

    Args:
        dirpath: checkpoint folder (``None``: ``<default_root_dir>/checkpoints``).
        every_n_train_steps: steps between saves.
        save_top_k: checkpoints kept besides ``last.ckpt`` (see ``ModelCheckpoint``).
        save_last: write ``last.ckpt``.
        save_on_exception: save when an exception or Ctrl+C stops training.
        **kwargs: other ``ModelCheckpoint`` arguments.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        every_n_train_steps: int = 100,
        save_top_k: int = 0,
        save_last: bool = True,
        save_on_exception: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            every_n_train_steps=every_n_train_steps,
            save_top_k=save_top_k,
            save_last=save_last,
            save_on_exception=save_on_exception,
            **kwargs,
        )

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.dirpath is None:
            root = trainer.default_root_dir  # a local folder or a URL (Lightning writes through fsspec)
            self.dirpath = join(root, "checkpoints") if is_url(root) else os.path.realpath(join(root, "checkpoints"))
        super().setup(trainer, pl_module, stage)

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.save_last and not trainer.fast_dev_run and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)
