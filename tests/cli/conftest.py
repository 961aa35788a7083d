"""Fixtures for the command-line tests: tiny synthetic data and a runner for the installed commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

# Shrinks a shipped recipe to seconds on a CPU.
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
    "--trainer.precision=32",
    "--trainer.log_every_n_steps=1",
    "--data.init_args.num_workers=0",
    "--data.init_args.pin_memory=false",
    "--data.init_args.batch_size=2",
    "--data.init_args.batches_per_epoch=2",
    "--data.init_args.image_size=[64,32]",
    "--model.init_args.image_size=[64,32]",
]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 2-second 160x90 synthetic clips with detections (rendered once per session)."""
    from isr_lightning.synth import generate_corpus

    root = tmp_path_factory.mktemp("cli_corpus")
    generate_corpus(root, num_clips=2, seconds=2, width=160, height=90, preview=False)
    return root


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Market-1501-layout benchmark of 6 synthetic identities in 2 cameras."""
    from isr_lightning.synth import generate_benchmark

    root = tmp_path_factory.mktemp("cli_benchmark")
    generate_benchmark(root, num_identities=6, num_cameras=2, num_distractors=4, num_junk=2, preview=False)
    return root


def command(name: str) -> list[str]:
    """The installed console script ``name``, or its ``python -c`` equivalent if not installed."""
    script = BIN / name
    if script.exists() or shutil.which(name):
        return [str(script) if script.exists() else name]
    target = {"isr-lightning": "isr_lightning.cli:main", "lightning": "isr_lightning.lightning_cli:generic_main"}[name]
    module, function = target.split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {function} as f; sys.exit(f())"]


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run an installed command in ``tmp_path``; fails the test with stderr on a non-zero exit."""

    def run(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "WANDB_SILENT": "true"}
        env.pop("WANDB_API_KEY", None)
        result = subprocess.run(
            [*command(name), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        if check:
            assert result.returncode == 0, f"{name} {' '.join(args)}\n{result.stderr[-3000:]}"
        return result

    return run
