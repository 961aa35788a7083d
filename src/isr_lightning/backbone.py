"""The backbone plumbing shared by ``ISRModule`` and ``ReIDFineTuneModule``: timm backbone, freezing, optimizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import timm
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from typing_extensions import Self

from isr_lightning.checkpoints import CLASS_PATH_KEY, INSTANTIATOR_KEY, LIGHTNING_INSTANTIATOR, load_weights
from isr_lightning.optim import WarmupCosineLR

__all__ = ["BackboneModuleMixin", "EmbeddingModel", "create_timm_backbone"]


def create_timm_backbone(name: str, pretrained: bool, **kwargs: Any) -> nn.Module:
    """Create a timm model that maps images to pooled features ``(B, num_features)``.

    Args:
        name: timm model name, e.g. ``resnet50`` or ``swin_base_patch4_window7_224``.
        pretrained: load timm's pretrained weights (downloaded, or from a local file given as
            ``pretrained_cfg_overlay={"file": PATH}``).
        **kwargs: passed to ``timm.create_model`` (``drop_path_rate``, ``img_size``, ...).

    Raises:
        RuntimeError: the pretrained weights could not be downloaded or read.
    """
    try:
        return timm.create_model(name, pretrained=pretrained, num_classes=0, **kwargs)
    except (OSError, ConnectionError, TimeoutError) as error:
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not load pretrained weights for timm model {name!r}: {error}. Without network"
            " access, download them elsewhere and pass backbone_kwargs="
            "{'pretrained_cfg_overlay': {'file': '/path/to/weights.safetensors'}}, "
            "or train from scratch with pretrained=False."
        ) from error


class EmbeddingModel(nn.Module):
    """The inference path of an :class:`~isr_lightning.module.ISRModule` as a plain module (for export).

    Args:
        backbone: images ``(B, 3, H, W)`` -> pooled features ``(B, F)``.
        projection: ``(B, F)`` -> ``(B, D)``.
    """

    def __init__(self, backbone: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection = projection

    def forward(self, images: Tensor) -> Tensor:
        """Embed ``(B, 3, H, W)`` normalised images into ``(B, D)`` L2-normalised embeddings."""
        return F.normalize(self.projection(self.backbone(images)), dim=-1)


class BackboneModuleMixin:
    """Backbone, frozen layers, embedding and optimizer of a ``LightningModule`` that embeds images.

    Mixed into :class:`~isr_lightning.ISRModule` and
    :class:`~isr_lightning.finetune.ReIDFineTuneModule` (before ``LightningModule`` in the bases).
    The host's ``__init__`` saves the hyperparameters ``backbone``, ``pretrained``,
    ``backbone_kwargs``, ``freeze_bn_stats`` and ``backbone_lr_scale``, sets ``image_size``,
    ``backbone`` (from :meth:`build_backbone`), the ``projection`` after it, ``optimizer_factory``
    and ``lr_scheduler_factory``, and ends with :meth:`_load_weights_and_freeze`. Its ``forward``
    maps ``(B, 3, H, W)`` images to ``(B, D)`` L2-normalised embeddings.
    """

    backbone: nn.Module
    projection: nn.Module
    image_size: tuple[int, int]
    optimizer_factory: OptimizerCallable
    lr_scheduler_factory: LRSchedulerCallable | None

    def build_backbone(self) -> tuple[nn.Module, int]:
        """Build the feature extractor; override this to use a non-timm backbone.

        Returns:
            A module mapping images ``(B, 3, H, W)`` to pooled features ``(B, F)``, and ``F``.
        """
        kwargs = dict(self.hparams.backbone_kwargs or {})
        model = create_timm_backbone(self.hparams.backbone, self.hparams.pretrained, **kwargs)
        return model, int(model.num_features)

    def _load_weights_and_freeze(self, weights: str | None, frozen_modules: Sequence[str]) -> None:
        """Load ``weights`` into ``backbone`` and ``projection``, then freeze ``frozen_modules``.

        Args:
            weights: file, URL or ``"imagenet"`` for :func:`~isr_lightning.checkpoints.load_weights`;
                ``None`` loads nothing.
            frozen_modules: names of backbone submodules that get no gradient and stay in eval mode.

        Raises:
            ValueError: a name in ``frozen_modules`` is not a backbone submodule.
        """
        if weights is not None:
            load_weights(self.backbone, self.projection, weights, backbone_name=self.hparams.backbone)
        self._frozen = self._resolve_frozen(frozen_modules)
        for module in self._frozen:
            module.requires_grad_(False)
        self.train(self.training)  # applies freeze_bn_stats and frozen_modules

    def _resolve_frozen(self, names: Sequence[str]) -> list[nn.Module]:
        submodules = dict(self.backbone.named_modules())
        unknown = [name for name in names if name not in submodules or not name]
        if unknown:
            tops = [name for name, _ in self.backbone.named_children()]
            raise ValueError(f"frozen_modules: no backbone submodule {unknown}; top-level submodules: {tops}")
        return [submodules[name] for name in names]

    def train(self, mode: bool = True) -> Self:
        """Set training mode; frozen modules, and with ``freeze_bn_stats`` all BatchNorm, stay in eval mode."""
        super().train(mode)  # type: ignore[misc]  # LightningModule's, next in the host's bases
        if not mode:
            return self
        for module in getattr(self, "_frozen", ()):
            module.eval()
        if self.hparams.freeze_bn_stats:
            for layer in self.backbone.modules():
                if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                    layer.eval()
        return self

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Make the checkpoint self-describing: it names its class, and never the weights file it started from.

        :func:`~isr_lightning.checkpoints.load_model` and ``isr-lightning predict --ckpt_path``
        rebuild the model from the class and hyperparameters alone; the state dict holds the
        weights, so ``weights`` (which LightningCLI records with the rest of the config) is
        dropped: loading must not need that file again.
        """
        super().on_save_checkpoint(checkpoint)  # type: ignore[misc]  # LightningModule's hook
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict):
            hparams.pop("weights", None)
            if CLASS_PATH_KEY not in hparams:  # as LightningCLI records a model it built
                hparams[CLASS_PATH_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"
                hparams[INSTANTIATOR_KEY] = LIGHTNING_INSTANTIATOR

    @property
    def data_config(self) -> dict[str, Any]:
        """Input configuration for transforms: ``input_size`` ``(3, H, W)``, ``mean``, ``std``."""
        config = timm.data.resolve_model_data_config(self.backbone)
        return {"input_size": (3, *self.image_size), "mean": tuple(config["mean"]), "std": tuple(config["std"])}

    @torch.no_grad()
    def embed(self, images: Tensor) -> Tensor:
        """Embed images for retrieval, in eval mode and without gradient.

        Args:
            images: ``(B, 3, H, W)`` images normalised with :attr:`data_config`'s mean/std.

        Returns:
            ``(B, D)`` L2-normalised embeddings, on the module's device.
        """
        was_training = self.training
        self.eval()
        try:
            return self(images.to(self.device))
        finally:
            self.train(was_training)

    def predict_step(self, batch: Tensor | tuple[Tensor, Any] | list[Any], batch_idx: int) -> Tensor | dict[str, Any]:
        """Embed a prediction batch (``trainer.predict``; see :mod:`isr_lightning.predict`).

        Args:
            batch: images ``(B, 3, H, W)``, or ``(images, names)`` as collated from
                :class:`~isr_lightning.predict.ImageFolderDataset`.
            batch_idx: index of the batch.

        Returns:
            ``(B, D)`` embeddings for a tensor batch, else ``{"embeddings": (B, D), "names": names}``.
        """
        if isinstance(batch, Tensor):
            return self(batch)
        images, names = batch[0], batch[1]
        return {"embeddings": self(images), "names": list(names)}

    def configure_optimizers(self) -> Any:
        """Build the optimizer and the per-step learning-rate schedule from the factories.

        Two parameter groups: the backbone, at ``backbone_lr_scale`` times the optimizer's
        learning rate, and the head (every other trainable parameter: the projection, and the
        BNNeck and classifier of ``ReIDFineTuneModule``) at the full rate. Frozen parameters are
        left out. A :class:`~isr_lightning.WarmupCosineLR` without ``total_steps`` gets the
        trainer's ``estimated_stepping_batches`` when that is finite.
        """
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        in_backbone = {id(p) for p in self.backbone.parameters()}
        head = [p for p in self.parameters() if id(p) not in in_backbone and p.requires_grad]
        # named groups: LearningRateMonitor logs lr-<Optimizer>/backbone and lr-<Optimizer>/head
        optimizer = self.optimizer_factory([{"params": backbone, "name": "backbone"}, {"params": head, "name": "head"}])
        optimizer.param_groups[0]["lr"] *= self.hparams.backbone_lr_scale
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        if isinstance(scheduler, WarmupCosineLR) and scheduler.total_steps is None:
            estimated = self.trainer.estimated_stepping_batches
            if estimated != float("inf"):
                scheduler.total_steps = max(1, int(estimated))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
