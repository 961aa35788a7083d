"""Fixtures for the fine-tuning tests: a small rendered Market-layout folder with a training split."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.finetune.helpers import NUM_TRAIN_IDENTITIES


@pytest.fixture(scope="session")
def market_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Market-1501 layout: 8 test identities (query/gallery) and 12 training identities, 3 cameras."""
    from isr_lightning.synth import generate_benchmark

    root = tmp_path_factory.mktemp("finetune_market")
    generate_benchmark(
        root,
        num_identities=8,
        num_cameras=3,
        num_distractors=4,
        num_junk=3,
        num_train_identities=NUM_TRAIN_IDENTITIES,
        image_width=32,
        image_height=64,
        preview=False,
    )
    return root
