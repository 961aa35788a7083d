"""Learning-rate schedules, stepped every optimizer step: linear warm-up, then cosine decay or steps."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["WarmupCosineLR", "WarmupMultiStepLR"]


class WarmupCosineLR(LambdaLR):
    """Linear warm-up from 0 to the base learning rate, then cosine decay to a floor.

    Stepped once per optimizer step. When ``total_steps`` is ``None``,
    :class:`~isr_lightning.ISRModule` (and ``ReIDFineTuneModule``) sets it from the trainer's
    ``estimated_stepping_batches`` when that is finite (``max_steps``, or ``max_epochs`` on a
    sized loader); otherwise the rate stays at its base value after the warm-up.

    Args:
        optimizer: the wrapped optimizer.
        warmup_steps: steps of linear warm-up.
        total_steps: total optimizer steps of the run, warm-up included.
        min_lr_ratio: final learning rate as a fraction of the base rate.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 100,
        total_steps: int | None = None,
        min_lr_ratio: float = 0.01,
    ) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if total_steps is not None and total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio
        super().__init__(optimizer, self.lr_factor)

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rate at optimizer step ``step``."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.total_steps is None:
            return 1.0
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine


class WarmupMultiStepLR(LambdaLR):
    """Linear warm-up from 0 to the base learning rate, then a drop by ``gamma`` at each milestone.

    The step schedule of the ReID baselines (e.g. x0.1 at 40 % and 70 % of training), in
    optimizer steps rather than epochs. Same warm-up as :class:`WarmupCosineLR`.

    Args:
        optimizer: the wrapped optimizer.
        milestones: optimizer steps at which the rate is multiplied by ``gamma`` (increasing).
        gamma: factor applied at each milestone.
        warmup_steps: steps of linear warm-up.
    """

    def __init__(
        self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, warmup_steps: int = 100
    ) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if list(milestones) != sorted(milestones) or any(m < 0 for m in milestones):
            raise ValueError(f"milestones must be increasing steps >= 0, got {list(milestones)}")
        if not gamma > 0:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, self.lr_factor)

    def lr_factor(self, step: int) -> float:
        """Multiplier of the base learning rate at optimizer step ``step``."""
        warmup = (step + 1) / (self.warmup_steps + 1) if step < self.warmup_steps else 1.0
        return warmup * self.gamma ** bisect.bisect_right(self.milestones, step)
