"""isr-lightning: identity-seeking self-supervised person re-identification from video."""

from isr_lightning.batch import FramePairBatch
from isr_lightning.checkpoints import load_isr_release, load_weights, remap_isr_release_state_dict
from isr_lightning.export import export_onnx, export_torchscript
from isr_lightning.losses import ReliabilityWeightedInfoNCE, reliability_weighted_info_nce
from isr_lightning.matching import (
    GreedyMiner,
    HungarianMiner,
    InstanceMiner,
    MutualNearestMiner,
    NearestMiner,
    PairMiner,
)
from isr_lightning.module import ISRModule
from isr_lightning.optim import WarmupCosineLR
from isr_lightning.predict import EmbeddingWriter, ImageFolderDataModule, ImageFolderDataset
from isr_lightning.reliability import (
    BidirectionalReliability,
    MarginReliability,
    PairSoftmaxReliability,
    Reliability,
    UniformReliability,
)

__all__ = [
    "BidirectionalReliability",
    "EmbeddingWriter",
    "FramePairBatch",
    "GreedyMiner",
    "HungarianMiner",
    "ISRModule",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "InstanceMiner",
    "MarginReliability",
    "MutualNearestMiner",
    "NearestMiner",
    "PairMiner",
    "PairSoftmaxReliability",
    "Reliability",
    "ReliabilityWeightedInfoNCE",
    "UniformReliability",
    "WarmupCosineLR",
    "export_onnx",
    "export_torchscript",
    "load_isr_release",
    "load_weights",
    "reliability_weighted_info_nce",
    "remap_isr_release_state_dict",
]
__version__ = "0.1.0"
