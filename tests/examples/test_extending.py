"""The four extensions of examples/extending.py behave as docs/extending.md says, and run from a recipe."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))
extending = pytest.importorskip("extending")


def test_mutual_hungarian_keeps_the_optimal_matches_that_are_mutual_nearest_neighbours():
    rng = np.random.default_rng(0)
    for n, m in [(4, 5), (6, 3), (5, 5)]:
        sim = rng.uniform(-1, 1, size=(n, m))
        rows, cols = extending.MutualHungarianMiner()(sim)
        # brute force: the assignment of largest total similarity, then the mutual test by loops
        small, large = (n, m) if n <= m else (m, n)
        best = max(
            itertools.permutations(range(large), small),
            key=lambda p: sum(sim[i, j] if n <= m else sim[j, i] for i, j in enumerate(p)),
        )
        optimal = [(i, j) if n <= m else (j, i) for i, j in enumerate(best)]
        expected = [(i, j) for i, j in optimal if max(sim[i]) == sim[i, j] and max(sim[:, j]) == sim[i, j]]
        assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == sorted(expected)


def test_sigmoid_reliability_matches_its_formula():
    sim = torch.tensor([[0.9, 0.1], [0.2, 0.5]])
    weights = extending.SigmoidReliability(centre=0.5, scale=0.1)(sim, torch.tensor([0, 1]), torch.tensor([0, 1]))
    expected = [1 / (1 + np.exp(-(0.9 - 0.5) / 0.1)), 0.5]
    assert weights.tolist() == pytest.approx(expected)


def test_grayscale_crops_are_the_luma_of_the_inner_crops():
    class Colour:
        def read(self, index, requests, cursor=0):
            return [torch.tensor([200, 100, 0], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 4, 2)]

    (grey,) = extending.GrayscaleCrops(Colour()).read(0, [(1, np.array([0, 1]))])
    assert grey.dtype == torch.uint8 and grey.shape == (2, 3, 4, 2)
    assert (grey == round(0.299 * 200 + 0.587 * 100)).all()  # every channel, every pixel


def test_torchvision_backbone_embeds():
    model = extending.TorchvisionISR(image_size=(64, 32), embed_dim=8).eval()
    out = model.embed(torch.randn(3, 3, 64, 32))
    assert out.shape == (3, 8) and torch.allclose(out.norm(dim=1), torch.ones(3))


@pytest.mark.slow
def test_the_recipe_trains_with_all_four_and_its_checkpoint_loads(tmp_path: Path):
    from isr_lightning import load_model
    from isr_lightning.synth import generate_corpus

    generate_corpus(tmp_path / "videos", num_clips=2, seconds=2, preview=False)
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES), "WANDB_MODE": "offline"}
    bin_dir = Path(sys.executable).parent
    args = ["fit", "--config", "cpu_demo", "--config", str(EXAMPLES / "extending.yaml")]
    args += ["--data.root", str(tmp_path / "videos"), "--trainer.max_steps=2", "--data.init_args.num_workers=0"]
    args += ["--trainer.logger=false", "--trainer.enable_progress_bar=false"]
    command = [str(bin_dir / "isr-lightning"), *args]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    model = load_model(tmp_path / "outputs/cpu_demo/checkpoints/last.ckpt")
    assert type(model).__name__ == "TorchvisionISR"
    assert type(model.pair_miner).__name__ == "MutualHungarianMiner"
    assert type(model.reliability).__name__ == "SigmoidReliability" and model.reliability.centre == 0.5


def test_the_data_module_hook_hands_training_grey_crops(tiny_corpus: Path):
    from isr_lightning.data import BoxSelection

    dm = extending.GrayscaleVideoPairDataModule(root=tiny_corpus, batch_size=2, boxes=BoxSelection(min_box_size=1))
    dm.setup("fit")
    assert isinstance(dm.stream.crops, extending.GrayscaleCrops)
    index = dm.stream.crops.clip_index(0)
    frame = next(iter(index.frames))
    (crops,) = dm.stream.crops.read(0, [(frame, np.arange(len(index.frames[frame])))])
    assert len(crops) > 0 and (crops[:, 0] == crops[:, 1]).all() and (crops[:, 1] == crops[:, 2]).all()
    assert crops.float().std() > 0  # not blank: the frame's people, in grey
