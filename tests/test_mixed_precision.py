"""bf16 mixed precision: mining and the loss run in float32 whatever the autocast state.

CPU autocast takes the same path as CUDA autocast (``torch.autocast(device_type, bfloat16)``),
so these tests cover the GPU recipes' ``precision: bf16-mixed`` on a machine without a GPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from lightning.pytorch import Trainer, seed_everything
from torch.utils.data import DataLoader

from isr_lightning import ISRModule
from isr_lightning.losses import reliability_weighted_info_nce
from isr_lightning.matching import HungarianMiner
from isr_lightning.pairs import mine_batch_pairs
from isr_lightning.reliability import BidirectionalReliability
from isr_lightning.testing import BatchList, make_frame_pair_batch


def _bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_pairs_mined_under_bf16_autocast_equal_the_float32_pairs() -> None:
    batch = make_frame_pair_batch(6, seed=1)
    torch.manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(batch.num_crops, 32), dim=1)
    miner, reliability = HungarianMiner(), BidirectionalReliability()
    reference = mine_batch_pairs(embeddings, batch.pair_index, batch.frame_side, miner, reliability)
    with _bf16():
        assert (embeddings @ embeddings.t()).dtype == torch.bfloat16  # autocast is really on
        mixed = mine_batch_pairs(embeddings, batch.pair_index, batch.frame_side, miner, reliability)
    assert torch.equal(mixed.anchors, reference.anchors) and torch.equal(mixed.positives, reference.positives)
    torch.testing.assert_close(mixed.weights, reference.weights, rtol=0, atol=0)
    torch.testing.assert_close(mixed.similarities, reference.similarities, rtol=0, atol=0)


def test_loss_under_bf16_autocast_is_the_float32_loss() -> None:
    torch.manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(20, 16), dim=1)
    anchors, positives, weights = torch.arange(0, 10), torch.arange(10, 20), torch.rand(10)
    reference = reliability_weighted_info_nce(embeddings, anchors, positives, weights, 0.1)
    with _bf16():
        mixed = reliability_weighted_info_nce(embeddings, anchors, positives, weights, 0.1)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, reference, rtol=0, atol=0)


def test_two_training_steps_under_bf16_mixed(tmp_path: Path) -> None:
    seed_everything(0)
    model = ISRModule(backbone="resnet10t", image_size=(32, 16), embed_dim=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(
        accelerator="cpu",
        precision="bf16-mixed",
        max_steps=2,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    batches = [make_frame_pair_batch(4, seed=s) for s in range(2)]
    trainer.fit(model, DataLoader(BatchList(batches), batch_size=None))
    assert trainer.global_step == 2
    assert math.isfinite(trainer.callback_metrics["train/loss"].item())
    assert not torch.equal(before["projection.weight"], model.state_dict()["projection.weight"])
