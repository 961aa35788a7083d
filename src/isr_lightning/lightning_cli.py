"""LightningCLI for ``isr-lightning fit|validate|test|predict`` and the shipped recipes.

Model and data are chosen by ``class_path`` in the config (any LightningModule and
LightningDataModule); the model defaults to :class:`~isr_lightning.ISRModule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from isr_lightning.module import ISRModule

__all__ = ["ISRLightningCLI", "build_from_config", "recipe_path", "run_lightning_cli"]


def recipe_path(name: str) -> Path:
    """Path of a recipe shipped in ``isr_lightning/configs`` (e.g. ``cpu_demo``)."""
    path = Path(str(files("isr_lightning") / "configs" / f"{name}.yaml"))
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"no recipe {name!r} in {path.parent}; available: {available}")
    return path


class ISRLightningCLI(LightningCLI):
    """LightningCLI with ISRModule as the default model."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        parser.set_defaults({"model": {"class_path": f"{ISRModule.__module__}.{ISRModule.__name__}"}})


def _cli(args: Sequence[str], **kwargs: Any) -> ISRLightningCLI:
    return ISRLightningCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=list(args),
        save_config_kwargs={"overwrite": True},
        **kwargs,
    )


def run_lightning_cli(args: Sequence[str]) -> ISRLightningCLI:
    """Run a LightningCLI subcommand.

    Args:
        args: e.g. ``["fit", "--config", "recipe.yaml", "--trainer.max_steps=10"]``.

    Returns:
        The CLI object (its ``trainer``, ``model`` and ``datamodule`` attributes are set).
    """
    return _cli(args)


def build_from_config(
    config: str | Path, overrides: Sequence[str] = (), trainer_defaults: dict[str, Any] | None = None
) -> ISRLightningCLI:
    """Instantiate model, data module and trainer of a recipe without running anything.

    Args:
        config: the YAML recipe.
        overrides: dotted command-line overrides, e.g. ``["--data.init_args.root=DIR"]``.
        trainer_defaults: Trainer arguments the recipe does not set (objects allowed).

    Returns:
        The CLI object with ``model``, ``datamodule`` and ``trainer``.
    """
    return _cli(["--config", str(config), *overrides], run=False, trainer_defaults=trainer_defaults or {})
