"""A stand-in LightningModule with the callback's contract, and a tiny Market-layout folder."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# Colour of each person id: embeddings of a colour are close, so retrieval is easy to predict.
COLORS = {1: (200, 30, 30), 2: (30, 200, 30), 3: (30, 30, 200), 4: (200, 200, 30), 0: (90, 90, 90)}


class TinyReID(pl.LightningModule):
    """Has only what the callback relies on: ``embed`` and ``data_config``."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(3 * 2, 16, generator=g))
        self.embed_calls = 0

    @property
    def data_config(self) -> dict:
        return {"input_size": (3, 16, 8), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        self.embed_calls += 1
        h = images.shape[2] // 2  # mean colour of the top and bottom halves: not flip-invariant
        top, bottom = images[:, :, :h].mean((2, 3)), images[:, :, h:].mean((2, 3))
        left = images[:, :, :, : images.shape[3] // 2].mean((2, 3))
        x = torch.cat([top + 0.3 * left, bottom], 1)
        return F.normalize(x @ self.proj, dim=1)

    def training_step(self, batch, batch_idx):
        return (self.proj**2).sum() * 0.0 + self.proj.sum() * 0.0

    def validation_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def make_colored_market(root: Path, seed: int = 0) -> Path:
    """query: ids 1-4 on camera 1; gallery: each id on cameras 1 and 2, plus distractors/junk."""
    rng = np.random.default_rng(seed)

    def save(folder: str, name: str, pid: int) -> None:
        base = np.array(COLORS[pid], dtype=np.float64)
        arr = np.clip(base + rng.normal(0, 12, (32, 16, 3)), 0, 255).astype(np.uint8)
        arr[:8, :8] = 255 - arr[:8, :8]  # an asymmetric patch: flipping changes the embedding
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / folder / name)

    for pid in (1, 2, 3, 4):
        save("query", f"{pid:04d}_c1s1_000001_01.jpg", pid)
        save("bounding_box_test", f"{pid:04d}_c1s1_000002_01.jpg", pid)  # same camera: removed
        save("bounding_box_test", f"{pid:04d}_c2s1_000003_01.jpg", pid)
        save("bounding_box_test", f"{pid:04d}_c3s1_000004_01.jpg", pid)
    for k in range(3):
        save("bounding_box_test", f"0000_c2s1_00001{k}_01.jpg", 0)
    save("bounding_box_test", "-1_c2s1_000020_01.jpg", 1)  # junk looking like id 1: dropped
    return root
