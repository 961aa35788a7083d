"""``--print_config`` round trip, several ``--config`` files, recipe names, help."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from isr_lightning.lightning_cli import build_from_config, recipe_path, resolve_recipes
from tests.lightning_cli.helpers import TINY


def test_print_config_round_trips_and_fits(run_cli, tiny_corpus, tmp_path):
    first = run_cli(
        "isr-lightning", "fit", "--config", "resnet50", "--data.root", str(tiny_corpus), *TINY, "--print_config"
    ).stdout
    config = yaml.safe_load(first)
    assert config["model"]["class_path"] == "isr_lightning.ISRModule"
    assert config["model"]["init_args"]["backbone"] == "resnet10t"  # override applied
    assert config["data"]["init_args"]["root"] == str(tiny_corpus)  # --data.root short form
    assert config["trainer"]["max_steps"] == 2
    saved = tmp_path / "saved.yaml"
    saved.write_text(first)
    second = run_cli("lightning", "fit", "--config", str(saved), "--print_config").stdout
    assert yaml.safe_load(second) == config
    # the saved config trains as is (the logger swapped for a local one)
    run_cli("isr-lightning", "fit", "--config", str(saved), "--trainer.logger=lightning.pytorch.loggers.CSVLogger")
    assert (tmp_path / "outputs/resnet50/checkpoints/last.ckpt").is_file()


def test_later_config_files_override_earlier(tmp_path, tiny_corpus):
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "model:\n  init_args:\n    embed_dim: 24\n    backbone: resnet10t\n    weights: null\n    frozen_modules: []\n"
        "trainer:\n  max_steps: 7\n"
    )
    cli = build_from_config(
        "cpu_demo",
        ["--config", str(extra), f"--data.root={tiny_corpus}", "--trainer.logger=false"],
    )
    assert cli.model.hparams.embed_dim == 24
    assert cli.model.hparams.backbone == "resnet10t"
    assert cli.model.hparams.temperature == 0.1  # kept from the first file
    assert cli.trainer.max_steps == 7
    assert cli.datamodule.root == str(tiny_corpus)


def test_resolve_recipes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = str(recipe_path("cpu_demo"))
    assert resolve_recipes(["fit", "--config", "cpu_demo"]) == ["fit", "--config", demo]
    assert resolve_recipes(["fit", "--config=swin_b"]) == ["fit", f"--config={recipe_path('swin_b')}"]
    # files and unknown names are left to the parser
    Path("cpu_demo").write_text("trainer: {}\n")
    assert resolve_recipes(["--config", "cpu_demo"]) == ["--config", "cpu_demo"]
    assert resolve_recipes(["--config", "nope"]) == ["--config", "nope"]
    assert resolve_recipes(["--config", "my/cpu_demo.yaml"]) == ["--config", "my/cpu_demo.yaml"]
    with pytest.raises(FileNotFoundError, match="available"):
        recipe_path("nope")


def test_unknown_recipe_is_a_clear_error(run_cli):
    result = run_cli("isr-lightning", "fit", "--config", "no_such_recipe", check=False)
    assert result.returncode != 0
    assert "no_such_recipe" in result.stderr
