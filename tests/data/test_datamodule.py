import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from isr_lightning.batch import FramePairBatch
from isr_lightning.data import BoxSelection, CropTransform, PairSampling, VideoPairDataModule


class _Recorder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)
        self.seen = []

    def training_step(self, batch, batch_idx):
        assert isinstance(batch, FramePairBatch)
        self.seen.append((self.current_epoch, batch.clip_index.tolist(), batch.frame_ids.tolist()))
        return self.layer(batch.crops.mean(dim=(2, 3))).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _dm(root, **kw):
    return VideoPairDataModule(
        root,
        batch_size=2,
        batches_per_epoch=5,
        transform=CropTransform(image_size=(16, 8)),
        sampling=PairSampling(delta_frames=(1, 3)),
        boxes=BoxSelection(min_box_size=2),
        num_workers=0,
        **kw,
    )


def _trainer(tmp_path, max_steps, callbacks=()):
    return pl.Trainer(
        max_steps=max_steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=list(callbacks),
        enable_checkpointing=bool(callbacks),
    )


def test_fit_and_resume_mid_epoch_through_lightning(corpus, tmp_path):
    full = _Recorder()
    _trainer(tmp_path / "a", 8).fit(full, datamodule=_dm(corpus))
    assert len(full.seen) == 8 and [e for e, *_ in full.seen] == [0] * 5 + [1] * 3

    killed = _Recorder()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=7, save_top_k=-1)
    _trainer(tmp_path / "b", 7, [ckpt]).fit(killed, datamodule=_dm(corpus))
    path = next((tmp_path / "ck").glob("*step=7*.ckpt"))
    assert torch.load(path, weights_only=False)["VideoPairDataModule"]["batches_consumed"] == 2

    resumed = _Recorder()
    _trainer(tmp_path / "c", 8).fit(resumed, datamodule=_dm(corpus), ckpt_path=path)
    assert killed.seen + resumed.seen == full.seen


def test_datamodule_state_roundtrip(corpus):
    dm = _dm(corpus)
    dm.setup("fit")
    loader = dm.train_dataloader()
    it = iter(loader)
    first = [next(it) for _ in range(2)]
    state = dm.state_dict()
    assert state["epoch"] == 0 and state["batches_consumed"] == 2
    rest = list(it)
    other = _dm(corpus)
    other.load_state_dict(state)
    other.setup("fit")
    resumed = list(other.train_dataloader())
    assert len(first) + len(resumed) == 5
    for a, b in zip(resumed, rest, strict=True):
        torch.testing.assert_close(a.crops, b.crops)


@pytest.mark.parametrize("pairing", ["temporal", "instance"])
def test_swin_size_and_pairing_options(corpus, pairing):
    dm = VideoPairDataModule(
        corpus,
        batch_size=2,
        batches_per_epoch=1,
        transform=CropTransform(image_size=(224, 224)),
        sampling=PairSampling(pairing=pairing, delta_seconds=(0.04, 0.2)),
        boxes=BoxSelection(min_box_size=2),
        num_workers=0,
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.crops.shape[1:] == (3, 224, 224)
    deltas = (batch.frame_ids[:, 1] - batch.frame_ids[:, 0]).tolist()
    assert all((d == 0) if pairing == "instance" else (1 <= d <= 5) for d in deltas)  # 25 fps


def test_fewer_windows_than_streams_are_reported(corpus, caplog):
    # 8 clips of 24 frames, windows of 8: 24 windows; 2 workers x 16 streams is more, 2 x 8 is not
    dm = VideoPairDataModule(corpus, batch_size=16, transform=CropTransform(image_size=(16, 8)), num_workers=2)
    with caplog.at_level("WARNING", logger="isr_lightning.data.datamodule"):
        dm.setup("fit")
    assert "24 windows of 8 frames for 32 streams" in caplog.text
    enough = VideoPairDataModule(corpus, batch_size=8, transform=CropTransform(image_size=(16, 8)), num_workers=2)
    caplog.clear()
    with caplog.at_level("WARNING", logger="isr_lightning.data.datamodule"):
        enough.setup("fit")
    assert "streams share windows" not in caplog.text


class _SizedRecorder(_Recorder):
    """A model that states its crop size, as ISRModule does, and records the crops' size."""

    image_size = (24, 12)

    def training_step(self, batch, batch_idx):
        self.sizes = [*getattr(self, "sizes", []), tuple(batch.crops.shape[2:])]
        return super().training_step(batch, batch_idx)


def test_the_crop_size_is_the_models(corpus, tmp_path):
    # stated once, on the model: the data reads it when training starts
    model = _SizedRecorder()
    data = VideoPairDataModule(
        corpus,
        batch_size=2,
        batches_per_epoch=2,
        sampling=PairSampling(delta_frames=(1, 3)),
        boxes=BoxSelection(min_box_size=2),
        num_workers=0,
    )
    assert data.transform.image_size is None
    _trainer(tmp_path, 2).fit(model, datamodule=data)
    assert model.sizes == [(24, 12), (24, 12)]
    # another size stated on the data is an error naming both
    with pytest.raises(
        ValueError, match=r"transform.image_size=\[16, 8\] differs from the model's image_size=\[24, 12\]"
    ):
        _trainer(tmp_path, 1).fit(_SizedRecorder(), datamodule=_dm(corpus))
