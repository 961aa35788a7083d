"""LightningCLI for ``isr-lightning fit|validate|test|predict`` and the shipped recipes.

Model and data are chosen by ``class_path`` in the config (any LightningModule and
LightningDataModule); the model defaults to :class:`~isr_lightning.ISRModule`. The
``lightning`` command (:func:`generic_main`) is the same CLI without that default.

``--config`` accepts a path or the bare name of a shipped recipe (``cpu_demo``,
``resnet50``, ``swin_b``; see :func:`recipe_path`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from typing_extensions import override

from isr_lightning.callbacks import TQDMStepProgressBar
from isr_lightning.data import DataRootError, VideoPairDataModule
from isr_lightning.data.sources import check_root
from isr_lightning.module import ISRModule

__all__ = [
    "GenericLightningCLI",
    "ISRLightningCLI",
    "build_from_config",
    "checkpoint_report",
    "generic_main",
    "recipe_path",
    "resolve_recipes",
    "run_command",
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


class GenericLightningCLI(LightningCLI):
    """LightningCLI with the library's newcomer-facing fixes; any model and data module.

    * A :class:`~isr_lightning.data.VideoPairDataModule` without ``root``, or with a local
      ``root`` that does not exist, stops right after parsing with a
      :class:`~isr_lightning.data.DataRootError` saying what ``root`` may be and how to make
      data (the commands print it as one line) instead of jsonargparse's union message.
    * Without a progress bar in the config, training shows a
      :class:`~isr_lightning.callbacks.TQDMStepProgressBar` (steps out of ``max_steps``).
    * ``fit`` ends by printing where the checkpoints are (:func:`checkpoint_report`).
    """

    def after_fit(self) -> None:
        """Print where the run's checkpoints are (called by LightningCLI after ``fit``)."""
        if self.trainer.is_global_zero:
            print(checkpoint_report(self.trainer))

    @override
    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        section = self.config.get(subcommand) if subcommand else self.config
        data = section.get("data") if isinstance(section, Namespace) else None
        if isinstance(data, Namespace) and _is_video_pair_data(data.get("class_path")):
            check_root(data.get("init_args", Namespace()).get("root"))

    @override
    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        configured = [*_as_list(trainer_config.get("callbacks")), *_as_list(self.trainer_defaults.get("callbacks"))]
        wants_bar = trainer_config.get("enable_progress_bar", True) is not False
        if wants_bar and "callbacks" not in kwargs and not any(isinstance(c, ProgressBar) for c in configured):
            kwargs["callbacks"] = [*_as_list(trainer_config.get("callbacks")), TQDMStepProgressBar()]
        return super().instantiate_trainer(**kwargs)


class ISRLightningCLI(GenericLightningCLI):
    """:class:`GenericLightningCLI` with ISRModule as the default model."""

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.set_defaults({"model": {"class_path": f"{ISRModule.__module__}.{ISRModule.__name__}"}})


def checkpoint_report(trainer: Trainer) -> str:
    """One line per checkpoint callback: the last checkpoint written, or why there is none.

    Args:
        trainer: a trainer after ``fit``.

    Returns:
        ``"checkpoint: PATH"`` lines, or a line saying that no checkpoint was written and how
        to get one.
    """
    paths = [cb.last_model_path or cb.best_model_path for cb in trainer.checkpoint_callbacks]
    lines = [f"checkpoint: {path}" for path in paths if path]
    if lines:
        return "\n".join(lines)
    if not trainer.checkpoint_callbacks:
        return (
            "no checkpoint was written: checkpointing is off (trainer.enable_checkpointing: false); add"
            " isr_lightning.callbacks.RunCheckpoint to trainer.callbacks to keep the model"
        )
    return "no checkpoint was written (no training step ran)"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _is_video_pair_data(class_path: Any) -> bool:
    if not isinstance(class_path, str) or "." not in class_path:
        return False
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(cls, type) and issubclass(cls, VideoPairDataModule)


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


def run_command(prog: str, args: Sequence[str], cli_class: type[LightningCLI] = ISRLightningCLI) -> int:
    """Run a LightningCLI subcommand as a command: configuration errors are one line.

    Args:
        prog: the command's name for messages (``isr-lightning``, ``lightning``).
        args: e.g. ``["fit", "--config", "cpu_demo"]``.
        cli_class: the CLI class.

    Returns:
        The exit code: 0, or 2 after printing ``PROG SUBCOMMAND: error: ...`` for a data root
        that is missing, does not exist or holds no clip.
    """
    try:
        _cli(args, cli_class=cli_class)
    except DataRootError as err:
        subcommand = next((a for a in args if not a.startswith("-")), "")
        print(f"{prog} {subcommand}: error: {err}", file=sys.stderr)
        return 2
    return 0


def generic_main(argv: Sequence[str] | None = None) -> int:
    """The ``lightning`` command: a generic LightningCLI for any LightningModule/DataModule.

    ``lightning fit --config FILE.yaml`` with ``model.class_path`` and ``data.class_path``
    naming any importable classes. Bare recipe names are resolved as for ``isr-lightning``.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code.
    """
    return run_command("lightning", list(sys.argv[1:] if argv is None else argv), cli_class=GenericLightningCLI)


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
