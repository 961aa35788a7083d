"""Fixtures of the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.videohelpers import MOT17_MINI, make_clip


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 64x48 clips of 24 frames with 3 people each."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(8):
        make_clip(root / f"cam{i % 2}", f"clip{i}", seed=i, gt=True)
    return root


@pytest.fixture
def mot17_mini() -> Path:
    if not MOT17_MINI.is_dir():
        pytest.skip(f"{MOT17_MINI} not present")
    return MOT17_MINI.resolve()
