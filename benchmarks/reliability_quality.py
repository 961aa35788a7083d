"""Do the reliability weights put the loss on the right pairs? Measured on noisy detections.

For one model (the ``cpu_demo`` recipe's starting weights, or a checkpoint), Hungarian
matching mines the pairs of fixed, unaugmented training batches of the synthetic corpus (noisy
detections: false positives, misses, merged boxes, people leaving the frame). For each
reliability definition it reports

* ``precision``: share of mined pairs that join one person (the same for every row: the
  weights do not change the matching);
* ``weighted precision``: share of the total positive-pair weight that lands on those true
  pairs, i.e. the precision the loss actually sees (uniform weights: equal to precision);
* ``AUC``: probability that a true pair outweighs a wrong pair of the same batch.

A reliability helps when its weighted precision is above the uniform row's.

    python benchmarks/reliability_quality.py                          # the recipe's start, untrained
    python benchmarks/reliability_quality.py --checkpoint outputs/demo/isr.ckpt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from isr_lightning.demo import DEFAULT_CACHE, unaugmented_frame_pairs
from isr_lightning.lightning_cli import build_from_config, recipe_path
from isr_lightning.matching import HungarianMiner
from isr_lightning.module import ISRModule
from isr_lightning.pairs import mine_batch_pairs
from isr_lightning.reliability import RELIABILITIES, build_reliability
from isr_lightning.synth import generate_corpus


def pairwise_auc(weights: torch.Tensor, correct: torch.Tensor) -> tuple[float, int]:
    """``(sum over (true, wrong) pairs of [w_true > w_wrong] + 0.5 [tie], number of such pairs)``."""
    pos, neg = weights[correct], weights[~correct]
    if pos.numel() == 0 or neg.numel() == 0:
        return 0.0, 0
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).sum() + 0.5 * (diff == 0).sum()), pos.numel() * neg.numel()


@torch.no_grad()
def reliability_quality(model: ISRModule, corpus: Path, num_batches: int) -> dict[str, dict[str, float]]:
    """Precision, weighted precision and AUC of every reliability on the model's mined pairs."""
    stats = {name: {"correct": 0.0, "total": 0.0, "weighted": 0.0, "auc": 0.0, "auc_n": 0} for name in RELIABILITIES}
    for batch in unaugmented_frame_pairs(corpus, model.image_size, num_batches):
        embeddings = model.embed(batch.crops)
        for name, s in stats.items():
            pairs = mine_batch_pairs(
                embeddings, batch.pair_index, batch.frame_side, HungarianMiner(), build_reliability(name)
            )
            ids = batch.track_ids.to(embeddings.device)
            a, b = ids[pairs.anchors], ids[pairs.positives]
            correct = (a == b) & (a >= 0)
            w = pairs.weights / pairs.weights.sum().clamp_min(1e-12)
            s["correct"] += float(correct.sum())
            s["total"] += correct.numel()
            s["weighted"] += float(w[correct].sum())
            auc, n = pairwise_auc(pairs.weights, correct)
            s["auc"] += auc
            s["auc_n"] += n
    return {
        name: {
            "precision": s["correct"] / max(s["total"], 1),
            "weighted_precision": s["weighted"] / num_batches,
            "auc": s["auc"] / max(s["auc_n"], 1),
        }
        for name, s in stats.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="ISRModule checkpoint (default: the cpu_demo recipe, untrained)"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--batches", type=int, default=24)
    args = parser.parse_args()
    corpus = args.cache / "demo-seed0" / f"corpus-{args.clips}"
    generate_corpus(corpus, num_clips=args.clips, seed=0)
    if args.checkpoint is None:
        model = build_from_config(recipe_path("cpu_demo"), [f"--data.init_args.root={corpus}"]).model
    else:
        model = ISRModule.load_from_checkpoint(args.checkpoint, map_location="cpu")
    print(f"model: {args.checkpoint or 'untrained cpu_demo recipe'}; {args.batches} batches of 8 frame pairs")
    print("| reliability | precision | weighted precision | AUC true vs wrong |")
    print("|---|---|---|---|")
    for name, r in reliability_quality(model, corpus, args.batches).items():
        print(f"| {name} | {r['precision']:.3f} | {r['weighted_precision']:.3f} | {r['auc']:.3f} |")


if __name__ == "__main__":
    main()
