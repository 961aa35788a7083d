"""Logger chosen from the environment, crop throughput, benchmark evaluation from a recipe."""

from __future__ import annotations

import csv
import itertools

import pytest
import torch

from isr_lightning.callbacks import CropThroughput, count_crops
from isr_lightning.loggers import WandbLogger, wandb_online
from isr_lightning.testing import make_frame_pair_batch
from tests.lightning_cli.helpers import TINY


@pytest.mark.parametrize(
    ("key", "mode", "online"),
    [(None, None, False), ("k" * 40, None, True), ("k" * 40, "offline", False), ("k" * 40, "disabled", False)],
)
def test_wandb_online_follows_environment(monkeypatch, key, mode, online):
    for name, value in (("WANDB_API_KEY", key), ("WANDB_MODE", mode)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert wandb_online() is online
    assert WandbLogger(save_dir="unused")._offline is (not online)
    assert WandbLogger(save_dir="unused", offline=True)._offline is True


class _Recorder:
    def __init__(self) -> None:
        self.logged: dict[str, list[float]] = {}

    def log(self, name: str, value: float, **kwargs) -> None:
        self.logged.setdefault(name, []).append(value)


class _Trainer:
    world_size = 2


def test_crop_throughput_counts_crops_over_wall_time(monkeypatch):
    clock = itertools.count(start=100.0, step=0.5)  # every batch ends 0.5 s after the previous
    monkeypatch.setattr("isr_lightning.callbacks.time.perf_counter", lambda: next(clock))
    batch = make_frame_pair_batch(3, image_size=(16, 8), seed=0)
    module, callback = _Recorder(), CropThroughput(window=2)
    callback.on_train_epoch_start(_Trainer(), module)
    for i in range(5):  # the first batch starts the clock; then 2 windows of 2 batches
        callback.on_train_batch_end(_Trainer(), module, None, batch, i)
    expected = batch.num_crops * 2 / 0.5  # 2 ranks
    assert module.logged["train/crops_per_sec"] == pytest.approx([expected, expected])
    assert module.logged["train/sec_per_step"] == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError):
        CropThroughput(window=0)


def test_count_crops():
    assert count_crops(torch.zeros(5, 3, 4, 4)) == 5
    assert count_crops((torch.zeros(4, 3), ["a"] * 4)) == 4
    assert count_crops({"image": torch.zeros(6, 3)}) == 6
    with pytest.raises(TypeError):
        count_crops("batch")


@pytest.mark.slow
def test_fit_logs_throughput_lr_and_benchmark_metrics(run_cli, tiny_corpus, tiny_benchmark, tmp_path):
    run_cli(
        "isr-lightning",
        "fit",
        "--config",
        "cpu_demo",
        "--data.root",
        str(tiny_corpus),
        *TINY,
        "--trainer.max_steps=4",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir=logs",
        "--trainer.callbacks+=isr_lightning.callbacks.CropThroughput",
        "--trainer.callbacks.window=1",
        "--trainer.callbacks+=lightning.pytorch.callbacks.LearningRateMonitor",
        "--trainer.callbacks+=isr_lightning.evaluation.callback.ReIDBenchmarkEvaluation",
        f"--trainer.callbacks.root={tiny_benchmark}",
        "--trainer.callbacks.dataset=folder",
    )
    (metrics,) = tmp_path.glob("logs/**/metrics.csv")
    with open(metrics) as f:
        rows = list(csv.DictReader(f))
    assert any(float(r["train/crops_per_sec"] or 0) > 0 for r in rows)
    assert any(r.get("lr-AdamW/head") for r in rows) and any(r.get("lr-AdamW/backbone") for r in rows)
    ranks = [float(r["reid/rank1"]) for r in rows if r.get("reid/rank1")]
    assert len(ranks) == 2 and all(0.0 <= v <= 1.0 for v in ranks)  # batches_per_epoch=2: 2 epochs
    assert len(list(tmp_path.glob("logs/**/reid_ranked_lists/*.png"))) == 2
