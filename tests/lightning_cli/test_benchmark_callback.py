"""``ReIDBenchmarkEvaluation`` (config-friendly) equals ``ReIDEvaluationCallback`` on the same datasets."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from isr_lightning.evaluation import (
    KReciprocal,
    ReIDEvaluationCallback,
    ReIDImageDataset,
    eval_transform,
    load_reid_dataset,
)
from isr_lightning.evaluation.callback import ReIDBenchmarkEvaluation
from tests.evaluation.helpers import TinyReID, make_colored_market


def _validate(tmp_path, callback) -> dict[str, float]:
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=[callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    loader = DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=1)
    return trainer.validate(TinyReID(), dataloaders=loader, verbose=False)[0]


@pytest.mark.parametrize("dataset", ["market1501", "folder"])
def test_benchmark_callback_matches_dataset_callback(tmp_path, dataset):
    root = make_colored_market(tmp_path / "market")
    callback = ReIDBenchmarkEvaluation(root, dataset=dataset, batch_size=3, num_plot_queries=2)
    assert callback.query is None  # nothing is read before setup
    logged = _validate(tmp_path / "a", callback)
    split = load_reid_dataset(dataset, root)
    assert len(callback.query) == len(split.query) and len(callback.gallery) == len(split.gallery)
    _, h, w = TinyReID().data_config["input_size"]
    assert callback.query[0]["image"].shape == (3, h, w)  # the module's eval transform
    tf = eval_transform(TinyReID().data_config)
    reference = ReIDEvaluationCallback(
        ReIDImageDataset(split.query, tf), ReIDImageDataset(split.gallery, tf), batch_size=3, num_plot_queries=0
    )
    expected = _validate(tmp_path / "b", reference)
    assert logged == pytest.approx(expected)
    assert logged["reid/rank1"] == 1.0
    assert callback.last_picture_path is not None


def test_benchmark_callback_rejects_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        ReIDBenchmarkEvaluation(tmp_path, dataset="imagenet")


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ([], None),
        (["--cb.protocol.rerank=true"], KReciprocal()),
        (['--cb.protocol.rerank={"k1": 10, "lambda_value": 0.5}'], KReciprocal(k1=10, lambda_value=0.5)),
        (["--cb.protocol.rerank.k1=12"], KReciprocal(k1=12)),
    ],
)
def test_rerank_is_configurable_from_a_config(option, expected):
    """What LightningCLI does with ``trainer.callbacks``: ``protocol: {rerank: true}`` or its settings."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(ReIDBenchmarkEvaluation, "cb")
    callback = parser.instantiate(parser.parse_args(["--cb.root=somewhere", *option])).cb
    assert callback.protocol.reranking == expected
