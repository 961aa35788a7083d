"""Embedding datasets and benchmarks, and scoring them under the standard protocol."""

from __future__ import annotations

import pytest
import torch

from isr_lightning.evaluation import ReIDImageDataset, eval_transform, evaluate_reid, load_market_layout
from isr_lightning.evaluation.features import (
    BENCHMARK_SCORES,
    Features,
    benchmark_scores,
    embed_split,
    extract_features,
)
from tests.evaluation.helpers import TinyReID, make_colored_market


@pytest.fixture
def split(tmp_path):
    return load_market_layout(make_colored_market(tmp_path / "m"))


def _one_by_one(model, dataset, flip=False):
    rows = []
    for i in range(len(dataset)):
        image = dataset[i]["image"][None]
        emb = model.embed(image)
        if flip:
            emb = (emb + model.embed(torch.flip(image, dims=[3]))) / 2
        rows.append(emb[0])
    return torch.stack(rows)


@pytest.mark.parametrize("flip", [False, True])
def test_extract_features_in_dataset_order(split, flip):
    model = TinyReID()
    dataset = ReIDImageDataset(split.gallery, eval_transform(model.data_config))
    out = extract_features(model, dataset, batch_size=3, flip=flip)  # batches of 3: the last one is short
    assert isinstance(out, Features)
    feats, pids, camids = out  # still a tuple, as `evaluate` unpacks it
    assert feats.shape == (len(split.gallery), 16) and feats.dtype == torch.float32
    torch.testing.assert_close(feats, _one_by_one(model, dataset, flip))
    assert pids.tolist() == [item.pid for item in split.gallery]
    assert camids.tolist() == [item.camid for item in split.gallery]
    if flip:  # the flipped images change the embedding (the helper's images are asymmetric)
        assert not torch.allclose(feats, _one_by_one(model, dataset, flip=False))


def test_embed_split_uses_the_model_transform(split):
    model = TinyReID()
    query, gallery = embed_split(model, split, batch_size=4)
    transform = eval_transform(model.data_config)
    torch.testing.assert_close(query.feats, _one_by_one(model, ReIDImageDataset(split.query, transform)))
    torch.testing.assert_close(gallery.feats, _one_by_one(model, ReIDImageDataset(split.gallery, transform)))
    assert query.pids.tolist() == [1, 2, 3, 4] and query.camids.tolist() == [0, 0, 0, 0]


def test_benchmark_scores_are_the_protocol_scores(split):
    query, gallery = embed_split(TinyReID(), split)
    scores = benchmark_scores(query, gallery)
    assert tuple(scores) == BENCHMARK_SCORES
    result = evaluate_reid(query.feats, gallery.feats, query.pids, gallery.pids, query.camids, gallery.camids)
    assert scores == pytest.approx({key: getattr(result, key) for key in BENCHMARK_SCORES})
    # a gallery that ranks every true match last
    worst = Features(-gallery.feats, gallery.pids, gallery.camids)
    assert benchmark_scores(query, worst)["mAP"] < scores["mAP"]
