"""How hard the synthetic world is: appearance change between frames, colour-only retrieval.

Prints two tables (the numbers quoted in docs/synthetic_data.md):

1. Training corpus: over all (t, t + delta) frame pairs of the first clips' tracks, the share
   of pairs in which a person's facing differs (front/back/profile show different garments)
   and in which the person's scale changes by more than 20 %.
2. Benchmarks (each of the demo's): rank-1/mAP of a hand-made colour descriptor (16-bin RGB
   histograms of 6 horizontal stripes, cosine) on whole crops and on the central person
   region. Whole crops show how much each camera's background misleads; the central region,
   how far clothing colour alone goes.

    python benchmarks/world_stats.py --cache /tmp/isr-cache
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from isr_lightning.demo import DEFAULT_CACHE, prepare_demo_data
from isr_lightning.evaluation import ReIDSplit, evaluate_reid
from isr_lightning.synth import ClipSimulator, CorpusConfig


def appearance_change(num_clips: int, deltas_s: list[float]) -> list[tuple[float, float, float]]:
    """``(delta seconds, facing-change share, >20 % scale-change share)`` per delta."""
    config = CorpusConfig(num_clips=num_clips)
    tracks = [track for i in range(num_clips) for track in ClipSimulator(config, i).tracks]
    rows = []
    for delta_s in deltas_s:
        d = max(1, round(delta_s * config.fps))
        facing_changed, scale_changed, total = 0, 0, 0
        for _xs, zs, facing, _phase in tracks:
            facing_changed += int((facing[d:] != facing[:-d]).sum())
            ratio = zs[d:] / zs[:-d]  # image scale goes as 1 / depth
            scale_changed += int(((ratio > 1.2) | (ratio < 1 / 1.2)).sum())
            total += len(facing) - d
        rows.append((delta_s, facing_changed / total, scale_changed / total))
    return rows


def stripe_histograms(path: str, centre: bool, stripes: int = 6, bins: int = 16) -> np.ndarray:
    """``(stripes * 3 * bins,)`` L2-normalised colour descriptor of one image."""
    img = np.asarray(Image.open(path).convert("RGB"))
    if centre:
        h, w = img.shape[:2]
        img = img[: int(h * 0.97), int(w * 0.3) : int(w * 0.7)]
    parts = []
    for stripe in np.array_split(img, stripes, axis=0):
        for c in range(3):
            hist, _ = np.histogram(stripe[..., c], bins=bins, range=(0, 256))
            parts.append(hist)
    v = np.concatenate(parts).astype(np.float64)
    return v / max(np.linalg.norm(v), 1e-12)


def colour_baseline(split: ReIDSplit, centre: bool) -> tuple[float, float]:
    """Rank-1 and mAP of the stripe-histogram descriptor on a benchmark."""

    def feats(items):
        return (
            torch.from_numpy(np.stack([stripe_histograms(i.path, centre) for i in items])),
            torch.tensor([i.pid for i in items]),
            torch.tensor([i.camid for i in items]),
        )

    q, qp, qc = feats(split.query)
    g, gp, gc = feats(split.gallery)
    result = evaluate_reid(q, g, qp, gp, qc, gc)
    return float(result.rank1), float(result.mAP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--clips", type=int, default=10, help="clips whose tracks are measured")
    parser.add_argument("--identities", type=int, default=150)
    args = parser.parse_args()

    print("| delta (s) | facing differs | scale changes > 20 % |")
    print("|---|---|---|")
    for delta_s, facing, scale in appearance_change(args.clips, [0.5, 1.0, 2.0, 3.0, 4.0]):
        print(f"| {delta_s:.1f} | {facing:.1%} | {scale:.1%} |")

    benchmarks = prepare_demo_data(args.cache, identities=args.identities).benchmarks
    print()
    print("| benchmark | colour histograms on | rank-1 | mAP |")
    print("|---|---|---|---|")
    for name, split in benchmarks.items():
        for centre in (False, True):
            rank1, mean_ap = colour_baseline(split, centre)
            print(f"| {name} | {'central person region' if centre else 'whole crops'} | {rank1:.1%} | {mean_ap:.1%} |")


if __name__ == "__main__":
    main()
