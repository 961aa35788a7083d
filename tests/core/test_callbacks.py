"""TrainingTimeBudget plans the run from measured step time and ends the schedule with it;
the step progress bars count steps out of max_steps."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader

from isr_lightning import ISRModule, WarmupCosineLR
from isr_lightning.callbacks import RichStepProgressBar, TQDMStepProgressBar, TrainingTimeBudget
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


class _Linear(LightningModule):
    """One weight, three batches an epoch: step-based runs roll over epochs quickly."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return DataLoader(torch.randn(6, 2), batch_size=2)


class _RichProbe(RichStepProgressBar):
    seen: list

    def on_train_batch_end(self, trainer, *args) -> None:
        super().on_train_batch_end(trainer, *args)
        task = self.progress.tasks[self.train_progress_bar_id]
        self.seen = [*getattr(self, "seen", []), (task.description, task.completed, task.total)]


class _TQDMProbe(TQDMStepProgressBar):
    seen: list

    def on_train_batch_end(self, trainer, *args) -> None:
        super().on_train_batch_end(trainer, *args)
        bar = self.train_progress_bar
        self.seen = [*getattr(self, "seen", []), (bar.desc, bar.n, bar.total)]


@pytest.mark.parametrize("probe", [_RichProbe, _TQDMProbe])
def test_step_progress_bars_count_steps_across_epochs(tmp_path: Path, probe) -> None:
    bar = probe()
    trainer = Trainer(
        accelerator="cpu",
        max_steps=7,  # 3 batches an epoch: epochs 0, 1 and part of 2
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[bar],
        default_root_dir=tmp_path,
    )
    trainer.fit(_Linear())
    assert [(desc.split("]")[-1].rstrip(": "), n, total) for desc, n, total in bar.seen] == [
        ("Step", step, 7) for step in range(1, 8)
    ]


@pytest.mark.parametrize("probe", [_RichProbe, _TQDMProbe])
def test_step_progress_bars_keep_epochs_for_epoch_based_training(tmp_path: Path, probe) -> None:
    bar = probe()
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[bar],
        default_root_dir=tmp_path,
    )
    trainer.fit(_Linear())
    desc, n, total = bar.seen[-1]
    assert "Epoch 1" in desc and (n, total) == (3, 3)  # Lightning's own display, batches of the epoch
