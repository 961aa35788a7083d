"""k-reciprocal re-ranking: equal to the paper's equations on full matrices; bounded; wired in."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from isr_lightning.cli import main
from isr_lightning.evaluation import KReciprocal, ReIDEvaluationCallback, evaluate_reid
from isr_lightning.evaluation import rerank as rerank_module
from isr_lightning.evaluation.functional import prepare_features
from isr_lightning.evaluation.protocol import ReIDProtocol
from isr_lightning.evaluation.rerank import rerank_blocks
from tests.evaluation.reference import reference_eval
from tests.evaluation.rerank_reference import rerank_reference


def _case(seed, nq=23, ng=71, n_ids=9, dim=8, n_cams=3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_ids, dim))
    qp, gp = rng.integers(0, n_ids, nq), rng.integers(0, n_ids, ng)
    qf = (centers[qp] + rng.normal(size=(nq, dim))).astype(np.float32)
    gf = (centers[gp] + rng.normal(size=(ng, dim))).astype(np.float32)
    return qf, gf, qp, gp, rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng)


def _reranked(qf, gf, config, metric, chunk_size):
    q = prepare_features(torch.from_numpy(qf), metric)
    g = prepare_features(torch.from_numpy(gf), metric)
    return torch.cat([block.clone() for _, block in rerank_blocks(q, g, config, chunk_size)]).numpy()


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize(("k1", "k2", "lam"), [(20, 6, 0.3), (5, 1, 0.0), (7, 3, 1.0), (4, 2, 0.5)])
def test_distances_equal_the_paper_on_full_matrices(metric, k1, k2, lam):
    qf, gf, *_ = _case(seed=k1 + k2)
    expected = rerank_reference(qf, gf, k1, k2, lam, metric)
    got = _reranked(qf, gf, KReciprocal(k1, k2, lam), metric, chunk_size=5)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert not np.allclose(got, rerank_reference(qf, gf, k1, k2, lam, "euclidean" if metric == "cosine" else "cosine"))


def test_every_chunk_loop_runs_in_pieces(monkeypatch):
    """Tiny working-set limits: neighbour blocks of one row, a few pairs at a time."""
    qf, gf, *_ = _case(seed=3)
    expected = rerank_reference(qf, gf, 20, 6, 0.3, "cosine")
    monkeypatch.setattr(rerank_module, "_BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(rerank_module, "_PAIR_ELEMENTS", 7)
    np.testing.assert_allclose(_reranked(qf, gf, KReciprocal(), "cosine", chunk_size=1), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_evaluate_reid_ranks_by_the_reranked_distances(metric):
    qf, gf, qp, gp, qc, gc = _case(seed=11, nq=40, ng=160, n_ids=12)
    config = KReciprocal(k1=10, k2=4, lambda_value=0.3)
    r = evaluate_reid(qf, gf, qp, gp, qc, gc, ReIDProtocol(metric=metric, rerank=config, chunk_size=16))
    cmc, m_ap, m_inp, _ = reference_eval(rerank_reference(qf, gf, 10, 4, 0.3, metric), qp, gp, qc, gc)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
    assert r.mAP == pytest.approx(m_ap, abs=1e-6) and r.mINP == pytest.approx(m_inp, abs=1e-6)
    assert r.to_dict()["rerank"] == {"k1": 10, "k2": 4, "lambda": 0.3}
    plain = evaluate_reid(qf, gf, qp, gp, qc, gc, ReIDProtocol(metric=metric))
    assert plain.mAP != pytest.approx(r.mAP, abs=1e-4) and "rerank" not in plain.to_dict()


def test_junk_is_left_out_before_reranking():
    qf, gf, qp, gp, qc, gc = _case(seed=12, nq=30, ng=120)
    gp = np.where(np.arange(120) % 4 == 0, -1, gp)
    with_junk = evaluate_reid(qf, gf, qp, gp, qc, gc, ReIDProtocol(rerank=True))
    keep = gp != -1
    without = evaluate_reid(qf, gf[keep], qp, gp[keep], qc, gc[keep], ReIDProtocol(rerank=True))
    assert with_junk.mAP == pytest.approx(without.mAP, abs=1e-9) and with_junk.n_junk == 30


def test_refuses_above_max_items_with_the_reason():
    qf, gf, qp, gp, qc, gc = _case(seed=13)
    with pytest.raises(ValueError, match=r"23 queries \+ 71 gallery = 94 items exceeds max_items=50.*N\^2"):
        evaluate_reid(qf, gf, qp, gp, qc, gc, ReIDProtocol(rerank=KReciprocal(max_items=50)))
    with pytest.raises(ValueError, match="lambda_value"):
        KReciprocal(lambda_value=1.5)
    with pytest.raises(ValueError, match="backend='torch'"):
        evaluate_reid(qf, gf, qp, gp, qc, gc, ReIDProtocol(rerank=True, backend="faiss"))


def test_evaluate_features_rerank_options(tmp_path, capsys):
    qf, gf, qp, gp, qc, gc = _case(seed=14, nq=30, ng=120)
    names = ("query_feats", "gallery_feats", "query_pids", "gallery_pids", "query_camids", "gallery_camids")
    np.savez(tmp_path / "f.npz", **dict(zip(names, (qf, gf, qp, gp, qc, gc), strict=True)))
    argv = [str(tmp_path / "f.npz"), "--rerank.k1", "8", "--rerank.k2", "3", "--rerank.lambda_value", "0.2"]
    assert main(["evaluate-features", *argv]) == 0
    d = json.loads(capsys.readouterr().out)
    _, m_ap, _, _ = reference_eval(rerank_reference(qf, gf, 8, 3, 0.2, "cosine"), qp, gp, qc, gc)
    assert d["mAP"] == pytest.approx(m_ap, abs=1e-6) and d["rerank"] == {"k1": 8, "k2": 3, "lambda": 0.2}
    assert main(["evaluate-features", str(tmp_path / "f.npz"), "--rerank.max_items", "100"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exceeds max_items=100" in err and "--rerank.max_items" in err
    assert main(["evaluate-features", str(tmp_path / "f.npz"), "--rerank", "true"]) == 0  # the defaults
    assert json.loads(capsys.readouterr().out)["rerank"] == {"k1": 20, "k2": 6, "lambda": 0.3}
    assert main(["evaluate-features", str(tmp_path / "f.npz"), "--rerank.k1", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "k1 and k2 must be >= 1" in err


def test_callback_logs_reranked_metrics_next_to_plain_ones(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from tests.evaluation.helpers import TinyReID

    qf, gf, qp, gp, qc, gc = _case(seed=15, nq=20, ng=60, dim=16)
    model = TinyReID()
    model.embed = lambda x: x  # type: ignore[method-assign]  # the loaders carry the features
    query = DataLoader(TensorDataset(torch.from_numpy(qf), torch.from_numpy(qp), torch.from_numpy(qc)), batch_size=7)
    gallery = DataLoader(TensorDataset(torch.from_numpy(gf), torch.from_numpy(gp), torch.from_numpy(gc)), batch_size=7)
    config = KReciprocal(k1=6, k2=3)
    cb = ReIDEvaluationCallback(query, gallery, protocol=ReIDProtocol(rerank=config), num_plot_queries=0)
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[cb]
    )
    trainer.validate(model, dataloaders=DataLoader(TensorDataset(torch.zeros(1, 1))), verbose=False)
    plain = evaluate_reid(qf, gf, qp, gp, qc, gc)
    reranked = evaluate_reid(qf, gf, qp, gp, qc, gc, ReIDProtocol(rerank=config))
    assert cb.last_metrics["mAP"] == pytest.approx(plain.mAP, abs=1e-6)
    assert cb.last_metrics["rerank/mAP"] == pytest.approx(reranked.mAP, abs=1e-6)
    assert cb.last_metrics["rerank/rank1"] == pytest.approx(reranked.rank1)
