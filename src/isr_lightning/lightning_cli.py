"""LightningCLI for ``isr-lightning fit|validate|test|predict``.

Model and data are chosen by ``class_path`` in the config (any LightningModule and
LightningDataModule); the model defaults to :class:`~isr_lightning.ISRModule`.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from isr_lightning.module import ISRModule

__all__ = ["ISRLightningCLI", "run_lightning_cli"]


class ISRLightningCLI(LightningCLI):
    """LightningCLI with ISRModule as the default model."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        parser.set_defaults({"model": {"class_path": f"{ISRModule.__module__}.{ISRModule.__name__}"}})


def run_lightning_cli(args: Sequence[str]) -> ISRLightningCLI:
    """Run a LightningCLI subcommand.

    Args:
        args: e.g. ``["fit", "--config", "recipe.yaml", "--trainer.max_steps=10"]``.

    Returns:
        The CLI object (its ``trainer``, ``model`` and ``datamodule`` attributes are set).
    """
    return ISRLightningCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=list(args),
        save_config_kwargs={"overwrite": True},
    )
