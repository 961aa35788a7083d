"""Protocol math: hand-made cases, brute-force reference, chunking and backends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isr_lightning.evaluation import _counting, evaluate_reid
from isr_lightning.evaluation._counting import _sort_keys
from isr_lightning.evaluation.functional import cost_block, prepare_features, query_stats
from isr_lightning.evaluation.protocol import ReIDProtocol
from tests.evaluation.reference import distance_matrix, reference_eval


@pytest.fixture(params=["rows", "rows-tail0", "rows-tail5", "block"])
def counting(request, monkeypatch):
    """Each implementation of the counting (numpy per row with 0, 2 or 5 densely counted worst
    matches; torch per block) must give the same numbers."""
    impl, _, tail = request.param.partition("-tail")
    monkeypatch.setattr(_counting, "CPU_IMPLEMENTATION", impl)
    if tail:
        monkeypatch.setattr(_counting, "DENSE_TAIL", int(tail))
    return request.param


def _eval1d(q_x, g_x, q_pid, g_pid, q_cam, g_cam, **kw):
    """Euclidean on 1-D features: distances are (q - g)^2, easy to rank by hand."""
    qf = torch.tensor(q_x, dtype=torch.float32).view(-1, 1)
    gf = torch.tensor(g_x, dtype=torch.float32).view(-1, 1)
    return evaluate_reid(qf, gf, q_pid, g_pid, q_cam, g_cam, ReIDProtocol(metric="euclidean", **kw))


def test_hand_case_same_camera_removed_and_distractor_negative(counting):
    # g0 same id + same camera (removed); g1 neg; g2 pos; g3 distractor id 0 (neg); g4 pos.
    r = _eval1d([0.0], [0.1, 0.2, 0.3, 0.4, 0.5], [1], [1, 2, 1, 0, 1], [0], [0, 1, 1, 1, 2])
    # ranked: g1, g2 (hit @2), g3, g4 (hit @4)
    assert r.cmc.tolist()[:4] == [0.0, 1.0, 1.0, 1.0]
    assert r.mAP == pytest.approx((1 / 2 + 2 / 4) / 2, abs=1e-12)
    assert r.mINP == pytest.approx(2 / 4, abs=1e-12)
    assert (r.n_query, r.n_gallery, r.n_skipped) == (1, 5, 0)


def test_hand_case_same_camera_positive_would_change_rank1(counting):
    # Same as above but g0 on another camera: it becomes a correct match at rank 1.
    r = _eval1d([0.0], [0.1, 0.2, 0.3, 0.4, 0.5], [1], [1, 2, 1, 0, 1], [0], [3, 1, 1, 1, 2])
    assert r.rank1 == 1.0
    assert r.mAP == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3, abs=1e-12)
    assert r.mINP == pytest.approx(3 / 5, abs=1e-12)


def test_ties_broken_by_gallery_index(counting):
    # All four gallery items at distance 1: order is g0 (neg), g1 (pos), g2 (pos), g3 (neg).
    r = _eval1d([0.0], [1.0, 1.0, -1.0, -1.0], [1], [2, 1, 1, 3], [0], [1, 1, 2, 1])
    assert r.rank1 == 0.0
    assert r.rank5 == 1.0
    assert r.mAP == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-12)
    assert r.mINP == pytest.approx(2 / 3, abs=1e-12)
    # Swap the first two: the positive now wins the tie.
    r = _eval1d([0.0], [1.0, 1.0, -1.0, -1.0], [1], [1, 2, 1, 3], [0], [1, 1, 2, 1])
    assert r.rank1 == 1.0
    assert r.mAP == pytest.approx((1 / 1 + 2 / 3) / 2, abs=1e-12)


def test_junk_above_the_true_match_is_ignored(counting):
    # g0 junk (id -1) nearest, g1 the correct match, g2 a negative, g3 junk, g4 a correct match.
    args = ([0.0], [0.1, 0.2, 0.3, 0.35, 0.4], [1], [-1, 1, 2, -1, 1], [0], [1, 1, 1, 1, 2])
    r = _eval1d(*args)  # official protocol: junk ranks nowhere -> g1 @1, g2, g4 @3
    assert r.rank1 == 1.0
    assert r.mAP == pytest.approx((1 / 1 + 2 / 3) / 2, abs=1e-12)
    assert r.mINP == pytest.approx(2 / 3, abs=1e-12)
    assert (r.n_gallery, r.n_junk) == (5, 2) and r.to_dict()["n_junk"] == 2
    kept = _eval1d(*args, ignore_junk=False)  # junk as negatives: g0, g1 @2, g2, g3, g4 @5
    assert kept.rank1 == 0.0 and kept.cmc[1] == 1.0
    assert kept.mAP == pytest.approx((1 / 2 + 2 / 5) / 2, abs=1e-12)
    assert (kept.n_gallery, kept.n_junk) == (5, 0)


def test_junk_query_has_no_correct_match():
    # A query of id -1 only "matches" junk, which is ignored: skipped, not counted.
    r = _eval1d([0.0, 5.0], [0.1, 5.1], [1, -1], [1, -1], [0, 0], [1, 1])
    assert (r.n_skipped, r.rank1, r.n_junk) == (1, 1.0, 1)
    with pytest.raises(ValueError, match="junk"):
        _eval1d([0.0], [0.1, 0.2], [1], [-1, -1], [0], [1, 1])


def test_query_without_valid_match_is_skipped(counting):
    # q0: hit at rank 1 -> AP 1. q1 (id 5): its only gallery item is on its camera -> skipped.
    r = _eval1d([0.0, 10.0], [0.1, 0.2, 10.0], [1, 5], [1, 2, 5], [0, 0], [1, 1, 0], max_rank=3)
    assert r.n_skipped == 1
    assert r.cmc.tolist() == [1.0, 1.0, 1.0]
    assert r.mAP == 1.0 and r.mINP == 1.0


def test_mean_over_queries():
    r = _eval1d([0.0, 1.0], [0.1, 0.9], [1, 2], [2, 1], [0, 0], [1, 1])
    # q0 (id 1, x=0): g0 (x=0.1, id 2) first, g1 (x=0.9, id 1) second
    ap0 = 1 / 2
    ap1 = 1 / 2  # q1 (id 2, x=1): g1 (x=0.9, id 1) first, g0 (x=0.1, id 2) second
    assert r.mAP == pytest.approx((ap0 + ap1) / 2, abs=1e-12)
    assert r.rank1 == 0.0 and r.cmc[1] == 1.0


def test_every_query_skipped_raises_and_names_cameras():
    with pytest.raises(ValueError, match=r"every query was skipped.*camera"):
        _eval1d([0.0], [0.1, 0.2], [1], [1, 2], [0], [0, 0])


def test_bad_inputs():
    with pytest.raises(ValueError, match="query"):
        evaluate_reid(torch.zeros(2, 3), torch.ones(2, 3), [1], [1, 2], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="same D"):
        evaluate_reid(torch.ones(2, 3), torch.ones(2, 4), [1, 2], [1, 2], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        evaluate_reid(torch.full((1, 2), float("nan")), torch.ones(1, 2), [1], [1], [0], [1])
    with pytest.raises(ValueError, match="metric"):
        evaluate_reid(torch.ones(1, 2), torch.ones(1, 2), [1], [1], [0], [1], ReIDProtocol(metric="l1"))


def test_sort_keys_order_floats_exactly():
    v = torch.tensor([-3.0, -0.0, 0.0, 1e-30, -1e-30, 2.5, float("-inf"), 7.0])
    rows = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1])
    keys = _sort_keys(rows, v)
    assert keys[1] == keys[2]  # -0.0 == 0.0
    order = torch.argsort(keys[:7], stable=True)
    assert torch.equal(v[order], torch.sort(v[:7], stable=True).values)
    assert keys[7] > keys[:7].max()  # row dominates


def _random_case(rng, nq, ng, n_ids, n_cams, kind, junk=0.0):
    qp = rng.integers(0, n_ids, nq)
    gp = np.where(rng.random(ng) < junk, -1, rng.integers(0, n_ids, ng))
    qc = rng.integers(0, n_cams, nq)
    gc = rng.integers(0, n_cams, ng)
    if kind == "continuous":
        centers = rng.normal(size=(n_ids, 16))
        qf = (centers[qp] + rng.normal(size=(nq, 16)) * 1.5).astype(np.float32)
        gf = (centers[gp] + rng.normal(size=(ng, 16)) * 1.5).astype(np.float32)
    else:  # exactly representable after normalisation (norm 2): many exact ties

        def quant(n):
            x = np.zeros((n, 6), np.float32)
            for i in range(n):
                x[i, rng.choice(6, 4, replace=False)] = rng.choice([-1.0, 1.0], 4)
            return x

        qf, gf = quant(nq), quant(ng)
    return qf, gf, qp, gp, qc, gc


@pytest.mark.parametrize("junk", ["junk ignored", "junk kept"])
@pytest.mark.parametrize("kind", ["continuous", "ties"])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_against_bruteforce_reference(kind, metric, junk, counting):
    rng = np.random.default_rng(0 if kind == "ties" else 1)
    tol = 1e-12 if kind == "ties" else 1e-6
    ignore = junk != "junk kept"
    n_checked = 0
    for _ in range(15):
        nq, ng = int(rng.integers(1, 50)), int(rng.integers(1, 250))
        case = _random_case(rng, nq, ng, int(rng.integers(1, 25)), 3, kind, junk=0.2)
        qf, gf, qp, gp, qc, gc = case
        try:
            ref = reference_eval(distance_matrix(qf, gf, metric), qp, gp, qc, gc, max_rank=12, ignore_junk=ignore)
        except ValueError:
            with pytest.raises(ValueError, match=r"every query was skipped|gallery is empty"):
                evaluate_reid(*case, ReIDProtocol(metric=metric, ignore_junk=ignore))
            continue
        for chunk in (1, 7, 10_000):
            r = evaluate_reid(*case, ReIDProtocol(metric=metric, max_rank=12, chunk_size=chunk, ignore_junk=ignore))
            np.testing.assert_allclose(r.cmc, ref[0], atol=tol)
            assert r.mAP == pytest.approx(ref[1], abs=tol)
            assert r.mINP == pytest.approx(ref[2], abs=tol)
            assert r.n_query - r.n_skipped == ref[3]
            assert r.n_junk == (int((gp == -1).sum()) if ignore else 0)
        n_checked += 1
    assert n_checked >= 8


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_faiss_backend_equals_torch(metric):
    rng = np.random.default_rng(3)
    case = _random_case(rng, 80, 400, 30, 4, "continuous")
    a = evaluate_reid(*case, ReIDProtocol(metric=metric, chunk_size=16))
    b = evaluate_reid(*case, ReIDProtocol(metric=metric, chunk_size=16, backend="faiss"))
    np.testing.assert_allclose(a.cmc, b.cmc, atol=1e-12)
    assert a.mAP == pytest.approx(b.mAP, abs=1e-6) and a.mINP == pytest.approx(b.mINP, abs=1e-6)
    assert not b.approximate and b.index == "Flat"


def test_approximate_index_is_flagged_and_exhaustive_probe_is_exact():
    rng = np.random.default_rng(4)
    case = _random_case(rng, 60, 300, 20, 3, "continuous")
    exact = evaluate_reid(*case)
    approx = evaluate_reid(*case, ReIDProtocol(backend="faiss", index="IVF4,Flat", nprobe=4, k=300))
    assert approx.approximate and approx.to_dict()["approximate"] is True
    np.testing.assert_allclose(approx.cmc, exact.cmc, atol=1e-12)
    assert approx.mAP == pytest.approx(exact.mAP, abs=1e-6)
    assert approx.mINP == pytest.approx(exact.mINP, abs=1e-6)
    # Truncated at k=5 (same-id same-camera items still use up retrieved slots): no metric
    # can exceed the exact one.
    short = evaluate_reid(*case, ReIDProtocol(backend="faiss", index="IVF4,Flat", nprobe=4, k=5))
    assert (short.cmc <= exact.cmc + 1e-12).all() and short.cmc[0] > 0
    assert short.mAP < exact.mAP and short.mINP <= exact.mINP


def test_query_stats_block_matches_reference_per_query(counting):
    rng = np.random.default_rng(5)
    qf, gf, qp, gp, qc, gc = _random_case(rng, 30, 200, 10, 3, "continuous")
    q = prepare_features(torch.from_numpy(qf), "cosine")
    g = prepare_features(torch.from_numpy(gf), "cosine")
    st = query_stats(
        cost_block(q, g, "cosine"),
        torch.from_numpy(qp),
        torch.from_numpy(qc),
        torch.from_numpy(gp),
        torch.from_numpy(gc),
    )
    dist = distance_matrix(qf, gf, "cosine")
    for i in range(30):
        try:
            _, ap, inp, _ = reference_eval(dist[i : i + 1], qp[i : i + 1], gp, qc[i : i + 1], gc)
        except ValueError:
            assert not st.valid[i]
            continue
        assert st.valid[i]
        assert float(st.ap[i]) == pytest.approx(ap, abs=1e-6)
        assert float(st.inp[i]) == pytest.approx(inp, abs=1e-6)


def test_result_to_dict_is_json_ready():
    import json

    r = _eval1d([0.0], [0.1, 0.2], [1], [1, 2], [0], [1, 1])
    d = json.loads(json.dumps(r.to_dict()))
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP", "n_query", "n_gallery"):
        assert key in d
    assert d["rank1"] == 1.0 and d["approximate"] is False


def test_block_split_when_too_many_items_selected(monkeypatch):
    monkeypatch.setattr(_counting, "CPU_IMPLEMENTATION", "block")
    rng = np.random.default_rng(6)
    case = _random_case(rng, 40, 200, 10, 3, "continuous")
    expected = evaluate_reid(*case, ReIDProtocol(chunk_size=40))
    monkeypatch.setattr(_counting, "_MAX_SELECTED", 50)  # forces splitting into row groups (down to single rows)
    got = evaluate_reid(*case, ReIDProtocol(chunk_size=40))
    np.testing.assert_array_equal(got.cmc, expected.cmc)
    assert got.mAP == expected.mAP and got.mINP == expected.mINP
    ref = reference_eval(distance_matrix(case[0], case[1], "cosine"), *case[2:])
    assert got.mAP == pytest.approx(ref[1], abs=1e-6)


def test_cost_block_left_unchanged(counting):
    rng = np.random.default_rng(7)
    qf, gf, qp, gp, qc, gc = _random_case(rng, 10, 50, 5, 2, "continuous")
    cost = cost_block(
        prepare_features(torch.from_numpy(qf), "cosine"), prepare_features(torch.from_numpy(gf), "cosine"), "cosine"
    )
    before = cost.clone()
    query_stats(cost, torch.from_numpy(qp), torch.from_numpy(qc), torch.from_numpy(gp), torch.from_numpy(gc))
    assert torch.equal(cost, before)
