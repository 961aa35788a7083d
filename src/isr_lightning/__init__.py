"""isr-lightning: identity-seeking self-supervised person re-identification from video.

Public names are imported on first use (PEP 562), so ``import isr_lightning.evaluation`` or
``isr_lightning.synth`` does not pull in timm and Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from isr_lightning._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "FramePairBatch": "batch",
    "load_isr_release": "module",
    "load_model": "checkpoints",
    "load_weights": "checkpoints",
    "remap_isr_release_state_dict": "checkpoints",
    "export_onnx": "export",
    "export_torchscript": "export",
    "BatchHardTripletLoss": "finetune.losses",
    "LabelSmoothingCrossEntropy": "finetune.losses",
    "ReIDFineTuneModule": "finetune.module",
    "PKSampler": "finetune.sampler",
    "ReIDTrainDataModule": "finetune.data",
    "ReliabilityWeightedInfoNCE": "losses",
    "reliability_weighted_info_nce": "losses",
    "GreedyMiner": "matching",
    "HungarianMiner": "matching",
    "InstanceMiner": "matching",
    "MutualNearestMiner": "matching",
    "NearestMiner": "matching",
    "PairMiner": "matching",
    "ISRModule": "module",
    "WarmupCosineLR": "optim",
    "WarmupMultiStepLR": "optim",
    "EmbeddingWriter": "predict",
    "ImageFolderDataModule": "predict",
    "ImageFolderDataset": "predict",
    "BidirectionalReliability": "reliability",
    "MarginReliability": "reliability",
    "PairSoftmaxReliability": "reliability",
    "Reliability": "reliability",
    "UniformReliability": "reliability",
}

__all__ = [
    "BatchHardTripletLoss",
    "BidirectionalReliability",
    "EmbeddingWriter",
    "FramePairBatch",
    "GreedyMiner",
    "HungarianMiner",
    "ISRModule",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "InstanceMiner",
    "LabelSmoothingCrossEntropy",
    "MarginReliability",
    "MutualNearestMiner",
    "NearestMiner",
    "PKSampler",
    "PairMiner",
    "PairSoftmaxReliability",
    "ReIDFineTuneModule",
    "ReIDTrainDataModule",
    "Reliability",
    "ReliabilityWeightedInfoNCE",
    "UniformReliability",
    "WarmupCosineLR",
    "WarmupMultiStepLR",
    "export_onnx",
    "export_torchscript",
    "load_isr_release",
    "load_model",
    "load_weights",
    "reliability_weighted_info_nce",
    "remap_isr_release_state_dict",
]

if TYPE_CHECKING:
    from isr_lightning.batch import FramePairBatch
    from isr_lightning.checkpoints import load_model, load_weights, remap_isr_release_state_dict
    from isr_lightning.export import export_onnx, export_torchscript
    from isr_lightning.finetune.data import ReIDTrainDataModule
    from isr_lightning.finetune.losses import BatchHardTripletLoss, LabelSmoothingCrossEntropy
    from isr_lightning.finetune.module import ReIDFineTuneModule
    from isr_lightning.finetune.sampler import PKSampler
    from isr_lightning.losses import ReliabilityWeightedInfoNCE, reliability_weighted_info_nce
    from isr_lightning.matching import (
        GreedyMiner,
        HungarianMiner,
        InstanceMiner,
        MutualNearestMiner,
        NearestMiner,
        PairMiner,
    )
    from isr_lightning.module import ISRModule, load_isr_release
    from isr_lightning.optim import WarmupCosineLR, WarmupMultiStepLR
    from isr_lightning.predict import EmbeddingWriter, ImageFolderDataModule, ImageFolderDataset
    from isr_lightning.reliability import (
        BidirectionalReliability,
        MarginReliability,
        PairSoftmaxReliability,
        Reliability,
        UniformReliability,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
