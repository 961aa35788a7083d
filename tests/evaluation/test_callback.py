"""ReIDEvaluationCallback with a stand-in module: validate, fit, flip, ranked-list picture."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from isr_lightning.evaluation import (
    ReIDEvaluationCallback,
    ReIDImageDataset,
    eval_transform,
    evaluate_reid,
    load_market1501,
)
from isr_lightning.evaluation.callback import embed_batch
from isr_lightning.evaluation.protocol import ReIDProtocol
from isr_lightning.evaluation.visualize import GREEN, RED
from tests.evaluation.helpers import TinyReID, make_colored_market


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    root = make_colored_market(tmp_path_factory.mktemp("market"))
    split = load_market1501(root)
    tf = eval_transform(TinyReID().data_config)
    return ReIDImageDataset(split.query, tf), ReIDImageDataset(split.gallery, tf)


def _expected(model, query, gallery, flip=False, metric="cosine"):
    def feats(ds):
        xs = torch.stack([ds[i]["image"] for i in range(len(ds))])
        return embed_batch(model, xs, flip)

    q_p = [i.pid for i in query.items]
    g_p = [i.pid for i in gallery.items]
    q_c = [i.camid for i in query.items]
    g_c = [i.camid for i in gallery.items]
    return evaluate_reid(feats(query), feats(gallery), q_p, g_p, q_c, g_c, ReIDProtocol(metric=metric))


def _val_loader():
    return DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=1)


def _trainer(tmp_path, **kw):
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        **kw,
    )


def test_validate_logs_metrics_and_writes_png(tmp_path, market):
    query, gallery = market
    model = TinyReID()
    cb = ReIDEvaluationCallback(query, gallery, batch_size=3, num_plot_queries=3, plot_topk=5)
    trainer = _trainer(tmp_path, callbacks=[cb])
    logged = trainer.validate(model, dataloaders=_val_loader(), verbose=False)[0]
    ref = _expected(model, query, gallery)
    assert ref.rank1 == 1.0  # colours make every query's first match correct
    assert logged["reid/rank1"] == pytest.approx(ref.rank1)
    assert logged["reid/mAP"] == pytest.approx(ref.mAP, abs=1e-6)
    assert logged["reid/mINP"] == pytest.approx(ref.mINP, abs=1e-6)
    assert set(cb.last_metrics) == {"rank1", "rank5", "rank10", "mAP", "mINP"}
    # Picture: 3 rows, first gallery cell framed green (rank-1 correct), a later one red.
    img = np.asarray(Image.open(cb.last_picture_path).convert("RGB"))
    assert img.shape[0] > 3 * 128 and img.shape[1] > 6 * 64
    w, h, gap = 64, 128, 8
    x_first = gap + 1 * (w + gap) + gap // 2 - 2  # inside the frame of column 1
    y_row0 = gap + h // 2
    assert tuple(img[y_row0, x_first]) == GREEN
    x_last = gap + 5 * (w + gap) + gap // 2 - 2  # rank 5: only 2 correct matches per query
    assert tuple(img[y_row0, x_last]) == RED


def test_flip_averaging_changes_and_matches(tmp_path, market):
    query, gallery = market
    model = TinyReID()
    cb = ReIDEvaluationCallback(query, gallery, flip=True, num_plot_queries=0)
    trainer = _trainer(tmp_path, callbacks=[cb])
    logged = trainer.validate(model, dataloaders=_val_loader(), verbose=False)[0]
    ref = _expected(model, query, gallery, flip=True)
    assert logged["reid/mAP"] == pytest.approx(ref.mAP, abs=1e-6)
    x = torch.stack([query[i]["image"] for i in range(2)])
    a, b = embed_batch(model, x, flip=False), embed_batch(model, x, flip=True)
    assert not torch.allclose(a, b)  # the flip really is used
    assert torch.allclose(b, (model.embed(x) + model.embed(x.flip(3))) / 2)


def test_runs_during_fit_every_n_epochs(tmp_path, market):
    query, gallery = market
    model = TinyReID()
    cb = ReIDEvaluationCallback(
        DataLoader(query, batch_size=4),
        DataLoader(gallery, batch_size=4),
        every_n_epochs=2,
        num_plot_queries=0,
    )
    calls = []
    orig = cb.evaluate
    cb.evaluate = lambda t, m: calls.append(t.current_epoch) or orig(t, m)
    trainer = _trainer(
        tmp_path,
        callbacks=[cb],
        max_epochs=4,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=1,
    )
    trainer.fit(model, train_dataloaders=_val_loader(), val_dataloaders=_val_loader())
    assert calls == [1, 3]  # not during the sanity check, every second epoch
    assert "reid/mAP" in trainer.callback_metrics


def test_bad_batch_type_raises(tmp_path):
    model = TinyReID()
    cb = ReIDEvaluationCallback(
        DataLoader(TensorDataset(torch.zeros(2, 3, 16, 8)), batch_size=2),
        DataLoader(TensorDataset(torch.zeros(2, 3, 16, 8)), batch_size=2),
    )
    trainer = _trainer(tmp_path, callbacks=[cb])
    with pytest.raises(TypeError, match="ReID batches"):
        trainer.validate(model, dataloaders=_val_loader(), verbose=False)


def test_benchmark_callback_options_in_a_config_are_the_parent_options() -> None:
    """YAML ``init_args`` of ReIDBenchmarkEvaluation reach every ReIDEvaluationCallback option via **kwargs."""
    import inspect

    from jsonargparse import ArgumentParser

    from isr_lightning.evaluation.callback import ReIDBenchmarkEvaluation

    parser = ArgumentParser()
    parser.add_class_arguments(ReIDBenchmarkEvaluation, "callback")
    options = set(parser.get_defaults().callback.keys())
    parent = set(inspect.signature(ReIDEvaluationCallback).parameters) - {"query", "gallery"}
    assert options == parent | {"root", "dataset"}
    assert parser.parse_args(["--callback.root=x", "--callback.every_n_epochs=3"]).callback.every_n_epochs == 3
