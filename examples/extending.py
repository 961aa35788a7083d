"""Four extension points of isr-lightning, each a few lines (docs/extending.md).

* a pair miner: :class:`MutualHungarianMiner`, Hungarian matches that are also mutual nearest
  neighbours (fewer, surer positives);
* a reliability: :class:`SigmoidReliability`, a pair's weight rising smoothly with its
  similarity;
* a backbone: :class:`TorchvisionISR`, any torchvision classifier's feature extractor;
* a data source: :class:`GrayscaleCrops`, a crop source that hands training grey crops (a
  colour-invariance study), plugged in by :class:`GrayscaleVideoPairDataModule`.

``examples/extending.yaml`` uses all four from a recipe (with this folder on ``PYTHONPATH``):

    PYTHONPATH=examples isr-lightning fit --config cpu_demo --config examples/extending.yaml --data.root /data/videos
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchvision
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from isr_lightning import ISRModule
from isr_lightning.data import VideoPairDataModule
from isr_lightning.data.crop_source import CropRequest, CropSource
from isr_lightning.data.stream import VideoPairStream
from isr_lightning.matching import PairMiner
from isr_lightning.reliability import Reliability


class MutualHungarianMiner(PairMiner):
    """Maximum-weight matching, keeping the matches that are each other's nearest neighbour."""

    def match(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = linear_sum_assignment(similarity, maximize=True)
        mutual = (similarity.argmax(axis=1)[rows] == cols) & (similarity.argmax(axis=0)[cols] == rows)
        return rows[mutual], cols[mutual]


class SigmoidReliability(Reliability):
    """``w = sigmoid((s - centre) / scale)``: pairs well below ``centre`` count little.

    Args:
        centre: the similarity that gets weight 0.5.
        scale: how sharply the weight rises around ``centre``.
    """

    def __init__(self, centre: float = 0.5, scale: float = 0.1) -> None:
        self.centre, self.scale = float(centre), float(scale)

    def __call__(self, similarity: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        return torch.sigmoid((similarity[rows, cols] - self.centre) / self.scale)


class TorchvisionISR(ISRModule):
    """ISR on a torchvision classifier's features (random weights here; pass ``weights=`` for yours).

    Args:
        architecture: a torchvision model with a ``features`` module (``mobilenet_v3_small``,
            ``efficientnet_b0``...).
        **kwargs: every other :class:`~isr_lightning.ISRModule` argument.
    """

    def __init__(self, architecture: str = "mobilenet_v3_small", **kwargs: Any) -> None:
        self.architecture = architecture
        super().__init__(**kwargs)

    def build_backbone(self) -> tuple[nn.Module, int]:
        features = torchvision.models.get_model(self.architecture, weights=None).features
        with torch.no_grad():  # the channels of the last feature map
            channels = features(torch.zeros(1, 3, *self.image_size)).shape[1]
        return nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), channels


class GrayscaleCrops:
    """A :class:`~isr_lightning.data.crop_source.CropSource` giving another source's crops in grey.

    Args:
        inner: the source whose crops are turned grey (the videos, or crop shards).
    """

    def __init__(self, inner: CropSource) -> None:
        self.inner = inner

    def frame_counts(self):  # the inner source's answer, as the three methods below
        return self.inner.frame_counts()

    def clip_index(self, index: int):
        return self.inner.clip_index(index)

    def read(self, index: int, requests: Sequence[CropRequest], cursor: int = 0) -> list[Tensor]:
        """The inner crops, ``(K, 3, H, W)`` uint8, with every channel set to the luma."""
        luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        crops = self.inner.read(index, requests, cursor)
        grey = [(c.float() * luma).sum(1, keepdim=True).round().to(torch.uint8) for c in crops]
        return [g.expand_as(c).contiguous() for g, c in zip(grey, crops, strict=True)]

    def reset(self) -> None:
        self.inner.reset()


class GrayscaleVideoPairDataModule(VideoPairDataModule):
    """:class:`~isr_lightning.data.VideoPairDataModule` whose crops are grey, whatever their source."""

    def build_stream(self, **options: Any) -> VideoPairStream:
        stream = super().build_stream(**options)
        stream.crops = GrayscaleCrops(stream.crops)
        return stream
