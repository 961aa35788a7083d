"""TrainingTimeBudget plans the run from measured step time and ends the schedule with it;
the step progress bars count steps out of max_steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader

from isr_lightning import ISRModule, WarmupCosineLR
from isr_lightning.callbacks import RichStepProgressBar, TQDMStepProgressBar, TrainingTimeBudget
from isr_lightning.testing import BatchList, make_frame_pair_batch


class StepClock(Callback):
    """A clock that only moves when a step ends: by ``first`` seconds at step 1, ``step`` after.

    Listed before the budget, so the budget reads the clock after this step's time was added.
    """

    def __init__(self, first: float, step: float) -> None:
        self.now = 0.0
        self.first, self.step = first, step

    def on_train_batch_end(self, trainer: Trainer, *args: object) -> None:
        self.now += self.first if trainer.global_step == 1 else self.step


def _fit(tmp_path: Path, clock: StepClock, budget: TrainingTimeBudget) -> Trainer:
    """Train a tiny model under ``budget`` (``max_steps=1000``), timed by ``clock``."""
    budget.clock = lambda: clock.now
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
        callbacks=[clock, budget],
    )
    trainer.fit(model, DataLoader(BatchList([make_frame_pair_batch(2, seed=s) for s in range(32)]), batch_size=None))
    return trainer


def test_budget_sets_max_steps_and_cosine_length(tmp_path: Path) -> None:
    budget = TrainingTimeBudget(minutes=2.0 / 60, calibration_steps=2)  # 2 s
    trainer = _fit(tmp_path, StepClock(first=0.25, step=0.25), budget)
    # timed steps 2-3: 0.25 s each; at step 3 the clock reads 0.75 s: 1.25 s hold 5 more steps
    assert budget.planned_steps == 3 + 5
    assert trainer.global_step == budget.planned_steps
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == budget.planned_steps
    assert scheduler.lr_factor(budget.planned_steps) == pytest.approx(scheduler.min_lr_ratio)


def test_budget_excludes_start_up_from_the_step_time(tmp_path: Path) -> None:
    budget = TrainingTimeBudget(minutes=2.0 / 60, calibration_steps=3)  # 2 s
    trainer = _fit(tmp_path, StepClock(first=1.0, step=0.125), budget)
    # steps 2-4 take 0.125 s; at step 4 the clock reads 1.375 s: 0.625 s hold 5 more steps.
    # Counting the 1 s start-up as step time (0.34 s per step) would have planned 4 + 1.
    assert budget.planned_steps == 4 + 5
    assert trainer.global_step == budget.planned_steps


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


def _fit_with_bar(tmp_path: Path, bar, **limits):
    """Train ``_Linear`` with ``bar`` as the progress bar for ``max_steps`` or ``max_epochs``."""
    trainer = Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[bar],
        default_root_dir=tmp_path,
        **limits,
    )
    trainer.fit(_Linear())
    return bar


@pytest.mark.parametrize("probe", [_RichProbe, _TQDMProbe])
def test_step_progress_bars_count_steps_across_epochs(tmp_path: Path, probe) -> None:
    bar = _fit_with_bar(tmp_path, probe(), max_steps=7)  # 3 batches an epoch: epochs 0, 1 and part of 2
    assert [(desc.split("]")[-1].rstrip(": "), n, total) for desc, n, total in bar.seen] == [
        ("Step", step, 7) for step in range(1, 8)
    ]


@pytest.mark.parametrize("probe", [_RichProbe, _TQDMProbe])
def test_step_progress_bars_keep_epochs_for_epoch_based_training(tmp_path: Path, probe) -> None:
    bar = _fit_with_bar(tmp_path, probe(), max_epochs=2)
    desc, n, total = bar.seen[-1]
    assert "Epoch 1" in desc and (n, total) == (3, 3)  # Lightning's own display, batches of the epoch


class FailAt(Callback):
    """Raises in the training loop once ``step`` optimizer steps are done."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: Trainer, *args: object) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("node lost")


def _checkpointed_fit(root: Path, max_steps: int, every: int, extra: list[Callback] | None = None) -> Trainer:
    from isr_lightning.callbacks import RunCheckpoint

    model = ISRModule(
        backbone="test_vit", backbone_kwargs={"img_size": (32, 16), "patch_size": 8}, image_size=(32, 16), embed_dim=8
    )
    trainer = Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        default_root_dir=root,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[RunCheckpoint(every_n_train_steps=every), *(extra or [])],
    )
    trainer.fit(model, DataLoader(BatchList([make_frame_pair_batch(2, seed=s) for s in range(16)]), batch_size=None))
    return trainer


def test_run_checkpoint_leaves_the_last_step_in_the_root_folder(tmp_path: Path) -> None:
    from isr_lightning.lightning_cli import checkpoint_report

    trainer = _checkpointed_fit(tmp_path, max_steps=7, every=3)  # saves at 3 and 6; training ends at 7
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]
    assert torch.load(last, weights_only=True)["global_step"] == 7
    assert checkpoint_report(trainer) == f"checkpoint: {last.resolve()}"


def test_run_checkpoint_saves_when_training_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="node lost"):
        _checkpointed_fit(tmp_path, max_steps=20, every=100, extra=[FailAt(5)])
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 5


def test_checkpoint_report_says_when_nothing_was_kept(tmp_path: Path) -> None:
    from isr_lightning.lightning_cli import checkpoint_report

    trainer = Trainer(accelerator="cpu", enable_checkpointing=False, logger=False, default_root_dir=tmp_path)
    assert "no checkpoint was written" in checkpoint_report(trainer) and "RunCheckpoint" in checkpoint_report(trainer)
