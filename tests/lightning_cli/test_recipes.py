"""Every shipped recipe trains for 2 steps through both entry points (``isr-lightning``, ``lightning``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from isr_lightning.lightning_cli import recipe_path
from tests.lightning_cli.helpers import TINY

RECIPES = ["cpu_demo", "resnet50", "swin_b"]


def _metrics(tmp_path: Path) -> list[dict[str, str]]:
    files = sorted(tmp_path.glob("logs/**/metrics.csv"))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("entry", ["isr-lightning", "lightning"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_fit_shipped_recipe(recipe, entry, run_cli, tiny_corpus, tmp_path):
    # bare recipe name for isr-lightning, the file path for lightning; --data.root short form
    config = recipe if entry == "isr-lightning" else str(recipe_path(recipe))
    result = run_cli(
        entry,
        "fit",
        "--config",
        config,
        "--data.root",
        str(tiny_corpus),
        *TINY,
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir=logs",
    )
    # Step-based training: the progress bar counts steps out of max_steps, not "Epoch 0/-2".
    shown = (result.stdout + result.stderr).replace("\r", "\n")
    assert "Step" in shown and "2/2" in shown and "/-2" not in shown
    (saved,) = tmp_path.glob("logs/**/config.yaml")
    recipe_precision = yaml.safe_load(recipe_path(recipe).read_text())["trainer"].get("precision")
    assert yaml.safe_load(saved.read_text())["trainer"]["precision"] == recipe_precision  # bf16-mixed: GPU recipes
    rows = _metrics(tmp_path)
    steps = {int(r["step"]) for r in rows if r.get("train/loss")}
    assert steps == {0, 1}  # max_steps=2 and log_every_n_steps=1 were applied
    assert all(float(r["train/loss"]) > 0 for r in rows if r.get("train/loss"))
    if recipe != "cpu_demo":  # the GPU recipes monitor the learning rate
        assert any(r.get("lr-AdamW/head") for r in rows) and any(r.get("lr-AdamW/backbone") for r in rows)
    # every recipe leaves its last step in its documented folder and says where
    last = tmp_path / f"outputs/{recipe}/checkpoints/last.ckpt"
    assert f"checkpoint: {last.resolve()}" in result.stdout
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2
    assert ckpt["hyper_parameters"]["backbone"] == "resnet10t"
    assert ckpt["hyper_parameters"]["embed_dim"] == 32


def test_recipes_declare_hardware_and_match_image_sizes():
    for recipe in RECIPES:
        path = recipe_path(recipe)
        text = path.read_text()
        assert "Hardware:" in text and "Reproduces:" in text, f"{path} header"
        config = yaml.safe_load(text)
        model, data = config["model"]["init_args"], config["data"]["init_args"]
        assert "image_size" in model and "image_size" not in data.get("transform", {}), recipe  # stated once
    swin = yaml.safe_load(recipe_path("swin_b").read_text())
    assert swin["model"]["init_args"]["backbone"] == "swin_base_patch4_window7_224"
    assert swin["model"]["init_args"]["embed_dim"] == 512
    assert swin["trainer"]["precision"] == "bf16-mixed"
