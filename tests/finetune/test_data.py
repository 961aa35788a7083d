"""ReIDTrainDataModule: relabelling, batches, validation loaders, dataset formats, errors, resume."""

from __future__ import annotations

import typing
from collections import Counter
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from PIL import Image

from isr_lightning.data import DataRootError
from isr_lightning.data.transforms import CropTransform
from isr_lightning.evaluation import DATASETS, load_market_layout
from isr_lightning.finetune import ReIDTrainDataModule
from isr_lightning.synth.benchmark import BenchmarkConfig
from tests.finetune.helpers import NUM_TRAIN_IDENTITIES


def _dm(root: Path, **kwargs: object) -> ReIDTrainDataModule:
    options = {
        "dataset": "folder",
        "transform": CropTransform(image_size=(32, 16)),
        "ids_per_batch": 4,
        "images_per_id": 2,
        "num_workers": 0,
    }
    options.update(kwargs)
    return ReIDTrainDataModule(root, **options)


def test_relabelled_training_batches_and_raw_validation_ids(market_folder: Path) -> None:
    dm = _dm(market_folder)
    dm.setup("fit")
    split = load_market_layout(market_folder)
    pids = sorted({item.pid for item in split.train})
    assert dm.num_classes == len(pids) == NUM_TRAIN_IDENTITIES
    assert dm.label_pids == pids
    # each training item keeps its file and camera, with the rank of its person id as label
    assert [(i.path, pids[i.pid], i.camid) for i in dm.train_items] == [(i.path, i.pid, i.camid) for i in split.train]

    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 3, 32, 16) and batch["image"].dtype == torch.float32
    assert set(Counter(batch["pid"].tolist()).values()) == {2} and len(set(batch["pid"].tolist())) == 4
    for label, index in zip(batch["pid"].tolist(), batch["index"].tolist(), strict=True):
        assert pids[label] == split.train[index].pid

    query, gallery = dm.val_dataloader()
    assert len(query.dataset) == len(split.query) and len(gallery.dataset) == len(split.gallery)
    first = next(iter(query))
    assert first["pid"].tolist()[:3] == [i.pid for i in split.query[:3]]  # dataset ids, not labels
    # validation images: resized and normalised, no augmentation
    eval_crop = CropTransform(image_size=(32, 16), train=False)
    expected = eval_crop([np.array(Image.open(split.query[0].path).convert("RGB"))])[0]
    torch.testing.assert_close(first["image"][0], expected)
    assert not torch.equal(dm.train_dataloader().dataset[0]["image"], dm.train_dataloader().dataset[0]["image"])


def test_msmt17_lists_train_and_val(tmp_path: Path) -> None:
    root = tmp_path / "MSMT17_V1"
    lines = {"list_train.txt": [], "list_val.txt": [], "list_query.txt": [], "list_gallery.txt": []}
    for pid in range(3):
        for j, cam in enumerate((1, 4, 7)):
            folder, lst = ("train", "list_train.txt" if j < 2 else "list_val.txt")
            name = f"{pid:04d}/{pid:04d}_{j:03d}_{cam:02d}_0303morning_0015_0.jpg"
            (root / folder / name).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 32), (pid * 40, 0, 0)).save(root / folder / name)
            lines[lst].append(f"{name} {pid + 10}")
            test_name = f"{pid:04d}/{pid:04d}_{j:03d}_{cam:02d}_0303noon_0015_0.jpg"
            (root / "test" / test_name).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 32), (0, pid * 40, 0)).save(root / "test" / test_name)
            lines["list_query.txt" if j == 0 else "list_gallery.txt"].append(f"{test_name} {pid}")
    for name, content in lines.items():
        (root / name).write_text("\n".join(content) + "\n")
    dm = _dm(tmp_path, dataset="msmt17", ids_per_batch=2)
    dm.setup("fit")
    assert dm.num_classes == 3 and dm.label_pids == [10, 11, 12]
    assert len(dm.train_items) == 9 and {i.camid for i in dm.train_items} == {0, 3, 6}
    assert sorted(Counter(i.pid for i in dm.train_items).values()) == [3, 3, 3]


def test_missing_training_split_is_one_line_error(tmp_path: Path) -> None:
    for folder, name in (("query", "0001_c1s1_000001_01.jpg"), ("bounding_box_test", "0001_c2s1_000001_01.jpg")):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 16)).save(tmp_path / folder / name)
    with pytest.raises(DataRootError, match=r"no training images for 'market1501'.*bounding_box_train") as error:
        _dm(tmp_path, dataset="market1501").setup("fit")
    assert "\n" not in str(error.value)
    with pytest.raises(DataRootError, match=r"data root not found: .*nope\. root is a labelled ReID dataset"):
        _dm(tmp_path / "nope").setup("fit")
    with pytest.raises(DataRootError, match="the data root is missing"):
        _dm(None).setup("fit")
    with pytest.raises(ValueError, match="unknown dataset 'market'"):
        _dm(tmp_path, dataset="market")
    # the names the command line accepts are the readers there are
    accepted = typing.get_args(typing.get_type_hints(ReIDTrainDataModule.__init__)["dataset"])
    assert sorted(accepted) == sorted(DATASETS)


def test_synthetic_data_rendered_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISR_LIGHTNING_CACHE", str(tmp_path))
    config = BenchmarkConfig(
        num_identities=2, num_cameras=2, num_distractors=1, num_junk=1, num_train_identities=4, image_width=8
    )
    dm = ReIDTrainDataModule(None, dataset="folder", synthetic=config, ids_per_batch=2, num_workers=0)
    assert dm.root.parent == tmp_path / "finetune"
    dm.prepare_data()
    assert (dm.root / "benchmark.json").is_file()
    assert dm.num_classes == 4
    with pytest.raises(ValueError, match="num_train_identities"):
        ReIDTrainDataModule(None, dataset="folder", synthetic=BenchmarkConfig(num_identities=2))


class _Recorder(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)
        self.seen: list[tuple[int, list[int]]] = []

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        self.seen.append((self.current_epoch, batch["index"].tolist()))
        return self.layer(batch["image"].mean(dim=(2, 3))).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _trainer(root: Path, max_steps: int, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    return pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=callbacks or [],
        enable_checkpointing=bool(callbacks),
        limit_val_batches=0,
    )


def test_resume_mid_epoch_through_lightning(market_folder: Path, tmp_path: Path) -> None:
    per_epoch = _dm(market_folder).train_dataloader().sampler.num_batches
    total, killed_at = per_epoch + 3, per_epoch + 2
    full = _Recorder()
    # a worker process fetches batches ahead of the training loop: the saved position must not
    _trainer(tmp_path / "a", total).fit(full, datamodule=_dm(market_folder, num_workers=1))
    assert [epoch for epoch, _ in full.seen] == [0] * per_epoch + [1] * 3

    killed = _Recorder()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=killed_at, save_top_k=-1)
    _trainer(tmp_path / "b", killed_at, [checkpoint]).fit(killed, datamodule=_dm(market_folder, num_workers=1))
    path = next((tmp_path / "ck").glob(f"*step={killed_at}*.ckpt"))
    (saved,) = torch.load(path, weights_only=True)["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert (saved["epoch"], saved["batches_done"]) == (1, 2)

    resumed = _Recorder()
    _trainer(tmp_path / "c", total).fit(resumed, datamodule=_dm(market_folder, num_workers=1), ckpt_path=path)
    assert killed.seen + resumed.seen == full.seen
