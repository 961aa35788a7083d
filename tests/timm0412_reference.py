"""Build a tiny ISR-release-style checkpoint with the real timm 0.4.12 (run as a script).

Run by ``test_isr_release.py`` in a subprocess whose ``PYTHONPATH`` puts timm 0.4.12 first, so
the two timm versions never share a process. Writes ``release.pth`` in the release layout
(``{"state_dict": {"model.*", "feat.*"}}``, buffers and the 1000-class head included, as the
authors' ``model.state_dict()``) and ``reference.pt`` with input images and the release's
embeddings ``F.normalize(feat(model.forward_features(x)))``.

Usage: python timm0412_reference.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer
from torch import nn

# Same architecture arguments as the current-timm side of the test.
ARCH = {
    "img_size": 224,
    "patch_size": 4,
    "window_size": 7,
    "embed_dim": 16,
    "depths": (2, 2, 2, 2),
    "num_heads": (1, 2, 2, 4),
}
EMBED_DIM = 24


def main(out: Path) -> None:
    assert timm.__version__ == "0.4.12", timm.__version__
    torch.manual_seed(0)
    model = SwinTransformer(**ARCH)  # num_classes=1000 head, like timm.create_model(name) in the release
    feat = nn.Linear(model.num_features, EMBED_DIM)
    with torch.no_grad():  # move every weight away from its init (norms 1/0, zero biases)
        for p in [*model.parameters(), *feat.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    model.eval()
    images = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pooled = model.forward_features(images)
        assert pooled.shape == (3, model.num_features), pooled.shape
        embeddings = F.normalize(feat(pooled), dim=-1)
    state_dict = {f"model.{k}": v for k, v in model.state_dict().items()}
    state_dict.update({f"feat.{k}": v for k, v in feat.state_dict().items()})
    torch.save({"state_dict": state_dict}, out / "release.pth")
    torch.save({"images": images, "embeddings": embeddings, "timm": timm.__version__}, out / "reference.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
