"""``ISRModule``: identity-seeking self-supervised ReID training as a LightningModule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from isr_lightning.backbone import BackboneModuleMixin, create_timm_backbone
from isr_lightning.batch import FramePairBatch
from isr_lightning.checkpoints import (
    ISR_RELEASE_BACKBONE,
    ISR_RELEASE_URL,
    load_state_dict_exactly,
    read_isr_release,
)
from isr_lightning.distributed import all_reduce_sum
from isr_lightning.losses import ReliabilityWeightedInfoNCE
from isr_lightning.matching import PairMiner, build_miner
from isr_lightning.optim import WarmupCosineLR
from isr_lightning.pairs import MinedPairs, mine_batch_pairs, pair_precision_counts
from isr_lightning.reliability import Reliability, build_reliability

__all__ = ["ISRModule", "create_timm_backbone", "load_isr_release"]


class ISRModule(BackboneModuleMixin, LightningModule):
    """Identity-seeking self-supervised representation learning (ISR, ICCV 2023).

    Every crop of the two frames of a frame pair is embedded by one shared model
    (backbone -> pooled features -> linear projection -> L2 normalisation). The crops of the
    two frames are associated by a pair miner (maximum-weight bipartite matching by default)
    on detached cosine similarities, each match is weighted by a reliability function, and
    the model is trained with a reliability-weighted InfoNCE whose negatives are all other
    crops of the global batch. No labels are used.

    Subclass and override :meth:`build_backbone` to plug in a backbone that is not in timm.

    Args:
        backbone: timm model name.
        pretrained: start from timm's pretrained weights for ``backbone``.
        backbone_kwargs: extra ``timm.create_model`` arguments (``drop_path_rate``,
            ``img_size``, ``pretrained_cfg_overlay``...).
        embed_dim: size ``D`` of the embedding (512 in the released ISR model).
        image_size: ``(height, width)`` of the input crops; evaluation transforms read it
            from :attr:`data_config`.
        pair_miner: association of the crops of two frames: ``hungarian`` (ISR), ``mutual_nn``,
            ``nearest``, ``greedy``, ``instance`` (two views of one crop), or a
            :class:`~isr_lightning.matching.PairMiner`.
        reliability: pair weighting: ``pair_softmax`` (default), ``bidirectional``, ``margin``,
            ``uniform``, or a :class:`~isr_lightning.reliability.Reliability`.
        temperature: InfoNCE temperature.
        same_video_negatives: weight in ``[0, 1]`` of a negative crop from the anchor's own video
            at another time (another frame pair of the batch): it may show the anchor's person.
            0 (default) leaves it out of the InfoNCE denominator, 1 makes it an ordinary
            negative. Batches of a large corpus hold one pair per video and are unaffected; on
            one long video every batch draws from the same people (docs/own_camera.md).
        optimizer: optimizer factory ``params -> Optimizer`` (LightningCLI ``OptimizerCallable``).
        lr_scheduler: scheduler factory ``optimizer -> LRScheduler`` stepped every optimizer
            step, or ``None`` for a constant rate.
        freeze_bn_stats: keep the backbone's BatchNorm layers in eval mode while training, so
            their running statistics stay those of the weights loaded (ImageNet's): small
            batches of one visual world otherwise pull them towards that world's look, which
            hurts other domains. Their affine weights still train.
        backbone_lr_scale: the backbone's learning rate as a fraction of the optimizer's
            (the projection trains at the full rate); below 1 when starting from pretrained
            weights that the new head should not wash out.
        frozen_modules: names of backbone submodules (``conv_stem``, ``blocks.0``, as in
            ``backbone.named_modules()``) whose weights stay as loaded; they run in eval mode
            and get no gradient, which also saves their backward pass (the high-resolution
            early layers cost the most per parameter).
        weights: file or URL loaded after building the model: an isr-lightning ``.ckpt``, the
            released ISR checkpoint (``model.*``/``feat.*``, remapped to current timm), or a
            backbone state dict (``.pth``/``.safetensors``; the projection stays random); or
            ``"imagenet"``: ImageNet weights an installed package ships, no download (for
            ``mobilenetv2_100``; see :mod:`isr_lightning.bundled_weights`). See
            :func:`~isr_lightning.checkpoints.load_weights`; not saved in the hyperparameters,
            so ``load_from_checkpoint`` never needs the file again.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: bool = False,
        backbone_kwargs: dict[str, Any] | None = None,
        embed_dim: int = 512,
        image_size: tuple[int, int] = (256, 128),
        pair_miner: str | PairMiner = "hungarian",
        reliability: str | Reliability = "pair_softmax",
        temperature: float = 0.1,
        same_video_negatives: float = 0.0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = WarmupCosineLR,
        freeze_bn_stats: bool = False,
        backbone_lr_scale: float = 1.0,
        frozen_modules: Sequence[str] = (),
        weights: str | None = None,
    ) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        if backbone_lr_scale < 0:
            raise ValueError(f"backbone_lr_scale must be >= 0, got {backbone_lr_scale}")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler", "weights"])
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.backbone, num_features = self.build_backbone()
        self.projection = nn.Linear(num_features, embed_dim)
        self.pair_miner = build_miner(pair_miner)
        self.reliability = build_reliability(reliability)
        self.criterion = ReliabilityWeightedInfoNCE(temperature, same_video_negatives)
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self._skipped: Counter[str] = Counter()
        self._load_weights_and_freeze(weights, frozen_modules)

    @classmethod
    def from_isr_release(
        cls,
        source: str | Path = ISR_RELEASE_URL,
        *,
        backbone: str = ISR_RELEASE_BACKBONE,
        image_size: tuple[int, int] = (224, 224),
        **kwargs: Any,
    ) -> ISRModule:
        """Build a model holding the released ISR weights (Dou et al., ICCV 2023).

        The embeddings equal the release's ``F.normalize(feat(model.forward_features(x)))`` under
        timm 0.4.12, for images resized to 224x224 and normalised with ImageNet mean/std.

        Args:
            source: the released ``swin_base_patch4_window7_224.pth`` (local path), or a URL; by
                default the authors' link, downloaded once into the torch hub cache.
            backbone: timm model name of the backbone.
            image_size: ``(height, width)`` of the inputs.
            **kwargs: other constructor arguments (``backbone_kwargs``, ``pair_miner``... for
                fine-tuning); ``embed_dim`` is read from the file.

        Returns:
            The model, in training mode like any new module (``embed`` switches to eval).

        Raises:
            RuntimeError: the weights could not be downloaded or read.
            ValueError: the file is not an ISR release, or does not match ``backbone``.
        """
        backbone_sd, projection_sd = read_isr_release(source)
        embed_dim = int(projection_sd["weight"].shape[0])
        module = cls(backbone=backbone, pretrained=False, embed_dim=embed_dim, image_size=image_size, **kwargs)
        load_state_dict_exactly(module.backbone, backbone_sd, what=f"backbone ({backbone})", source=source)
        load_state_dict_exactly(module.projection, projection_sd, what="projection", source=source)
        return module

    def forward(self, images: Tensor) -> Tensor:
        """Embed images.

        Args:
            images: ``(B, 3, H, W)`` normalised images.

        Returns:
            ``(B, D)`` float32 L2-normalised embeddings.
        """
        # normalised in float32: under bf16/fp16 autocast the projection's output is half precision
        return F.normalize(self.projection(self.backbone(images)).float(), dim=-1)

    def training_step(self, batch: FramePairBatch, batch_idx: int) -> Tensor:
        """Mine pairs between the two frames of every frame pair and return the loss."""
        embeddings = self(batch.crops)
        pairs = mine_batch_pairs(embeddings, batch.pair_index, batch.frame_side, self.pair_miner, self.reliability)
        loss = self.criterion(embeddings, pairs.anchors, pairs.positives, pairs.weights, batch.crop_sources())
        self._log_training_statistics(loss, pairs, batch)
        return loss

    def _log_training_statistics(self, loss: Tensor, pairs: MinedPairs, batch: FramePairBatch) -> None:
        batch_size = batch.num_crops
        self.log("train/loss", loss.detach(), prog_bar=True, sync_dist=True, batch_size=batch_size)
        correct, total = pair_precision_counts(pairs, batch.track_ids) if batch.track_ids is not None else (0, 0)
        # One all-reduce for every count, so that logged values describe the global batch.
        counts = all_reduce_sum(
            torch.tensor(
                [
                    pairs.num_pairs,
                    pairs.num_frame_pairs,
                    float(pairs.weights.sum()),
                    float(pairs.similarities.sum()),
                    correct,
                    total,
                    batch_size,
                ],
                dtype=torch.float64,
                device=self.device,
            )
        ).tolist()
        num_pairs, num_frame_pairs, weight_sum, similarity_sum, correct, total, crops = counts
        stats = {
            "train/pairs_per_frame_pair": num_pairs / max(num_frame_pairs, 1),
            "train/mean_reliability": weight_sum / max(num_pairs, 1),
            "train/mean_pair_similarity": similarity_sum / max(num_pairs, 1),
            "train/crops_per_batch": crops,
        }
        if batch.track_ids is not None and total > 0:
            stats["train/pair_precision"] = correct / total
        if batch.skipped:
            self._skipped.update(batch.skipped)
        stats.update({f"data/skipped_{reason}": float(n) for reason, n in self._skipped.items()})
        self.log_dict(stats, batch_size=batch_size)


def load_isr_release(
    source: str | Path = ISR_RELEASE_URL,
    *,
    backbone: str = ISR_RELEASE_BACKBONE,
    image_size: tuple[int, int] = (224, 224),
    **kwargs: Any,
) -> ISRModule:
    """Build an :class:`ISRModule` holding the released ISR weights: :meth:`ISRModule.from_isr_release`.

    Args:
        source: the released ``swin_base_patch4_window7_224.pth`` (local path), or a URL; by
            default the authors' link, downloaded once into the torch hub cache.
        backbone: timm model name of the backbone.
        image_size: ``(height, width)`` of the inputs.
        **kwargs: other :class:`ISRModule` arguments; ``embed_dim`` is read from the file.

    Returns:
        The model, in training mode like any new module.

    Raises:
        RuntimeError: the weights could not be downloaded or read.
        ValueError: the file is not an ISR release, or does not match ``backbone``.
    """
    return ISRModule.from_isr_release(source, backbone=backbone, image_size=image_size, **kwargs)
