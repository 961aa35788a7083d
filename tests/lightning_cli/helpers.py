"""Helpers of the command-line tests: the tiny recipe overrides and the installed commands."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["BIN", "TINY", "command"]

BIN = Path(sys.executable).parent

# Shrinks a shipped recipe to seconds on a CPU; the recipe keeps its precision (CPU autocast
# runs bf16-mixed through the same code path as CUDA).
TINY = [
    "--model.init_args.backbone=resnet10t",
    "--model.init_args.pretrained=false",
    "--model.init_args.weights=null",  # the CPU demo's bundled ImageNet weights fit its MobileNetV2 only
    "--model.init_args.frozen_modules=[]",
    "--model.init_args.embed_dim=32",
    "--trainer.max_steps=2",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.strategy=auto",
    "--trainer.log_every_n_steps=1",
    "--data.init_args.num_workers=0",
    "--data.init_args.pin_memory=false",
    "--data.init_args.batch_size=2",
    "--data.init_args.batches_per_epoch=2",
    "--model.init_args.image_size=[64,32]",
]


def command(name: str) -> list[str]:
    """The installed console script ``name``, or its ``python -c`` equivalent if not installed."""
    script = BIN / name
    if script.exists() or shutil.which(name):
        return [str(script) if script.exists() else name]
    target = {"isr-lightning": "isr_lightning.cli:main", "lightning": "isr_lightning.lightning_cli:generic_main"}[name]
    module, function = target.split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {function} as f; sys.exit(f())"]
