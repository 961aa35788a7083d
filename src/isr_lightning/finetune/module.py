"""``ReIDFineTuneModule``: supervised ReID fine-tuning (BNNeck, identity and triplet losses)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from isr_lightning.backbone import BackboneModuleMixin, EmbeddingModel
from isr_lightning.evaluation.batches import split_batch
from isr_lightning.evaluation.metric import ReIDMetric
from isr_lightning.finetune.losses import BatchHardTripletLoss, LabelSmoothingCrossEntropy
from isr_lightning.optim import WarmupCosineLR

__all__ = ["ReIDFineTuneModule"]

_REPORTED = ("rank1", "rank5", "rank10", "mAP", "mINP")


class ReIDFineTuneModule(BackboneModuleMixin, LightningModule):
    """Supervised person ReID: the field's strong baseline, starting from any weights ``ISRModule`` takes.

    backbone -> pooled features -> projection (as in :class:`~isr_lightning.ISRModule`, so an
    ISR checkpoint loads whole) -> feature ``f_t`` -> BNNeck (``BatchNorm1d``, bias frozen) ->
    ``f_i`` -> linear identity classifier (no bias) (Luo et al., "Bag of tricks", CVPR-W 2019):

    - the batch-hard triplet loss (margin or soft margin) is computed on ``f_t``;
    - the label-smoothed identity cross-entropy on the classifier's logits of ``f_i``;
    - retrieval (:meth:`forward`, :meth:`embed`, export, the evaluation callback) uses the
      L2-normalised ``f_i``.

    Training batches are dicts ``{"image" (B, 3, H, W), "pid" (B,) contiguous labels}``, e.g.
    from :class:`~isr_lightning.finetune.ReIDTrainDataModule` (P x K batches). Validation reads
    two loaders, query (index 0) and gallery (index 1), of dicts with ``image``, ``pid``,
    ``camid``, ``index``, and logs ``val/rank1``, ``val/rank5``, ``val/rank10``, ``val/mAP``,
    ``val/mINP`` under the standard protocol (:class:`~isr_lightning.evaluation.ReIDMetric`).

    Args:
        backbone: timm model name.
        pretrained: start from timm's pretrained weights for ``backbone``.
        backbone_kwargs: extra ``timm.create_model`` arguments.
        embed_dim: size ``D`` of the projection; ``None``: no projection, the pooled backbone
            features (``D = F``; the ResNet-50 baseline's 2048-d). Must equal the checkpoint's to
            load an ISR checkpoint's projection.
        image_size: ``(height, width)`` of the input crops; the data modules read it (the one
            place a recipe states it).
        num_classes: training identities; ``None``: read from the data module's ``num_classes``
            when training starts (it is then saved in the hyperparameters).
        label_smoothing: ``epsilon`` of the identity loss (0.1 in the baselines; 0 disables).
        triplet_margin: hinge margin of the triplet loss (0.3 for ResNet-50), or ``None`` for
            the soft margin (the transformer baselines).
        id_loss_weight: weight of the identity loss.
        triplet_loss_weight: weight of the triplet loss.
        optimizer: optimizer factory ``params -> Optimizer`` (LightningCLI ``OptimizerCallable``).
        lr_scheduler: scheduler factory stepped every optimizer step:
            :class:`~isr_lightning.WarmupCosineLR` (default; its ``total_steps`` is read from the
            trainer when not set), :class:`~isr_lightning.WarmupMultiStepLR`, or ``None``.
        freeze_bn_stats: keep the backbone's BatchNorm layers in eval mode (their affine
            weights still train).
        backbone_lr_scale: the backbone's learning rate as a fraction of the optimizer's; the
            new head (projection, BNNeck, classifier) trains at the full rate.
        frozen_modules: backbone submodules (``conv_stem``, ``blocks.0``) that keep their
            weights, run in eval mode and get no gradient.
        weights: file, URL or ``"imagenet"``, read by
            :func:`~isr_lightning.checkpoints.load_weights` into the backbone and projection
            exactly as for ``ISRModule``: an ISRModule ``.ckpt``, the released ISR checkpoint, a
            backbone state dict, or the ImageNet weights an installed package ships. BNNeck and
            classifier start new. Not saved in the hyperparameters.

    Raises:
        ValueError: invalid loss arguments, a non-positive ``embed_dim`` or ``num_classes``,
            unknown ``frozen_modules``, or weights that do not fit.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = False,
        backbone_kwargs: dict[str, Any] | None = None,
        embed_dim: int | None = 512,
        image_size: tuple[int, int] = (256, 128),
        num_classes: int | None = None,
        label_smoothing: float = 0.1,
        triplet_margin: float | None = 0.3,
        id_loss_weight: float = 1.0,
        triplet_loss_weight: float = 1.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = WarmupCosineLR,
        freeze_bn_stats: bool = False,
        backbone_lr_scale: float = 1.0,
        frozen_modules: Sequence[str] = (),
        weights: str | None = None,
    ) -> None:
        super().__init__()
        if embed_dim is not None and embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1 or None, got {embed_dim}")
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if backbone_lr_scale < 0:
            raise ValueError(f"backbone_lr_scale must be >= 0, got {backbone_lr_scale}")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler", "weights"])
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.backbone, num_features = self.build_backbone()
        self.projection: nn.Module = nn.Identity() if embed_dim is None else nn.Linear(num_features, embed_dim)
        self.embed_dim = num_features if embed_dim is None else embed_dim
        self.bnneck = nn.BatchNorm1d(self.embed_dim)
        self.bnneck.bias.requires_grad_(False)  # BNNeck: a shift would only move every identity alike
        self.classifier: nn.Linear | None = None
        if num_classes is not None:
            self._build_classifier(num_classes)
        self.id_loss = LabelSmoothingCrossEntropy(label_smoothing)
        self.triplet_loss = BatchHardTripletLoss(triplet_margin)
        self.val_metric = ReIDMetric()
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self._load_weights_and_freeze(weights, frozen_modules)

    # -- model ---------------------------------------------------------------------------
    def _build_classifier(self, num_classes: int) -> None:
        self.classifier = nn.Linear(self.embed_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.hparams["num_classes"] = int(num_classes)

    def features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The two BNNeck features.

        Args:
            images: ``(B, 3, H, W)`` normalised images.

        Returns:
            ``(f_t, f_i)``, each ``(B, D)``: before the BNNeck (triplet loss) and after it
            (classifier, retrieval).
        """
        before = self.projection(self.backbone(images))
        return before, self.bnneck(before)

    def forward(self, images: Tensor) -> Tensor:
        """Embed images for retrieval: ``(B, 3, H, W)`` -> ``(B, D)`` float32 L2-normalised ``f_i``."""
        return F.normalize(self.features(images)[1].float(), dim=-1)

    def embedding_model(self) -> nn.Module:
        """The retrieval path as a plain module for export: backbone -> projection -> BNNeck -> L2 norm."""
        return EmbeddingModel(self.backbone, nn.Sequential(self.projection, self.bnneck))

    # -- Lightning -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Check the data's normalisation and build the classifier from its ``num_classes``.

        (The crop size is the model's: the data module reads it, and refuses another one.)
        """
        datamodule = self.trainer.datamodule
        transform = getattr(datamodule, "transform", None)
        mean = getattr(transform, "mean", None)
        if mean is not None and tuple(mean) != self.data_config["mean"]:
            expected = self.data_config["mean"]
            rank_zero_warn(f"the data are normalised with mean {tuple(mean)}, the backbone expects {expected}")
        if stage != "fit":
            return
        data_classes = getattr(datamodule, "num_classes", None)
        if self.classifier is None:
            if data_classes is None:
                raise ValueError("num_classes is unknown: set num_classes, or train with a data module that has it")
            self._build_classifier(int(data_classes))
        elif data_classes is not None and data_classes != self.classifier.out_features:
            raise ValueError(
                f"the classifier has {self.classifier.out_features} identities, the training data {data_classes}:"
                " set num_classes to the data's (or leave it unset)"
            )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Identity and triplet losses of a P x K batch."""
        assert self.classifier is not None, "setup('fit') builds the classifier"
        images, labels = batch["image"], batch["pid"].long()
        before, after = self.features(images)
        logits = self.classifier(after)
        id_loss = self.id_loss(logits, labels)
        triplet_loss = self.triplet_loss(before, labels)
        loss = self.hparams.id_loss_weight * id_loss + self.hparams.triplet_loss_weight * triplet_loss
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        size = labels.numel()
        self.log("train/loss", loss.detach(), prog_bar=True, sync_dist=True, batch_size=size)
        self.log("train/accuracy", accuracy, prog_bar=True, sync_dist=True, batch_size=size)
        self.log_dict(
            {"train/id_loss": id_loss.detach(), "train/triplet_loss": triplet_loss.detach()},
            sync_dist=True,
            batch_size=size,
        )
        return loss

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Embed a query (loader 0) or gallery (loader 1) batch into the validation metric."""
        images, pids, camids, indexes = split_batch(batch)
        self.val_metric.update(self(images), pids, camids, is_query=dataloader_idx == 0, indexes=indexes)

    def on_validation_epoch_end(self) -> None:
        """Compute and log the ReID metrics of the query against the gallery."""
        if self.trainer.sanity_checking:
            self.val_metric.reset()
            return
        values = self.val_metric.compute()
        self.val_metric.reset()
        for name in _REPORTED:
            # every rank holds the same value (the metric gathers all ranks): averaging changes nothing
            self.log(f"val/{name}", float(values[name]), prog_bar=name in ("rank1", "mAP"), sync_dist=True)
        rank1, mean_ap = float(values["rank1"]), float(values["mAP"])
        rank_zero_info(
            f"validation at step {self.global_step}: rank-1 {rank1:.3f}, mAP {mean_ap:.3f}"
            f" ({int(values['n_query'])} queries, {int(values['n_gallery'])} gallery images)"
        )
