"""Fixtures: a tiny trained isr-lightning checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch import seed_everything
from torch.utils.data import DataLoader

from isr_lightning import ISRModule
from isr_lightning.testing import BatchList, make_frame_pair_batch
from tests.checkpoints.helpers import TINY_VIT, tiny_trainer


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Lightning checkpoint of a tiny ``test_vit`` ISRModule after one training step."""
    root = tmp_path_factory.mktemp("trained")
    seed_everything(0)
    model = ISRModule(**TINY_VIT, embed_dim=16)
    trainer = tiny_trainer(root, max_steps=1)
    trainer.fit(model, DataLoader(BatchList([make_frame_pair_batch(3)]), batch_size=None))
    trainer.save_checkpoint(root / "model.ckpt")
    return root / "model.ckpt"
