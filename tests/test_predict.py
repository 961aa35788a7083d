"""``trainer.predict`` over an image folder writes embeddings with their file names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from isr_lightning import ISRModule
from isr_lightning.predict import EmbeddingWriter, ImageFolderDataset
from tests.helpers import TINY_VIT, tiny_trainer

NAMES = ["a.jpg", "b.png", "sub/c.jpg", "sub/d.JPEG", "sub/deeper/e.bmp"]


@pytest.fixture()
def image_folder(tmp_path: Path) -> Path:
    root = tmp_path / "crops"
    rng = np.random.default_rng(0)
    for name in NAMES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40 + len(name), 20, 3), dtype=np.uint8)).save(root / name)
    (root / "notes.txt").write_text("not an image")
    return root


def _expected(model: ISRModule, dataset: ImageFolderDataset) -> np.ndarray:
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    return model.embed(images).numpy()


def test_image_folder_dataset(image_folder: Path) -> None:
    dataset = ImageFolderDataset(image_folder, {"input_size": (3, 32, 16), "mean": (0.5,) * 3, "std": (0.5,) * 3})
    assert [dataset[i][1] for i in range(len(dataset))] == sorted(NAMES)
    assert dataset[0][0].shape == (3, 32, 16)
    with pytest.raises(FileNotFoundError, match="no image"):
        ImageFolderDataset(image_folder, {}, extensions=(".gif",))


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_predict_writes_embeddings_and_names(image_folder: Path, tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(0)
    model = ISRModule(**TINY_VIT, embed_dim=8)
    dataset = ImageFolderDataset(image_folder, model.data_config)
    out = tmp_path / f"embeddings{suffix}"
    trainer = tiny_trainer(tmp_path, callbacks=[EmbeddingWriter(out)])
    trainer.predict(model, DataLoader(dataset, batch_size=2), return_predictions=False)

    if suffix == ".npz":
        data = np.load(out)
        embeddings, names = data["embeddings"], data["names"].tolist()
    else:
        embeddings = np.load(out)
        names = out.with_suffix(".names.txt").read_text().splitlines()
    assert embeddings.dtype == np.float32 and embeddings.shape == (len(NAMES), 8)
    assert names == sorted(NAMES)
    np.testing.assert_allclose(embeddings, _expected(model, dataset), rtol=0, atol=1e-6)


def test_predict_step_on_plain_tensors_names_rows_by_index(tmp_path: Path) -> None:
    model = ISRModule(**TINY_VIT, embed_dim=8)
    images = torch.randn(5, 3, 32, 16)
    trainer = tiny_trainer(tmp_path, callbacks=[EmbeddingWriter(tmp_path / "e.npz")])
    predictions = trainer.predict(model, DataLoader(images, batch_size=2))
    torch.testing.assert_close(torch.cat(predictions), model.embed(images))
    data = np.load(tmp_path / "e.npz")
    assert data["names"].tolist() == ["0", "1", "2", "3", "4"]


@pytest.mark.slow
def test_predict_under_ddp_writes_every_image_once_in_order(image_folder: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ISRModule(**TINY_VIT, embed_dim=8)
    dataset = ImageFolderDataset(image_folder, model.data_config)
    out = tmp_path / "ddp.npz"
    # 5 images on 2 ranks: the distributed sampler repeats one image to even out the ranks
    trainer = tiny_trainer(tmp_path, callbacks=[EmbeddingWriter(out)], devices=2, strategy="ddp_spawn")
    trainer.predict(model, DataLoader(dataset, batch_size=2), return_predictions=False)
    data = np.load(out)
    assert data["names"].tolist() == sorted(NAMES)
    np.testing.assert_allclose(data["embeddings"], _expected(model, dataset), rtol=0, atol=1e-6)


def test_writer_rejects_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.npz or \.npy"):
        EmbeddingWriter(tmp_path / "e.csv")


def test_lightning_cli_predict_on_an_image_folder(image_folder: Path, trained_ckpt: Path, tmp_path: Path) -> None:
    # the checkpoint alone: its class and architecture come from the file, its weights too
    from isr_lightning import load_model
    from isr_lightning.lightning_cli import run_lightning_cli

    out = tmp_path / "cli.npz"
    run_lightning_cli(
        [
            "predict",
            f"--ckpt_path={trained_ckpt}",
            "--data=isr_lightning.predict.ImageFolderDataModule",
            f"--data.root={image_folder}",
            "--data.batch_size=2",
            "--trainer.callbacks=isr_lightning.predict.EmbeddingWriter",
            f"--trainer.callbacks.output_path={out}",
            "--trainer.logger=false",
            "--trainer.accelerator=cpu",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
            "--return_predictions=false",
        ]
    )
    model = load_model(trained_ckpt)
    data = np.load(out)
    assert data["names"].tolist() == sorted(NAMES)
    dataset = ImageFolderDataset(image_folder, model.data_config)
    np.testing.assert_allclose(data["embeddings"], _expected(model, dataset), rtol=0, atol=1e-6)
