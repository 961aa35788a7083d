"""The fine-tuning recipes train through the command line; finetune_cpu starts from a demo-shaped ISR checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from isr_lightning import ISRModule
from isr_lightning.lightning_cli import recipe_path

RECIPES = ["finetune_cpu", "finetune_market", "finetune_msmt17"]

# Shrinks a recipe to seconds on a CPU, on the rendered Market-layout folder of conftest.py.
SMALL = [
    "--data.init_args.dataset=folder",
    "--data.init_args.synthetic=null",
    "--data.init_args.ids_per_batch=4",
    "--data.init_args.images_per_id=2",
    "--data.init_args.num_workers=0",
    "--data.init_args.pin_memory=false",
    "--trainer.max_steps=2",
    "--trainer.val_check_interval=2",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.strategy=auto",
    "--trainer.precision=32",
    "--trainer.log_every_n_steps=1",
    "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
    "--trainer.logger.save_dir=logs",
]
TINY_MODEL = [
    "--model.init_args.backbone=test_resnet",
    "--model.init_args.pretrained=false",
    "--model.init_args.weights=null",
    "--model.init_args.backbone_kwargs={}",
    "--model.init_args.image_size=[32,16]",
]


def _rows(tmp_path: Path) -> list[dict[str, str]]:
    (path,) = tmp_path.glob("logs/**/metrics.csv")
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("recipe", ["finetune_market", "finetune_msmt17"])
def test_gpu_recipes_train_shrunk_to_cpu(recipe: str, run_cli, market_folder: Path, tmp_path: Path) -> None:
    run_cli("isr-lightning", "fit", "--config", recipe, "--data.root", str(market_folder), *SMALL, *TINY_MODEL)
    rows = _rows(tmp_path)
    assert {int(r["step"]) for r in rows if r.get("train/loss")} == {0, 1}
    assert any(r.get("val/mAP") for r in rows)
    optimizer = "Adam" if recipe == "finetune_market" else "SGD"
    assert any(r.get(f"lr-{optimizer}/head") for r in rows) and any(r.get(f"lr-{optimizer}/backbone") for r in rows)
    ckpt = torch.load(tmp_path / f"outputs/{recipe}/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2
    assert ckpt["hyper_parameters"]["backbone"] == "test_resnet" and ckpt["hyper_parameters"]["num_classes"] == 12


@pytest.mark.slow
def test_finetune_cpu_from_a_demo_checkpoint(run_cli, market_folder: Path, tmp_path: Path) -> None:
    # an ISR checkpoint with the demo's architecture, as `isr-lightning demo` writes it
    demo = yaml.safe_load(recipe_path("cpu_demo").read_text())["model"]["init_args"]
    isr = ISRModule(backbone=demo["backbone"], embed_dim=demo["embed_dim"], image_size=tuple(demo["image_size"]))
    torch.save({"state_dict": isr.state_dict()}, tmp_path / "isr.ckpt")
    result = run_cli(
        "isr-lightning",
        "fit",
        "--config",
        "finetune_cpu",
        "--model.init_args.weights=isr.ckpt",
        "--data.root",
        str(market_folder),
        *SMALL,
    )
    assert "validation at step 2: rank-1" in result.stderr + result.stdout
    rows = _rows(tmp_path)
    assert any(r.get("val/rank1") for r in rows) and any(r.get("train/accuracy") for r in rows)
    ckpt = tmp_path / "outputs/finetune_cpu/checkpoints/last.ckpt"  # the recipe's RunCheckpoint
    assert f"checkpoint: {ckpt.resolve()}" in result.stdout
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert state["projection.weight"].shape == isr.projection.weight.shape


def test_recipes_declare_hardware_and_match_image_sizes() -> None:
    demo = yaml.safe_load(recipe_path("cpu_demo").read_text())["model"]["init_args"]
    for recipe in RECIPES:
        text = recipe_path(recipe).read_text()
        assert "Hardware:" in text and "Reproduces:" in text, recipe
        config = yaml.safe_load(text)
        model, data = config["model"]["init_args"], config["data"]["init_args"]
        assert config["model"]["class_path"] == "isr_lightning.finetune.ReIDFineTuneModule"
        assert "image_size" in model and "image_size" not in data.get("transform", {}), recipe  # stated once
    cpu = yaml.safe_load(recipe_path("finetune_cpu").read_text())["model"]["init_args"]
    # the demo's checkpoint must load: same backbone, embedding and crop size
    assert [cpu[k] for k in ("backbone", "embed_dim", "image_size")] == [
        demo[k] for k in ("backbone", "embed_dim", "image_size")
    ]


def test_missing_data_root_ends_in_one_line(run_cli) -> None:
    result = run_cli("isr-lightning", "fit", "--config", "finetune_cpu", "--data.init_args.synthetic=null", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("isr-lightning fit: error: the data root is missing (--data.root DIR")
    assert "Market-1501" in last and "docs/finetune.md" in last
