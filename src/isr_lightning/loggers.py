"""Loggers usable from a YAML recipe.

:class:`WandbLogger` is Lightning's Weights & Biases logger that logs offline (into
``save_dir/wandb``, sync later with ``wandb sync``) unless an API key is configured, so a
recipe with wandb runs on machines without an account or network.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger

__all__ = ["WandbLogger", "wandb_online"]


def wandb_online() -> bool:
    """Whether wandb can log online: ``WANDB_API_KEY`` is set and ``WANDB_MODE`` is not offline/disabled."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return False
    return bool(os.environ.get("WANDB_API_KEY"))


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` that goes offline when no API key is set.

    YAML::

        trainer:
          logger:
            class_path: isr_lightning.loggers.WandbLogger
            init_args:
              project: isr-lightning

    Args:
        name: display name of the run.
        save_dir: folder of the local wandb files.
        version: run id, to resume a run.
        offline: ``None`` (default) decides from the environment (:func:`wandb_online`);
            ``True``/``False`` force it.
        project: wandb project.
        log_model: upload checkpoints as artifacts (``True``, ``"all"`` or ``False``).
        prefix: prefix of the logged metric names.
        **kwargs: other arguments of :class:`lightning.pytorch.loggers.WandbLogger` and
            ``wandb.init`` (``entity``, ``tags``, ``group``, ...).
    """

    def __init__(
        self,
        name: str | None = None,
        save_dir: str = ".",
        version: str | None = None,
        offline: bool | None = None,
        project: str | None = "isr-lightning",
        log_model: bool | Literal["all"] = False,
        prefix: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name,
            save_dir=save_dir,
            version=version,
            offline=(not wandb_online()) if offline is None else offline,
            project=project,
            log_model=log_model,
            prefix=prefix,
            **kwargs,
        )
