"""Training callbacks of the library."""

from __future__ import annotations

import logging
import time

from lightning.pytorch import Callback, LightningModule, Trainer

from isr_lightning.optim import WarmupCosineLR

__all__ = ["TrainingTimeBudget"]

log = logging.getLogger(__name__)


class TrainingTimeBudget(Callback):
    """Train for a wall-clock budget with a complete learning-rate schedule.

    After ``calibration_steps`` optimizer steps it measures the step time, sets the
    trainer's ``max_steps`` to the number of steps that fit in the remaining budget, and
    sets ``total_steps`` of every :class:`~isr_lightning.WarmupCosineLR`, so the cosine decay
    ends when the budget does (``Trainer(max_time=...)`` would cut the schedule short instead).

    Args:
        minutes: training budget in minutes (set-up and evaluation not included).
        calibration_steps: steps timed before the plan is made.
    """

    def __init__(self, minutes: float, calibration_steps: int = 5) -> None:
        if minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {minutes}")
        if calibration_steps < 1:
            raise ValueError(f"calibration_steps must be >= 1, got {calibration_steps}")
        self.seconds = 60.0 * minutes
        self.calibration_steps = calibration_steps
        self.planned_steps: int | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:  # noqa: D102
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: object) -> None:  # noqa: D102
        step = trainer.global_step
        if self.planned_steps is not None or step < self.calibration_steps:
            return
        elapsed = time.perf_counter() - self._start
        self.planned_steps = max(step + 1, int(self.seconds * step / elapsed))
        if trainer.max_steps > 0:
            self.planned_steps = min(self.planned_steps, trainer.max_steps)
        trainer.fit_loop.epoch_loop.max_steps = self.planned_steps
        for config in trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, WarmupCosineLR):
                config.scheduler.total_steps = self.planned_steps
        log.info(
            "time budget %.0f s: %.2f s/step, training for %d steps", self.seconds, elapsed / step, self.planned_steps
        )
