"""Real 2-process gloo DDP through Lightning: the P x K split across ranks, and validation."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from isr_lightning.data.transforms import CropTransform
from isr_lightning.finetune import ReIDFineTuneModule, ReIDTrainDataModule
from isr_lightning.finetune.sampler import PKSampler
from tests.finetune.helpers import NUM_TRAIN_IDENTITIES


class _SeenIdentities(pl.Callback):
    """Each rank writes the identity labels of its batches, step by step."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: list[list[int]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        self.seen.append(sorted(set(batch["pid"].tolist())))

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))


def _data(root: Path) -> ReIDTrainDataModule:
    transform = CropTransform(image_size=(32, 16), mean=(0.5,) * 3, std=(0.5,) * 3)
    return ReIDTrainDataModule(
        root, dataset="folder", transform=transform, ids_per_batch=3, images_per_id=2, num_workers=0
    )


def _trainer(devices: int, **kwargs: object) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=devices,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


@pytest.mark.slow
def test_two_ranks_disjoint_identities_equal_batches_and_validation(market_folder: Path, tmp_path: Path) -> None:
    pl.seed_everything(0)
    model = ReIDFineTuneModule(backbone="test_resnet", embed_dim=16, image_size=(32, 16))
    trainer = _trainer(2, strategy="ddp_spawn", max_epochs=1, callbacks=[_SeenIdentities(tmp_path)])
    trainer.fit(model, datamodule=_data(market_folder))

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    labels = [item.pid for item in _data(market_folder).train_dataloader().dataset.items]
    expected_batches = PKSampler(labels, 3, 2, num_replicas=2).num_batches
    assert len(ranks[0]) == len(ranks[1]) == expected_batches  # Lightning kept the P x K sampler
    for ids0, ids1 in zip(*ranks, strict=True):
        assert len(ids0) == len(ids1) == 3 and not set(ids0) & set(ids1)
    assert {i for rank in ranks for ids in rank for i in ids} == set(range(NUM_TRAIN_IDENTITIES))

    # the validation of 2 ranks (query and gallery split by DistributedSampler) equals 1 process
    ddp_metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    single = _trainer(1).validate(model, datamodule=_data(market_folder), verbose=False)[0]
    assert set(ddp_metrics) == {f"val/{k}" for k in ("rank1", "rank5", "rank10", "mAP", "mINP")}
    for name, value in ddp_metrics.items():
        assert single[name] == pytest.approx(value, abs=1e-6), name
    assert torch.isfinite(torch.tensor(list(ddp_metrics.values()))).all()
