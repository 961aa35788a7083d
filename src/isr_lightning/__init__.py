"""isr-lightning: identity-seeking self-supervised person re-identification from video."""

from isr_lightning.batch import FramePairBatch
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
from isr_lightning.reliability import (
    BidirectionalReliability,
    MarginReliability,
    PairSoftmaxReliability,
    Reliability,
    UniformReliability,
)

__all__ = [
    "BidirectionalReliability",
    "FramePairBatch",
    "GreedyMiner",
    "HungarianMiner",
    "ISRModule",
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
    "reliability_weighted_info_nce",
]
__version__ = "0.1.0"
