"""isr-lightning: identity-seeking self-supervised person re-identification from video."""

from isr_lightning.batch import FramePairBatch

__all__ = ["FramePairBatch"]
__version__ = "0.1.0"
