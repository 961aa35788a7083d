"""Helpers of the top-level tests: a tiny ViT and a quiet CPU trainer."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import Trainer

__all__ = ["TINY_VIT", "tiny_trainer"]

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
