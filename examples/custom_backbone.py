"""Plug a backbone that is not in timm into ISRModule by overriding ``build_backbone``.

Here: torchvision's MobileNetV3-Small feature extractor. Run it to train a few steps on
generated frame pairs:

    python examples/custom_backbone.py
"""

from __future__ import annotations

import torch
import torchvision
from lightning.pytorch import Trainer
from torch import nn
from torch.utils.data import DataLoader

from isr_lightning import ISRModule
from isr_lightning.testing import BatchList, make_frame_pair_batch


class MobileNetISR(ISRModule):
    """ISR with torchvision's MobileNetV3-Small; every other ISRModule argument still applies."""

    def build_backbone(self) -> tuple[nn.Module, int]:
        net = torchvision.models.mobilenet_v3_small(weights=None)
        features = nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return features, 576  # channels of the last feature map


def main() -> None:
    model = MobileNetISR(image_size=(64, 32), embed_dim=128)
    batches = [make_frame_pair_batch(4, image_size=(64, 32), seed=s) for s in range(4)]
    trainer = Trainer(accelerator="cpu", max_steps=4, logger=False, enable_checkpointing=False)
    trainer.fit(model, DataLoader(BatchList(batches), batch_size=None))
    print("embedding shape:", tuple(model.embed(torch.randn(2, 3, 64, 32)).shape))


if __name__ == "__main__":
    main()
