"""TrainingTimeBudget plans the run from measured step time and ends the schedule with it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader

from isr_lightning import ISRModule, WarmupCosineLR
from isr_lightning.callbacks import TrainingTimeBudget
from isr_lightning.testing import BatchList, make_frame_pair_batch


class SlowStep(Callback):
    """Makes every step take at least 0.2 s, so the plan depends on a known step time."""

    def on_train_batch_end(self, *args: object) -> None:
        time.sleep(0.2)


def _fit(tmp_path: Path, slow: Callback, budget: TrainingTimeBudget) -> Trainer:
    """Train a tiny model on up to 1000 generated batches under ``budget``."""
    model = ISRModule(
        backbone="test_vit",
        backbone_kwargs={"img_size": (32, 16), "patch_size": 8},
        image_size=(32, 16),
        embed_dim=8,
        lr_scheduler=lambda opt: WarmupCosineLR(opt, warmup_steps=1),
    )
    trainer = Trainer(
        accelerator="cpu",
        max_steps=1000,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[slow, budget],
    )
    trainer.fit(model, DataLoader(BatchList([make_frame_pair_batch(2, seed=s) for s in range(1000)]), batch_size=None))
    return trainer


def test_budget_sets_max_steps_and_cosine_length(tmp_path: Path) -> None:
    budget = TrainingTimeBudget(minutes=3.0 / 60, calibration_steps=2)  # 3 s
    trainer = _fit(tmp_path, SlowStep(), budget)
    # at >= 0.2 s per step, 3 s hold at most 15 steps; the plan is what was run
    assert budget.planned_steps is not None and 3 <= budget.planned_steps <= 15
    assert trainer.global_step == budget.planned_steps
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == budget.planned_steps
    assert scheduler.lr_factor(budget.planned_steps) == pytest.approx(scheduler.min_lr_ratio)


class SlowStart(Callback):
    """A first step that carries 1.5 s of start-up (workers, caches), then 0.1 s steps."""

    def on_train_batch_end(self, trainer: Trainer, *args: object) -> None:
        time.sleep(1.5 if trainer.global_step == 1 else 0.1)


def test_budget_excludes_start_up_from_the_step_time(tmp_path: Path) -> None:
    budget = TrainingTimeBudget(minutes=4.0 / 60, calibration_steps=3)  # 4 s
    start = time.perf_counter()
    trainer = _fit(tmp_path, SlowStart(), budget)
    elapsed = time.perf_counter() - start
    # 1.5 s of start-up leave at most 25 steps of >= 0.1 s; counting the start-up as step
    # time (about 1.8 s for the first 3 steps) would have planned about 6 steps
    assert budget.planned_steps is not None and 15 <= budget.planned_steps <= 26
    assert trainer.global_step == budget.planned_steps
    assert elapsed > 3.0


def test_budget_validates_arguments() -> None:
    with pytest.raises(ValueError, match="minutes"):
        TrainingTimeBudget(minutes=0)
    with pytest.raises(ValueError, match="calibration_steps"):
        TrainingTimeBudget(minutes=1, calibration_steps=0)
