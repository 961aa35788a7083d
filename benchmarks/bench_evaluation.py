"""ReID evaluation at MSMT17 scale against the matrix-product floor; re-ranking and junk at
Market-1501 scale.

Synthetic features with MSMT17's shape (11,659 queries x 82,161 gallery, 3,060 ids, 15 cameras)
and a hard difficulty (mAP about 0.5, mINP about 0.02: correct matches sit deep in the
ranking, the expensive case for the counting). Each measurement runs in a fresh subprocess,
so peak RSS (VmHWM) is per mode; "inputs" is the RSS once the libraries are imported and the
features generated (in chunks), before the timed part starts. The machine may be shared:
``--repeats`` alternates the modes that many times and reports medians, and the ratio to the
floor of each repeat.

    .venv/bin/python benchmarks/bench_evaluation.py --dims 512 2048 --repeats 3
    .venv/bin/python benchmarks/bench_evaluation.py --scale 0.1 --dims 128   # quick check
    .venv/bin/python benchmarks/bench_evaluation.py --modes import            # start-up time
    .venv/bin/python benchmarks/bench_evaluation.py --modes rerank junk --dims 512 2048
    .venv/bin/python benchmarks/bench_evaluation.py --modes rerank-msmt17 --dims 512

Modes:
  floor   the query x gallery matrix product alone, chunked like ``ours`` into one reused
          buffer, on L2-normalised features (no metrics): what any exact evaluation must do
  ours    ``isr_lightning.evaluation.evaluate_reid`` (exact, chunked, cosine)
  full    a straightforward full-matrix protocol: full distance matrix, argsort, per-query loop
  import  wall time of ``isr-lightning evaluate-features --help`` and of ``import torch``
  rerank  ``evaluate_reid(..., rerank=True)`` (k1=20, k2=6, lambda=0.3) at Market-1501 scale
          (3,368 x 15,913), against the plain evaluation of the same features
  rerank-msmt17  the same at MSMT17 scale (93,820 items, under the default max_items)
  junk    Market-1501 scale plus 2,798 junk gallery items (id -1): ``evaluate_reid`` (junk
          ignored) against the same features with junk removed, the full-matrix protocol that
          ignores junk inside each ranking (as the official code; in float32 and float64), and
          junk kept as negatives
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from isr_lightning.evaluation.protocol import ReIDProtocol

MSMT17 = (11_659, 82_161, 3_060, 15)  # queries, gallery, ids, cameras
MARKET = (3_368, 15_913, 751, 6)
MARKET_JUNK = 2_798


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_features(dim: int, scale: float, noise: float, shape=MSMT17, n_junk: int = 0, seed: int = 0):
    """Seeded clustered features; junk (id -1) looks like a random person, noisier."""
    nq, ng, nid, ncam = int(shape[0] * scale), int(shape[1] * scale), max(2, int(shape[2] * scale)), shape[3]
    n_junk = int(n_junk * scale)
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(nid, dim, generator=g)
    q_pids = torch.randint(0, nid, (nq,), generator=g)
    g_pids = torch.cat([torch.arange(nid), torch.randint(0, nid, (ng - nid,), generator=g)])
    junk_looks_like = torch.randint(0, nid, (n_junk,), generator=g)
    q_cams = torch.randint(0, ncam, (nq,), generator=g)
    g_cams = torch.randint(0, ncam, (ng + n_junk,), generator=g)

    def fill(pids, spread):
        out = torch.empty(len(pids), dim)
        for s in range(0, len(pids), 4096):
            p = pids[s : s + 4096]
            out[s : s + 4096] = centers[p] + spread * torch.randn(len(p), dim, generator=g)
        return out

    gf = fill(g_pids, noise)
    if n_junk:  # junk interleaved with the gallery, as in a raw Market-1501 listing
        order = torch.randperm(ng + n_junk, generator=g)
        gf = torch.cat([gf, fill(junk_looks_like, 1.5 * noise)])[order]
        g_pids = torch.cat([g_pids, torch.full((n_junk,), -1)])[order]
    return fill(q_pids, noise), gf, q_pids, g_pids, q_cams, g_cams


def full_matrix_protocol(qf, gf, q_pids, g_pids, q_cams, g_cams, max_rank=10, ignore_junk=True):
    """What the established toolkits do: full distance matrix + argsort + per-query loop.

    With ``ignore_junk`` gallery items of id -1 are taken out of every ranking, as the
    official Market-1501 evaluation does.
    """
    qf = torch.nn.functional.normalize(qf, dim=1)
    gf = torch.nn.functional.normalize(gf, dim=1)
    distmat = (1 - torch.mm(qf, gf.t())).numpy()  # (Q, G) float32
    q_pids, g_pids, q_cams, g_cams = (t.numpy() for t in (q_pids, g_pids, q_cams, g_cams))
    indices = np.argsort(distmat, axis=1, kind="stable")  # (Q, G) int64
    # torchreid also builds matches = (g_pids[indices] == q_pids[:, None]) for all queries at
    # once (a further (Q, G) int64 temporary): at MSMT17 scale that was killed for memory on
    # the 24 GB machine, so the matches are built per query here (fast-reid's memory profile).
    cmcs, aps, inps = [], [], []
    for i in range(distmat.shape[0]):
        order = indices[i]
        same = g_pids[order] == q_pids[i]
        remove = same & (g_cams[order] == q_cams[i])
        if ignore_junk:
            remove |= g_pids[order] == -1
        raw = same[~remove].astype(np.int32)
        if not raw.any():
            continue
        cmc = raw.cumsum()
        hits = np.nonzero(raw)[0]
        inps.append(len(hits) / (hits[-1] + 1))
        cmc[cmc > 1] = 1
        cmcs.append(cmc[:max_rank])
        aps.append((np.arange(1, len(hits) + 1) / (hits + 1)).mean())
    cmc = np.asarray(cmcs).astype(np.float64).mean(0)
    return {
        "rank1": cmc[0],
        "rank5": cmc[4],
        "rank10": cmc[9],
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
    }


def _metrics(result) -> dict:
    return {k: v for k, v in result.to_dict().items() if k in ("rank1", "rank5", "rank10", "mAP", "mINP")}


def child(mode: str, dim: int, scale: float, noise: float, chunk: int) -> dict:
    from isr_lightning.evaluation.engine import evaluate_reid  # import outside the timing

    if mode == "import":
        return _import_times()
    if mode in ("rerank", "junk"):
        feats = make_features(dim, scale, noise, MARKET, MARKET_JUNK if mode == "junk" else 0)
    elif mode == "rerank-msmt17":
        feats, mode = make_features(dim, scale, noise), "rerank"
    else:
        feats = make_features(dim, scale, noise)
    inputs_mb = rss_mb()
    out: dict = {"mode": mode, "dim": dim, "n_items": len(feats[0]) + len(feats[1]), "inputs_rss_mb": inputs_mb}
    t0 = time.perf_counter()
    if mode == "floor":
        qf = torch.nn.functional.normalize(feats[0], dim=1)
        gf = torch.nn.functional.normalize(feats[1], dim=1)
        buffer = torch.empty(min(chunk, qf.shape[0]), gf.shape[0])
        t0 = time.perf_counter()  # the floor is the product alone
        for s in range(0, qf.shape[0], chunk):
            q = qf[s : s + chunk]
            torch.mm(q, gf.t(), out=buffer[: q.shape[0]])
    elif mode == "ours":
        import isr_lightning.evaluation.engine as engine

        counting = [0.0]
        original = engine.query_stats

        def timed(*args, **kwargs):  # time spent counting (everything but the product)
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                counting[0] += time.perf_counter() - t

        engine.query_stats = timed
        out["metrics"] = _metrics(evaluate_reid(*feats, ReIDProtocol(chunk_size=chunk)))
        out["counting_s"] = counting[0]
    elif mode == "full":
        out["metrics"] = full_matrix_protocol(*feats)
    elif mode == "rerank":
        plain = evaluate_reid(*feats, ReIDProtocol(chunk_size=chunk))
        out["plain_s"] = time.perf_counter() - t0
        out["plain"] = _metrics(plain)
        t0 = time.perf_counter()
        out["metrics"] = _metrics(evaluate_reid(*feats, ReIDProtocol(chunk_size=chunk, rerank=True)))
    elif mode == "junk":
        qf, gf, qp, gp, qc, gc = feats
        ignored = evaluate_reid(*feats, ReIDProtocol(chunk_size=chunk))
        keep = gp != -1
        removed = evaluate_reid(qf, gf[keep], qp, gp[keep], qc, gc[keep], ReIDProtocol(chunk_size=chunk))
        official = full_matrix_protocol(*feats, ignore_junk=True)
        exact = full_matrix_protocol(qf.double(), gf.double(), qp, gp, qc, gc, ignore_junk=True)
        kept = evaluate_reid(*feats, ReIDProtocol(chunk_size=chunk, ignore_junk=False))
        out["metrics"] = _metrics(ignored)
        out["n_junk"] = ignored.n_junk
        out["junk_removed_by_hand"] = _metrics(removed)
        out["official_full_matrix"] = official
        out["junk_as_negatives"] = _metrics(kept)

        def largest(a: dict, b: dict) -> float:
            return max(abs(a[k] - b[k]) for k in official)

        out["largest_difference"] = {
            "ours_vs_junk_removed_by_hand": largest(out["metrics"], out["junk_removed_by_hand"]),
            "ours_vs_full_matrix_float32": largest(out["metrics"], official),
            "ours_vs_full_matrix_float64": largest(out["metrics"], exact),
            "full_matrix_float32_vs_float64": largest(official, exact),
        }
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _import_times(rounds: int = 3) -> dict:
    """Median wall time of starting the command, against importing torch alone."""
    commands = {
        "evaluate_features_help_s": [sys.executable, "-m", "isr_lightning.cli", "evaluate-features", "--help"],
        "import_torch_s": [sys.executable, "-c", "import torch"],
    }
    out: dict = {"mode": "import", "dim": 0}
    for name, cmd in commands.items():
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
    return out


def run_child(mode: str, dim: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(dim), "--scale", str(args.scale)]
    cmd += ["--chunk-size", str(args.chunk_size)]
    if args.noise is not None:
        cmd += ["--noise", str(args.noise)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"mode": mode, "dim": dim, "error": res.stderr.strip()[-300:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def print_tables(rows: list[dict], dims: list[int]) -> None:
    timed = [r for r in rows if r["mode"] in ("floor", "ours", "full") and "wall_s" in r]
    if timed:
        print(
            "\n| dim | mode | wall (s), median | x floor (median of repeats) | x floor, each repeat |"
            " counting (s) | peak RSS (MB) | inputs (MB) | rank1 | mAP | mINP |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    for dim in dims:
        floors = [r["wall_s"] for r in timed if r["dim"] == dim and r["mode"] == "floor"]
        for mode in ("floor", "ours", "full"):
            runs = [r for r in timed if r["dim"] == dim and r["mode"] == mode]
            if not runs:
                continue
            walls = [r["wall_s"] for r in runs]
            ratios = [w / f for w, f in zip(walls, floors, strict=False)] if floors else []
            m = runs[-1].get("metrics", {})
            counting = [r["counting_s"] for r in runs if "counting_s" in r]
            print(
                f"| {dim} | {mode} | {statistics.median(walls):.1f} | "
                f"{statistics.median(ratios) if ratios else float('nan'):.2f} | "
                f"{', '.join(f'{x:.2f}' for x in ratios)} | "
                f"{f'{statistics.median(counting):.1f}' if counting else '-'} | "
                f"{max(r['peak_rss_mb'] for r in runs):.0f} | {runs[-1]['inputs_rss_mb']:.0f} | "
                + " | ".join(f"{m[k]:.6f}" if k in m else "-" for k in ("rank1", "mAP", "mINP"))
                + " |"
            )
    for r in rows:
        if r["mode"] in ("import", "rerank", "rerank-msmt17", "junk") or "error" in r:
            print(json.dumps(r))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dims", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--modes", nargs="+", default=["floor", "ours"])
    p.add_argument("--repeats", type=int, default=1, help="alternate the modes this many times (medians)")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--noise", type=float, default=None, help="per-dim noise (default 2.3 * (dim / 512) ** 0.25)")
    p.add_argument("--chunk-size", type=int, default=512)
    p.add_argument("--child", nargs=2, metavar=("MODE", "DIM"))
    args = p.parse_args()
    if args.child:
        # Same difficulty at every dimension: the within-id fluctuation of cosine similarity
        # grows like noise^2 / sqrt(dim), so the noise scales with dim ** 0.25.
        dim = int(args.child[1])
        noise = args.noise if args.noise is not None else 2.3 * (max(dim, 1) / 512) ** 0.25
        print(json.dumps(child(args.child[0], dim, args.scale, noise, args.chunk_size)))
        return
    rows = []
    for dim in args.dims:
        for repeat in range(args.repeats):
            for mode in args.modes:
                once = mode in ("import", "rerank", "rerank-msmt17", "junk")  # not timed against the floor
                if once and (repeat > 0 or (mode == "import" and dim != args.dims[0])):
                    continue
                rows.append(run_child(mode, dim, args))
                print(json.dumps(rows[-1]), flush=True)
    print_tables(rows, args.dims)


if __name__ == "__main__":
    main()
