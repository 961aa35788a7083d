"""Learning-rate schedules (``isr_lightning.optim``), factor by factor against hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from isr_lightning.optim import WarmupCosineLR, WarmupMultiStepLR


def test_warmup_cosine_schedule_by_hand() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = WarmupCosineLR(optimizer, warmup_steps=4, total_steps=14, min_lr_ratio=0.1)
    assert schedule.lr_factor(0) == pytest.approx(1 / 5)
    assert schedule.lr_factor(3) == pytest.approx(4 / 5)
    assert schedule.lr_factor(4) == pytest.approx(1.0)
    assert schedule.lr_factor(9) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay
    assert schedule.lr_factor(14) == pytest.approx(0.1)
    assert schedule.lr_factor(100) == pytest.approx(0.1)


def test_warmup_multistep_schedule_by_hand() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = WarmupMultiStepLR(optimizer, milestones=[5, 8], gamma=0.1, warmup_steps=3)
    factors = [schedule.lr_factor(step) for step in range(10)]
    assert factors == pytest.approx([1 / 4, 2 / 4, 3 / 4, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])


def test_schedules_reject_bad_arguments() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="total_steps"):
        WarmupCosineLR(optimizer, total_steps=0)
    with pytest.raises(ValueError, match="min_lr_ratio"):
        WarmupCosineLR(optimizer, min_lr_ratio=1.5)
    with pytest.raises(ValueError, match="milestones"):
        WarmupMultiStepLR(optimizer, milestones=[8, 5])
    with pytest.raises(ValueError, match="gamma"):
        WarmupMultiStepLR(optimizer, milestones=[5], gamma=0)
