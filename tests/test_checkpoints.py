"""Starting weights: isr-lightning checkpoints, backbone state dicts, timm local weight files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from isr_lightning import ISRModule
from isr_lightning.checkpoints import load_weights
from tests.helpers import TINY_VIT


def _random_timm_vit() -> torch.nn.Module:
    torch.manual_seed(1)
    model = timm.create_model("test_vit", pretrained=False, img_size=(32, 16), patch_size=8)  # with its head
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _assert_backbone_equal(module: ISRModule, source: torch.nn.Module) -> None:
    expected = source.state_dict()
    got = module.backbone.state_dict()
    assert got.keys() <= expected.keys()
    for key, value in got.items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)


def test_timm_local_weights_file_via_pretrained_cfg_overlay(tmp_path: Path) -> None:
    source = _random_timm_vit()
    save_file(source.state_dict(), tmp_path / "vit.safetensors")
    kwargs = {**TINY_VIT["backbone_kwargs"], "pretrained_cfg_overlay": {"file": str(tmp_path / "vit.safetensors")}}
    module = ISRModule(backbone="test_vit", pretrained=True, backbone_kwargs=kwargs, image_size=(32, 16))
    _assert_backbone_equal(module, source)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_argument_with_a_backbone_state_dict(tmp_path: Path, suffix: str) -> None:
    source = _random_timm_vit()
    path = tmp_path / f"vit{suffix}"
    torch.save(source.state_dict(), path) if suffix == ".pth" else save_file(source.state_dict(), path)
    module = ISRModule(**TINY_VIT, weights=str(path))  # the classifier head in the file is dropped
    _assert_backbone_equal(module, source)
    fresh = ISRModule(**TINY_VIT)
    assert load_weights(fresh.backbone, fresh.projection, path) == "backbone"


def test_weights_argument_with_an_isr_lightning_checkpoint(trained_ckpt: Path, tmp_path: Path) -> None:
    trained = ISRModule.load_from_checkpoint(trained_ckpt)
    module = ISRModule(**TINY_VIT, embed_dim=16, weights=str(trained_ckpt), temperature=0.05)
    x = torch.randn(2, 3, 32, 16)
    torch.testing.assert_close(module.embed(x), trained.embed(x), rtol=0, atol=0)
    assert "weights" not in module.hparams  # so load_from_checkpoint never needs the file again


def test_weights_that_do_not_match_name_the_file_and_keys(trained_ckpt: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(str(trained_ckpt))) as error:
        ISRModule(**TINY_VIT, embed_dim=32, weights=str(trained_ckpt))  # projection of another size
    assert "ISRModule" in str(error.value)
    resnet = timm.create_model("resnet10t", pretrained=False)
    path = trained_ckpt.parent / "resnet.pth"
    torch.save(resnet.state_dict(), path)
    with pytest.raises(ValueError, match=r"resnet\.pth.*missing keys, e\.g\. \['blocks") as error:
        ISRModule(**TINY_VIT, weights=str(path))
    assert "unexpected keys, e.g. ['bn1" in str(error.value)


def test_a_state_dict_without_batchnorm_counters_loads_but_a_missing_weight_fails(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "no_counters.pth")
    module = ISRModule(backbone="resnet10t", weights=str(tmp_path / "no_counters.pth"), image_size=(32, 16))
    _assert_backbone_equal(module, source)
    del state["layer1.0.conv1.weight"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"1 missing keys, e\.g\. \['layer1\.0\.conv1\.weight'\]"):
        ISRModule(backbone="resnet10t", weights=str(tmp_path / "missing.pth"), image_size=(32, 16))


class WiderHead(ISRModule):
    """A user's subclass (a different head), to check that a checkpoint comes back as its own class."""

    def __init__(self, hidden: int = 24, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.projection = torch.nn.Sequential(
            torch.nn.Linear(self.projection.in_features, hidden), torch.nn.Linear(hidden, self.hparams.embed_dim)
        )


def _save(model: torch.nn.Module, path: Path) -> Path:
    from lightning.pytorch import Trainer

    trainer = Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


def test_load_model_rebuilds_any_library_checkpoint_from_the_file_alone(tmp_path: Path) -> None:
    from isr_lightning import load_model

    x = torch.randn(3, 3, 32, 16)
    isr = ISRModule(**TINY_VIT, embed_dim=12, temperature=0.05)
    loaded = load_model(_save(isr, tmp_path / "isr.ckpt"))
    assert type(loaded) is ISRModule and not loaded.training and loaded.hparams.temperature == 0.05
    torch.testing.assert_close(loaded.embed(x), isr.embed(x), rtol=0, atol=0)

    subclass = WiderHead(hidden=20, **TINY_VIT, embed_dim=12)
    loaded = load_model(_save(subclass, tmp_path / "sub.ckpt"))
    assert type(loaded) is WiderHead and loaded.hparams.hidden == 20
    torch.testing.assert_close(loaded.embed(x), subclass.embed(x), rtol=0, atol=0)


def test_a_checkpoint_never_needs_the_file_it_started_from(trained_ckpt: Path, tmp_path: Path) -> None:
    from isr_lightning import load_model

    start = tmp_path / "start.ckpt"
    start.write_bytes(trained_ckpt.read_bytes())
    module = ISRModule(**TINY_VIT, embed_dim=16, weights=str(start))
    module.hparams["weights"] = str(start)  # as LightningCLI records the whole config
    saved = _save(module, tmp_path / "adapted.ckpt")
    start.unlink()
    assert "weights" not in torch.load(saved, weights_only=True)["hyper_parameters"]
    x = torch.randn(2, 3, 32, 16)
    torch.testing.assert_close(load_model(saved).embed(x), module.embed(x), rtol=0, atol=0)


def test_load_model_refuses_weights_without_an_architecture(tmp_path: Path) -> None:
    from isr_lightning import load_model

    torch.save(_random_timm_vit().state_dict(), tmp_path / "backbone.pth")
    with pytest.raises(ValueError, match="weights without a model"):
        load_model(tmp_path / "backbone.pth")
    with pytest.raises(FileNotFoundError, match=r"absent\.ckpt"):
        load_model(tmp_path / "absent.ckpt")
