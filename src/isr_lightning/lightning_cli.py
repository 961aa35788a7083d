"""LightningCLI for ``isr-lightning fit|validate|test|predict`` and the shipped recipes.

Model and data are chosen by ``class_path`` in the config (any LightningModule and
LightningDataModule); the model defaults to :class:`~isr_lightning.ISRModule`. The
``lightning`` command (:func:`generic_main`) is the same CLI without that default.

``--config`` accepts a path or the bare name of a shipped recipe (``cpu_demo``,
``resnet50``, ``swin_b``; see :func:`recipe_path`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from isr_lightning.module import ISRModule

__all__ = [
    "ISRLightningCLI",
    "build_from_config",
    "generic_main",
    "recipe_path",
    "resolve_recipes",
    "run_lightning_cli",
]


def _recipes_dir() -> Path:
    return Path(str(files("isr_lightning") / "configs"))


def recipe_path(name: str) -> Path:
    """Path of a recipe shipped in ``isr_lightning/configs`` (e.g. ``cpu_demo``).

    Raises:
        FileNotFoundError: no such recipe; the message lists the available ones.
    """
    path = _recipes_dir() / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise FileNotFoundError(f"no recipe {name!r} in {path.parent}; available: {available}")
    return path


def _resolve_one(value: str) -> str:
    if Path(value).exists() or "/" in value or "\n" in value or value.endswith((".yaml", ".yml", ".json")):
        return value
    candidate = _recipes_dir() / f"{value}.yaml"
    return str(candidate) if candidate.is_file() else value


def resolve_recipes(args: Sequence[str]) -> list[str]:
    """Replace ``--config NAME`` by the shipped recipe's path when ``NAME`` is not a file.

    Args:
        args: command-line arguments.

    Returns:
        The arguments, with bare recipe names (``cpu_demo``) replaced by their paths; paths
        and unknown names are left to the parser.
    """
    out = list(args)
    for i, arg in enumerate(out):
        if arg in ("--config", "-c") and i + 1 < len(out):
            out[i + 1] = _resolve_one(out[i + 1])
        elif arg.startswith("--config="):
            out[i] = "--config=" + _resolve_one(arg.split("=", 1)[1])
    return out


class ISRLightningCLI(LightningCLI):
    """LightningCLI with ISRModule as the default model."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: D102
        parser.set_defaults({"model": {"class_path": f"{ISRModule.__module__}.{ISRModule.__name__}"}})


def _cli(args: Sequence[str], cli_class: type[LightningCLI] = ISRLightningCLI, **kwargs: Any) -> LightningCLI:
    resolved: list[str] | None = resolve_recipes(args)
    if list(args) == sys.argv[1:]:
        # Called from a console script: parse sys.argv itself (LightningCLI warns when given
        # both ``args`` and command-line arguments).
        sys.argv[1:] = resolved
        resolved = None
    return cli_class(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=resolved,
        save_config_kwargs={"overwrite": True},
        **kwargs,
    )


def run_lightning_cli(args: Sequence[str]) -> LightningCLI:
    """Run a LightningCLI subcommand.

    Args:
        args: e.g. ``["fit", "--config", "recipe.yaml", "--trainer.max_steps=10"]``.

    Returns:
        The CLI object (its ``trainer``, ``model`` and ``datamodule`` attributes are set).
    """
    return _cli(args)


def generic_main(argv: Sequence[str] | None = None) -> int:
    """The ``lightning`` command: a generic LightningCLI for any LightningModule/DataModule.

    ``lightning fit --config FILE.yaml`` with ``model.class_path`` and ``data.class_path``
    naming any importable classes. Bare recipe names are resolved as for ``isr-lightning``.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code.
    """
    _cli(list(sys.argv[1:] if argv is None else argv), cli_class=LightningCLI)
    return 0


def build_from_config(
    config: str | Path, overrides: Sequence[str] = (), trainer_defaults: dict[str, Any] | None = None
) -> LightningCLI:
    """Instantiate model, data module and trainer of a recipe without running anything.

    Args:
        config: the YAML recipe (a path or a shipped recipe's name).
        overrides: dotted command-line overrides, e.g. ``["--data.init_args.root=DIR"]``.
        trainer_defaults: Trainer arguments the recipe does not set (objects allowed).

    Returns:
        The CLI object with ``model``, ``datamodule`` and ``trainer``.
    """
    return _cli(["--config", str(config), *overrides], run=False, trainer_defaults=trainer_defaults or {})
