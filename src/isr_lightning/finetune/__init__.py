"""Supervised fine-tuning with identity labels, after ISR pretraining (or from any other weights).

* :class:`ReIDFineTuneModule`: the field's strong baseline (BNNeck, label-smoothed identity
  cross-entropy, batch-hard triplet loss), starting from any weights ``ISRModule`` takes.
* :class:`ReIDTrainDataModule`: the training split of Market-1501, MSMT17, CUHK03-NP or any
  Market-layout folder in P x K batches, with query/gallery validation from the same root.
* :class:`PKSampler`: the DDP-aware, resumable P x K identity sampler.
* :mod:`~isr_lightning.finetune.losses`: the losses.

Names are imported on first use, so the losses and the sampler do not pull in Lightning and timm.
See the README section "Fine-tune with labels" and ``configs/finetune_*.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from isr_lightning._lazy import lazy_exports

_EXPORTS = {
    "ReIDTrainDataModule": "data",
    "BatchHardTripletLoss": "losses",
    "LabelSmoothingCrossEntropy": "losses",
    "ReIDFineTuneModule": "module",
    "PKSampler": "sampler",
}

__all__ = [
    "BatchHardTripletLoss",
    "LabelSmoothingCrossEntropy",
    "PKSampler",
    "ReIDFineTuneModule",
    "ReIDTrainDataModule",
]

if TYPE_CHECKING:
    from isr_lightning.finetune.data import ReIDTrainDataModule
    from isr_lightning.finetune.losses import BatchHardTripletLoss, LabelSmoothingCrossEntropy
    from isr_lightning.finetune.module import ReIDFineTuneModule
    from isr_lightning.finetune.sampler import PKSampler


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
