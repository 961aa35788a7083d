"""ISRModule end to end with tiny timm models."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import nn
from torch.utils.data import DataLoader

from isr_lightning import ISRModule
from isr_lightning.testing import BatchList, make_frame_pair_batch

TINY = {
    "test_vit": {"backbone_kwargs": {"img_size": (32, 16), "patch_size": 8}},
    "resnet10t": {},
}


class GradientRecorder(Callback):
    """Records trainable parameters that never received a non-zero gradient, and non-finite ones.

    Some parameters legitimately get a zero gradient at the first step (timm ResNets start
    every residual branch at zero), so "receives gradient" is checked over all steps.
    """

    def __init__(self) -> None:
        self.reached: set[str] = set()
        self.non_finite: set[str] = set()
        self.trainable: set[str] = set()

    def on_after_backward(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for name, p in pl_module.named_parameters():
            if not p.requires_grad:
                continue
            self.trainable.add(name)
            if p.grad is not None and not torch.isfinite(p.grad).all():
                self.non_finite.add(name)
            if p.grad is not None and p.grad.abs().sum() > 0:
                self.reached.add(name)

    @property
    def missing(self) -> list[str]:
        return sorted((self.trainable - self.reached) | self.non_finite)


def _trainer(max_steps: int, tmp_path: Path, callbacks: list[Callback]) -> Trainer:
    return Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


@pytest.mark.parametrize("backbone", sorted(TINY))
def test_fit_few_steps_every_parameter_gets_gradient(backbone: str, tmp_path: Path) -> None:
    seed_everything(0)
    model = ISRModule(backbone=backbone, image_size=(32, 16), embed_dim=32, **TINY[backbone])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [make_frame_pair_batch(4, seed=s) for s in range(3)]
    recorder = GradientRecorder()
    trainer = _trainer(3, tmp_path, [recorder])
    trainer.fit(model, DataLoader(BatchList(batches), batch_size=None))
    metrics = trainer.callback_metrics
    assert math.isfinite(metrics["train/loss"].item())
    assert 0.0 <= metrics["train/pair_precision"].item() <= 1.0
    assert metrics["train/pairs_per_frame_pair"].item() >= 1.0
    assert recorder.missing == []
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert len(changed) > 0.5 * len(before)


def test_embed_is_normalised_deterministic_and_restores_mode() -> None:
    model = ISRModule(backbone="resnet18", pretrained=False)
    x = torch.randn(3, 3, 256, 128)
    model.train()
    first, second = model.embed(x), model.embed(x)
    assert first.shape == (3, 512) and not first.requires_grad
    torch.testing.assert_close(first.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(first, second)  # eval mode: BatchNorm uses running statistics
    assert model.training


def test_checkpoint_round_trip_gives_identical_embeddings(tmp_path: Path) -> None:
    model = ISRModule(backbone="test_vit", image_size=(32, 16), embed_dim=16, **TINY["test_vit"])
    trainer = _trainer(1, tmp_path, [])
    trainer.fit(model, DataLoader(BatchList([make_frame_pair_batch(3)]), batch_size=None))
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    restored = ISRModule.load_from_checkpoint(tmp_path / "model.ckpt")
    x = torch.randn(2, 3, 32, 16)
    torch.testing.assert_close(restored.embed(x), model.embed(x), rtol=0, atol=0)


class TinyConvISR(ISRModule):
    """A subclass with a hand-written backbone (the documented override point)."""

    def build_backbone(self) -> tuple[nn.Module, int]:
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()), 8


def test_subclass_with_custom_backbone_trains(tmp_path: Path) -> None:
    model = TinyConvISR(image_size=(32, 16), embed_dim=8)
    recorder = GradientRecorder()
    _trainer(2, tmp_path, [recorder]).fit(model, DataLoader(BatchList([make_frame_pair_batch(3)] * 2), batch_size=None))
    assert recorder.missing == []
    assert model.embed(torch.randn(2, 3, 32, 16)).shape == (2, 8)


def _nt_xent_reference(embeddings: torch.Tensor, pairs: list[tuple[int, int]], temperature: float) -> float:
    """SimCLR's NT-Xent written out: both directions of every pair, every other crop a negative."""
    e = embeddings.double()
    terms = []
    for i, j in pairs:
        for a, b in ((i, j), (j, i)):
            others = [k for k in range(len(e)) if k != a]
            denominator = sum(math.exp(float(e[a] @ e[k]) / temperature) for k in others)
            terms.append(-math.log(math.exp(float(e[a] @ e[b]) / temperature) / denominator))
    return sum(terms) / len(terms)


def test_instance_mode_pairs_two_views() -> None:
    batch = make_frame_pair_batch(2, seed=3)
    side0 = batch.frame_side == 0
    batch.crops[~side0] = batch.crops[side0] + 0.01  # frame t+delta := second view of frame t
    batch.frame_side[~side0], batch.pair_index[~side0] = 1, batch.pair_index[side0]
    model = ISRModule(
        backbone="resnet10t", image_size=(32, 16), pair_miner="instance", reliability="uniform", temperature=0.2
    )
    # crop k of side 0 with crop k of side 1, frame pair by frame pair
    pairs = []
    for p in batch.pair_index.unique().tolist():
        first, second = (torch.nonzero((batch.pair_index == p) & (batch.frame_side == s)).flatten() for s in (0, 1))
        pairs += list(zip(first.tolist(), second.tolist()))
    assert len(pairs) == int(side0.sum())

    loss = model.training_step(batch, 0)
    with torch.no_grad():
        embeddings = model(batch.crops)  # training mode as in the step: the same BatchNorm statistics
    assert loss.item() == pytest.approx(_nt_xent_reference(embeddings, pairs, 0.2), rel=1e-5)


def test_pretrained_download_failure_is_a_clear_error() -> None:
    # conftest sets HF_HUB_OFFLINE=1: the download fails at once, as it would without network.
    with pytest.raises(RuntimeError, match="pretrained_cfg_overlay"):
        ISRModule(backbone="resnet18", pretrained=True)


def test_unknown_plugins_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown pair miner"):
        ISRModule(backbone="resnet10t", pair_miner="hungarain")
    with pytest.raises(ValueError, match="unknown reliability"):
        ISRModule(backbone="resnet10t", reliability="softmax!")


def _bn_layers(model: ISRModule) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_bn_stats_keeps_running_statistics_and_trains_affine_weights(freeze: bool, tmp_path: Path) -> None:
    seed_everything(0)
    model = ISRModule(backbone="resnet10t", image_size=(32, 16), embed_dim=16, freeze_bn_stats=freeze)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    modes: list[bool] = []

    class RecordBatchNormMode(Callback):
        def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: object) -> None:
            modes.append(any(layer.training for layer in _bn_layers(model)))

    batches = [make_frame_pair_batch(4, seed=s) for s in range(2)]
    _trainer(2, tmp_path, [RecordBatchNormMode()]).fit(model, DataLoader(BatchList(batches), batch_size=None))
    after = model.backbone.state_dict()
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    affine = [k for k in before if (k.startswith("bn") or ".bn" in k) and k.endswith(("weight", "bias"))]
    assert stats and affine
    assert all(torch.equal(before[k], after[k]) for k in stats) == freeze
    assert any(not torch.equal(before[k], after[k]) for k in affine)
    assert modes == [not freeze] * 2
    model.embed(torch.randn(2, 3, 32, 16))  # eval and back to train
    assert model.training and any(layer.training for layer in _bn_layers(model)) == (not freeze)


def test_backbone_lr_scale_sets_the_backbone_group_rate(tmp_path: Path) -> None:
    seed_everything(0)
    model = ISRModule(
        backbone="resnet10t",
        image_size=(32, 16),
        embed_dim=16,
        backbone_lr_scale=0.0,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.5),
        lr_scheduler=None,
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = _trainer(1, tmp_path, [])
    trainer.fit(model, DataLoader(BatchList([make_frame_pair_batch(4)]), batch_size=None))
    assert [group["lr"] for group in trainer.optimizers[0].param_groups] == [0.0, 0.5]
    params = dict(model.named_parameters())
    frozen = [k for k in params if k.startswith("backbone.")]
    assert all(torch.equal(before[k], params[k]) for k in frozen)
    assert not torch.equal(before["projection.weight"], params["projection.weight"])
    with pytest.raises(ValueError, match="backbone_lr_scale"):
        ISRModule(backbone="resnet10t", backbone_lr_scale=-1.0)


def test_frozen_modules_keep_their_weights_and_run_in_eval_mode(tmp_path: Path) -> None:
    seed_everything(0)
    frozen = ["conv1", "bn1", "layer1"]
    model = ISRModule(backbone="resnet10t", image_size=(32, 16), embed_dim=16, frozen_modules=frozen)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    modes: list[bool] = []

    class RecordMode(Callback):
        def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: object) -> None:
            modes.append(any(m.training for name in frozen for m in model.backbone.get_submodule(name).modules()))

    trainer = _trainer(2, tmp_path, [RecordMode()])
    trainer.fit(model, DataLoader(BatchList([make_frame_pair_batch(4, seed=s) for s in range(2)]), batch_size=None))
    after = model.backbone.state_dict()
    in_frozen = [k for k in before if k.split(".")[0] in frozen]
    assert in_frozen and all(torch.equal(before[k], after[k]) for k in in_frozen)  # running stats too
    assert not torch.equal(before["layer2.0.conv1.weight"], after["layer2.0.conv1.weight"])
    assert modes == [False, False] and model.backbone.layer2.training
    optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert not any(id(p) in optimized for name in frozen for p in model.backbone.get_submodule(name).parameters())
    with pytest.raises(ValueError, match=r"no backbone submodule \['layer9'\].*'layer1'"):
        ISRModule(backbone="resnet10t", frozen_modules=["layer9"])
