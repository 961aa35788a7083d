"""Ablation on the synthetic world: same start, same number of steps for every row.

Rows: the starting model (no training; ImageNet MobileNetV2 in the ``cpu_demo`` recipe);
instance discrimination (two augmented views of one crop, what MoCo/SimCLR learn); ISR with
nearest-neighbour pairing; ISR with uniform weights; ISR with each reliability definition;
and, as an upper bound for every miner, ISR trained on the ground-truth association of the
synthetic corpus (``oracle_pairs``). Each trained row runs the ``cpu_demo.yaml`` recipe with
the row's overrides for ``--steps`` optimizer steps.

Reported, per seed and as mean over seeds: rank-1/mAP on every benchmark of the demo
(``mall``: cross-domain; ``station``: a second unseen domain; ``park``: held out, other
people and another drawing of people; ``street``: the ``mall`` people in the training
videos' domain), and the precision of Hungarian matching on the row's embeddings of
(unaugmented) training frame pairs (the same association for every row).

Results are appended to ``OUT/results.jsonl`` as each run ends; a rerun skips the
(row, seed) runs already there, so an interrupted ablation resumes.

    python benchmarks/ablation.py --steps 200 --seeds 0 1 --out outputs/ablation

A recipe choice is measured by overriding it for a row, into its own output folder, e.g.
``--rows isr_hungarian_bidirectional --out outputs/ablation-bn --model.init_args.freeze_bn_stats=false``;
``--corpus DIR`` trains on another corpus (``isr-lightning synth corpus DIR --look_variety 1``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from isr_lightning.demo import BENCHMARKS, DEFAULT_CACHE, DemoData, prepare_demo_data, training_pair_precision
from isr_lightning.evaluation.features import benchmark_scores, embed_split
from isr_lightning.lightning_cli import build_from_config, recipe_path

ROWS: dict[str, list[str]] = {
    "no_training": [],
    "instance_discrimination": [
        "--data.init_args.sampling.pairing=instance",
        "--model.init_args.pair_miner=instance",
        "--model.init_args.reliability=uniform",
    ],
    "isr_nearest_uniform": ["--model.init_args.pair_miner=nearest", "--model.init_args.reliability=uniform"],
    "isr_hungarian_uniform": ["--model.init_args.reliability=uniform"],
    "isr_hungarian_bidirectional": ["--model.init_args.reliability=bidirectional"],
    "isr_hungarian_pair_softmax": ["--model.init_args.reliability=pair_softmax"],
    "isr_hungarian_margin": ["--model.init_args.reliability=margin"],
    # upper bound: the true association (see ground_truth_pairs.py)
    "oracle_pairs": ["--model.class_path=ground_truth_pairs.GroundTruthPairsISR"],
}


def run(row: str, seed: int, steps: int, data: DemoData, out: Path, extra: list[str]) -> dict:
    overrides = [
        f"--trainer.default_root_dir={out / f'{row}-seed{seed}'}",
        f"--data.init_args.root={data.corpus}",
        f"--seed_everything={seed}",
        f"--data.init_args.seed={seed}",
        f"--trainer.max_steps={steps}",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        *ROWS[row],
        *extra,
    ]
    cli = build_from_config(recipe_path("cpu_demo"), overrides)
    start = time.perf_counter()
    if row != "no_training":
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    train_seconds = time.perf_counter() - start
    scores = {}
    for name, split in data.benchmarks.items():
        result = benchmark_scores(*embed_split(cli.model, split))
        scores.update({f"{name}_rank1": result["rank1"], f"{name}_mAP": result["mAP"]})
    scores["pair_precision"] = training_pair_precision(cli.model, data.corpus, cli.model.image_size)
    return {"row": row, "seed": seed, "steps": cli.trainer.global_step, "train_seconds": train_seconds, **scores}


def table(results: list[dict]) -> str:
    """Mean over seeds of each row: rank-1 / mAP per benchmark, pair precision, per-seed mall rank-1."""
    header = " | ".join(f"{name} rank-1 / mAP" for name in BENCHMARKS)
    lines = [f"| row | {header} | pair precision | mall rank-1 per seed |", "|---" * (len(BENCHMARKS) + 3) + "|"]
    for row in ROWS:
        runs = sorted((r for r in results if r["row"] == row), key=lambda r: r["seed"])
        if not runs:
            continue

        def mean(key: str, runs: list[dict] = runs) -> str:
            return f"{statistics.mean(r[key] for r in runs):.3f}"

        cells = [f"{mean(f'{name}_rank1')} / {mean(f'{name}_mAP')}" for name in BENCHMARKS]
        per_seed = ", ".join(f"{r['mall_rank1']:.3f}" for r in runs)
        lines.append(f"| {row} | {' | '.join(cells)} | {mean('pair_precision')} | {per_seed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--out", type=Path, default=Path("outputs/ablation"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--identities", type=int, default=150)
    parser.add_argument("--corpus", type=Path, default=None, help="train on this corpus instead of the demo's")
    parser.add_argument("overrides", nargs="*", help="extra recipe overrides for every row")
    args, extra = parser.parse_known_args()
    data = prepare_demo_data(args.cache, seed=0, clips=args.clips, identities=args.identities)
    if args.corpus is not None:
        data = DemoData(args.corpus, data.benchmarks)

    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.jsonl"
    results = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    done = {(r["row"], r["seed"], r["steps"] if r["row"] != "no_training" else 0) for r in results}
    for seed in args.seeds:
        for row in args.rows:
            key = (row, seed, args.steps if row != "no_training" else 0)
            if key in done:
                continue
            result = run(row, seed, args.steps, data, args.out, [*args.overrides, *extra])
            print(json.dumps(result), flush=True)
            with results_path.open("a") as f:
                f.write(json.dumps(result) + "\n")
            results.append(result)
    print()
    mall = data.benchmarks["mall"]
    print(f"mall: {len(mall.query)} queries, {len(mall.gallery)} gallery; {args.steps} steps per trained row")
    print(table([r for r in results if r["row"] == "no_training" or r["steps"] == args.steps]))


if __name__ == "__main__":
    main()
