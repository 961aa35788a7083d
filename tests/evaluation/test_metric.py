"""ReIDMetric: equals evaluate_reid; sampler-padding duplicates dropped; 2-process DDP == 1."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from isr_lightning.evaluation import ReIDMetric, evaluate_reid
from isr_lightning.evaluation.protocol import ReIDProtocol
from tests.evaluation.reference import distance_matrix, reference_eval


def _data(seed=0, nq=37, ng=151, dim=8, n_ids=12):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_ids, dim, generator=g)
    qp = torch.randint(0, n_ids, (nq,), generator=g)
    gp = torch.randint(0, n_ids, (ng,), generator=g)
    qf = centers[qp] + torch.randn(nq, dim, generator=g)
    gf = centers[gp] + torch.randn(ng, dim, generator=g)
    qc = torch.randint(0, 4, (nq,), generator=g)
    gc = torch.randint(0, 4, (ng,), generator=g)
    return qf, gf, qp, gp, qc, gc


def _feed(metric, data, rank=0, world=1, batch=5):
    """Feed like a DistributedSampler(shuffle=False): rank r gets r, r+world, ... padded."""
    qf, gf, qp, gp, qc, gc = data
    for feats, pids, cams, is_q in ((qf, qp, qc, True), (gf, gp, gc, False)):
        n = feats.shape[0]
        per_rank = math.ceil(n / world)
        idx = torch.arange(per_rank * world) % n  # padding repeats the first samples
        mine = idx[rank::world]
        for s in range(0, len(mine), batch):
            b = mine[s : s + batch]
            metric.update(feats[b], pids[b], cams[b], is_query=is_q, indexes=b)


def test_metric_equals_reference_and_engine():
    data = _data()
    m = ReIDMetric(ReIDProtocol(max_rank=10))
    _feed(m, data)
    out = m.compute()
    qf, gf, qp, gp, qc, gc = (t.numpy() for t in data)
    cmc, m_ap, m_inp, _ = reference_eval(distance_matrix(qf, gf, "cosine"), qp, gp, qc, gc, 10)
    assert float(out["rank1"]) == pytest.approx(cmc[0], abs=1e-6)
    assert float(out["rank5"]) == pytest.approx(cmc[4], abs=1e-6)
    assert float(out["mAP"]) == pytest.approx(m_ap, abs=1e-6)
    assert float(out["mINP"]) == pytest.approx(m_inp, abs=1e-6)
    assert m.result is not None and m.result.n_query == 37 and m.result.n_gallery == 151


def test_padding_duplicates_are_dropped():
    data = _data()
    ref = ReIDMetric()
    _feed(ref, data)
    dup = ReIDMetric()
    _feed(dup, data)
    qf, gf, qp, gp, qc, gc = data
    # A padded sampler repeats items: feed some again with the same indexes.
    dup.update(qf[:3], qp[:3], qc[:3], is_query=True, indexes=torch.arange(3))
    dup.update(gf[:4], gp[:4], gc[:4], is_query=False, indexes=torch.arange(4))
    a, b = ref.compute(), dup.compute()
    assert dup.result.n_query == 37 and dup.result.n_gallery == 151
    for k in a:
        assert float(a[k]) == float(b[k])
    # Without indexes the duplicates would count (the test above can fail).
    nodup = ReIDMetric()
    nodup.update(torch.cat([qf, qf[:3]]), torch.cat([qp, qp[:3]]), torch.cat([qc, qc[:3]]), True)
    nodup.update(gf, gp, gc, False)
    nodup.compute()
    assert nodup.result.n_query == 40


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_metric_validation_errors():
    with pytest.raises(ValueError, match="metric"):
        ReIDMetric(ReIDProtocol(metric="manhattan"))
    with pytest.raises(ValueError, match="max_rank"):
        ReIDMetric(ReIDProtocol(max_rank=0))
    m = ReIDMetric()
    with pytest.raises(ValueError, match="before any update"):
        m.compute()
    m.update(torch.randn(2, 4), torch.tensor([1, 2]), torch.tensor([0, 1]), is_query=True)
    with pytest.raises(ValueError, match="both query"):
        m.compute()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_path: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        m = ReIDMetric(ReIDProtocol(max_rank=12))
        _feed(m, _data(), rank=rank, world=world, batch=4)
        out = {k: float(v) for k, v in m.compute().items()}
        out["n_local"] = sum(len(x) for x in m.embeddings)
        torch.save(out, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_equals_single_process(tmp_path):
    single = ReIDMetric(ReIDProtocol(max_rank=12))
    _feed(single, _data())
    expected = {k: float(v) for k, v in single.compute().items()}
    out = str(tmp_path / "res")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    for rank in range(2):
        got = torch.load(f"{out}.{rank}")
        # Each rank saw only its half (plus padding), yet every rank reports the global numbers.
        assert got.pop("n_local") == 19 + 76
        assert got.keys() == expected.keys()
        for k, v in expected.items():
            assert got[k] == pytest.approx(v, abs=1e-12), k
    # The padding really duplicated items (37 and 151 are odd), and they were removed.
    assert expected["n_query"] == 37 and expected["n_gallery"] == 151


def test_metric_euclidean_matches_functional():
    data = _data(seed=3)
    m = ReIDMetric(ReIDProtocol(metric="euclidean"))
    _feed(m, data)
    out = m.compute()
    r = evaluate_reid(*data, ReIDProtocol(metric="euclidean"))
    assert float(out["mAP"]) == r.mAP and float(out["rank1"]) == r.rank1
    qf, gf, qp, gp, qc, gc = (t.numpy() for t in data)
    _, m_ap, _, _ = reference_eval(distance_matrix(qf, gf, "euclidean"), qp, gp, qc, gc)
    assert r.mAP == pytest.approx(m_ap, abs=1e-6)
    assert np.isfinite(r.mINP)


def test_metric_ignores_junk_by_default():
    qf, gf, qp, gp, qc, gc = _data(seed=4)
    gp = torch.where(torch.arange(gp.numel()) % 5 == 0, -1, gp)  # every fifth gallery item is junk
    data = (qf, gf, qp, gp, qc, gc)
    m = ReIDMetric()
    _feed(m, data)
    out = m.compute()
    dist = distance_matrix(qf.numpy(), gf.numpy(), "cosine")
    _, m_ap, m_inp, _ = reference_eval(dist, qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy())
    assert float(out["mAP"]) == pytest.approx(m_ap, abs=1e-6)
    assert float(out["mINP"]) == pytest.approx(m_inp, abs=1e-6)
    assert float(out["n_junk"]) == 31
    kept = ReIDMetric(ReIDProtocol(ignore_junk=False))
    _feed(kept, data)
    _, kept_ap, _, _ = reference_eval(dist, qp.numpy(), gp.numpy(), qc.numpy(), gc.numpy(), ignore_junk=False)
    assert float(kept.compute()["mAP"]) == pytest.approx(kept_ap, abs=1e-6)
    assert kept_ap != pytest.approx(m_ap, abs=1e-3)
