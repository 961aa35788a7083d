"""Fixtures: a tiny trained isr-lightning checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch import Trainer, seed_everything
from torch.utils.data import DataLoader

from isr_lightning import ISRModule
from isr_lightning.testing import BatchList, make_frame_pair_batch

TINY_VIT = {"backbone": "test_vit", "backbone_kwargs": {"img_size": (32, 16), "patch_size": 8}, "image_size": (32, 16)}


def tiny_trainer(root: Path, **kwargs: object) -> Trainer:
    options = {
        "accelerator": "cpu",
        "default_root_dir": root,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    options.update(kwargs)
    return Trainer(**options)


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
