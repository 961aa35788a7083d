"""``evaluate-features`` and ``evaluate`` commands: JSON output and bad-input errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from isr_lightning.cli import main
from isr_lightning.evaluation import evaluate_reid
from tests.evaluation.helpers import TinyReID, make_colored_market
from tests.evaluation.reference import distance_matrix, reference_eval


def _npz(path, rng, drop=None):
    n_ids = 10
    arrays = {
        "query_pids": rng.integers(0, n_ids, 30),
        "gallery_pids": rng.integers(0, n_ids, 120),
        "query_camids": rng.integers(0, 3, 30),
        "gallery_camids": rng.integers(0, 3, 120),
    }
    centers = rng.normal(size=(n_ids, 12))
    arrays["query_feats"] = (centers[arrays["query_pids"]] + rng.normal(size=(30, 12))).astype(np.float32)
    arrays["gallery_feats"] = (centers[arrays["gallery_pids"]] + rng.normal(size=(120, 12))).astype(np.float32)
    if drop:
        arrays.pop(drop)
    np.savez(path, **arrays)
    return arrays


def test_evaluate_features_prints_json(tmp_path, capsys):
    a = _npz(tmp_path / "f.npz", np.random.default_rng(0))
    out_file = tmp_path / "out.json"
    assert main(["evaluate-features", str(tmp_path / "f.npz"), "--output", str(out_file)]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP", "n_query", "n_gallery"):
        assert key in d
    cmc, m_ap, m_inp, _ = reference_eval(
        distance_matrix(a["query_feats"], a["gallery_feats"], "cosine"),
        a["query_pids"],
        a["gallery_pids"],
        a["query_camids"],
        a["gallery_camids"],
    )
    assert d["rank1"] == pytest.approx(cmc[0], abs=1e-6)
    assert d["mAP"] == pytest.approx(m_ap, abs=1e-6) and d["mINP"] == pytest.approx(m_inp, abs=1e-6)
    assert (d["n_query"], d["n_gallery"], d["approximate"]) == (30, 120, False)
    assert json.loads(out_file.read_text()) == d


def test_evaluate_features_approximate_says_so(tmp_path, capsys):
    _npz(tmp_path / "f.npz", np.random.default_rng(1))
    argv = [str(tmp_path / "f.npz"), "--backend", "faiss", "--index", "IVF2,Flat", "--k", "10"]
    assert main(["evaluate-features", *argv]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["approximate"] is True and "approximate" in d["warning"]


def test_evaluate_features_missing_array_names_file_and_array(tmp_path, capsys):
    _npz(tmp_path / "bad.npz", np.random.default_rng(2), drop="gallery_camids")
    assert main(["evaluate-features", str(tmp_path / "bad.npz")]) == 1
    err = capsys.readouterr().err
    assert "bad.npz" in err and "gallery_camids" in err
    assert main(["evaluate-features", str(tmp_path / "absent.npz")]) == 1
    assert "absent.npz" in capsys.readouterr().err


def test_evaluate_features_all_skipped_is_an_error(tmp_path, capsys):
    rng = np.random.default_rng(3)
    a = _npz(tmp_path / "f.npz", rng)
    a["query_camids"][:] = 0
    a["gallery_camids"][:] = 0
    np.savez(tmp_path / "f.npz", **a)
    assert main(["evaluate-features", str(tmp_path / "f.npz")]) == 1
    assert "every query was skipped" in capsys.readouterr().err


def test_evaluate_checkpoint_command(tmp_path, capsys):
    # The checkpoint names its class (as the library's modules and LightningCLI record it), so the
    # command rebuilds this test's own model from the file alone.
    import lightning

    root = make_colored_market(tmp_path / "market")
    model = TinyReID()
    ckpt = tmp_path / "model.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": {"_class_path": "tests.evaluation.helpers.TinyReID"},
            "pytorch-lightning_version": lightning.__version__,
        },
        ckpt,
    )
    argv = [str(ckpt), str(root), "--dataset", "market1501", "--num_workers", "0", "--device", "cpu"]
    assert main(["evaluate", *argv]) == 0
    d = json.loads(capsys.readouterr().out)
    # the split keeps the folder's junk image: the protocol ignores it (n_junk), as the official code
    assert (d["n_query"], d["n_gallery"], d["n_junk"], d["dataset"]) == (4, 16, 1, "market1501")
    assert d["rank1"] == 1.0
    # Same numbers as embedding by hand.
    from isr_lightning.evaluation import ReIDImageDataset, eval_transform, load_market1501

    split = load_market1501(root)
    tf = eval_transform(model.data_config)

    def feats(items):
        return model.embed(torch.stack([ReIDImageDataset(items, tf)[i]["image"] for i in range(len(items))]))

    ref = evaluate_reid(
        feats(split.query),
        feats(split.gallery),
        [i.pid for i in split.query],
        [i.pid for i in split.gallery],
        [i.camid for i in split.query],
        [i.camid for i in split.gallery],
    )
    assert d["mAP"] == pytest.approx(ref.mAP, abs=1e-6)
    # Wrong layout: error naming the folder.
    assert main(["evaluate", str(ckpt), str(tmp_path / "nope"), "--device", "cpu"]) == 1
    assert "nope" in capsys.readouterr().err


def test_evaluate_real_isrmodule_checkpoint(tmp_path, capsys):
    """End to end with the core module (skipped if it is not importable in this checkout)."""
    module = pytest.importorskip("isr_lightning.module")
    import lightning

    model = module.ISRModule(
        backbone="test_vit",
        image_size=(32, 16),
        embed_dim=8,
        backbone_kwargs={"img_size": (32, 16), "patch_size": 8},
    )
    ckpt = tmp_path / "isr.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        ckpt,
    )
    root = make_colored_market(tmp_path / "market")
    argv = [str(ckpt), str(root), "--num_workers", "0", "--device", "cpu", "--flip", "true"]
    assert main(["evaluate", *argv]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["n_query"], d["n_gallery"], d["flip"]) == (4, 16, True)
    assert 0.0 <= d["mAP"] <= 1.0 and d["n_skipped"] == 0


def test_evaluate_features_ignores_junk_as_the_official_protocol(tmp_path, capsys):
    rng = np.random.default_rng(5)
    a = _npz(tmp_path / "f.npz", rng)
    # A quarter of the gallery becomes junk; its features still look like its person, so
    # junk often scores above a query's true matches.
    junk = rng.random(120) < 0.25
    a["gallery_pids"] = np.where(junk, -1, a["gallery_pids"])
    np.savez(tmp_path / "f.npz", **a)
    dist = distance_matrix(a["query_feats"], a["gallery_feats"], "cosine")
    ids = (a["query_pids"], a["gallery_pids"], a["query_camids"], a["gallery_camids"])

    assert main(["evaluate-features", str(tmp_path / "f.npz")]) == 0
    d = json.loads(capsys.readouterr().out)
    cmc, m_ap, m_inp, _ = reference_eval(dist, *ids, ignore_junk=True)
    assert d["rank1"] == pytest.approx(cmc[0], abs=1e-6) and d["rank5"] == pytest.approx(cmc[4], abs=1e-6)
    assert d["mAP"] == pytest.approx(m_ap, abs=1e-6) and d["mINP"] == pytest.approx(m_inp, abs=1e-6)
    assert (d["n_gallery"], d["n_junk"]) == (120, int(junk.sum()))

    # The same as the file with the junk rows removed by hand.
    clean = {**a, **{k: a[k][~junk] for k in ("gallery_feats", "gallery_pids", "gallery_camids")}}
    np.savez(tmp_path / "clean.npz", **clean)
    assert main(["evaluate-features", str(tmp_path / "clean.npz")]) == 0
    c = json.loads(capsys.readouterr().out)
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert c[key] == pytest.approx(d[key], abs=1e-9), key

    # --ignore_junk false ranks junk as negatives: the other, lower, numbers.
    assert main(["evaluate-features", str(tmp_path / "f.npz"), "--ignore_junk", "false"]) == 0
    k = json.loads(capsys.readouterr().out)
    _, kept_ap, _, _ = reference_eval(dist, *ids, ignore_junk=False)
    assert k["mAP"] == pytest.approx(kept_ap, abs=1e-6) and k["n_junk"] == 0
    assert k["mAP"] < d["mAP"] - 0.01


def test_evaluate_features_imports_only_what_it_needs():
    """The command's import path (isr-lightning -> commands -> engine) leaves out Lightning,
    torchmetrics, timm and torchvision: seconds of import that evaluating features never uses."""
    code = (
        "import sys, isr_lightning.cli, isr_lightning.evaluation.commands;"
        "print(sorted(m for m in ('lightning', 'torchmetrics', 'timm', 'torchvision', 'faiss') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("ignore_junk", [True, False])
def test_junk_is_decided_by_the_protocol_alone(tmp_path, capsys, ignore_junk):
    # a folder that holds junk: the loader keeps it, and --ignore_junk decides, as REID_PROTOCOL.md says
    import lightning

    from isr_lightning.evaluation import ReIDImageDataset, eval_transform, load_market_layout

    root = make_colored_market(tmp_path / "market")
    model = TinyReID()
    ckpt = tmp_path / "model.ckpt"
    state = {"state_dict": model.state_dict(), "hyper_parameters": {"_class_path": "tests.evaluation.helpers.TinyReID"}}
    torch.save({**state, "pytorch-lightning_version": lightning.__version__}, ckpt)
    argv = [str(ckpt), str(root), "--dataset", "folder", "--num_workers", "0", "--device", "cpu"]
    assert main(["evaluate", *argv, "--ignore_junk", str(ignore_junk).lower()]) == 0
    got = json.loads(capsys.readouterr().out)
    split = load_market_layout(root)
    tf = eval_transform(model.data_config)

    def feats(items):
        return model.embed(torch.stack([ReIDImageDataset(items, tf)[i]["image"] for i in range(len(items))])).numpy()

    q, g = split.query, split.gallery
    dist = distance_matrix(feats(q), feats(g), "cosine")
    ids = ([i.pid for i in q], [i.pid for i in g], [i.camid for i in q], [i.camid for i in g])
    _, m_ap, _, _ = reference_eval(dist, *(np.array(x) for x in ids), ignore_junk=ignore_junk)
    assert got["mAP"] == pytest.approx(m_ap, abs=1e-6)
    assert got["n_gallery"] == len(g) and got["n_junk"] == (sum(i.pid == -1 for i in g) if ignore_junk else 0)
