"""Ablation on the synthetic world: same backbone, same number of steps for every row.

Rows: random init (no training); instance discrimination (two augmented views of one crop,
what MoCo/SimCLR learn); ISR with nearest-neighbour pairing; ISR with uniform weights; ISR
with each reliability definition; and, as an upper bound for every miner, ISR trained on the
ground-truth association of the synthetic corpus (``oracle_pairs``). Each trained row runs
the ``cpu_demo.yaml`` recipe with the row's overrides for ``--steps`` optimizer steps.

Reported, per seed and as mean over seeds: rank-1/mAP on the cross-domain benchmark and on
its in-domain control (the same identities rendered in the training videos' street domain),
and the precision of Hungarian matching on the row's embeddings of (unaugmented) training
frame pairs (the same association for every row).

Results are appended to ``OUT/results.jsonl`` as each run ends; a rerun skips the
(row, seed) runs already there, so an interrupted ablation resumes.

    python benchmarks/ablation.py --steps 60 --seeds 0 1 --out outputs/ablation
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from isr_lightning.demo import DEFAULT_CACHE, benchmark_scores, embed_split, training_pair_precision
from isr_lightning.evaluation import load_market_layout
from isr_lightning.lightning_cli import build_from_config, recipe_path
from isr_lightning.synth import generate_benchmark, generate_corpus

ROWS: dict[str, list[str]] = {
    "random_init": [],
    "instance_discrimination": [
        "--data.init_args.pairing=instance",
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


def run(row: str, seed: int, steps: int, corpus: Path, split, street, out: Path, extra: list[str]) -> dict:
    overrides = [
        f"--trainer.default_root_dir={out / f'{row}-seed{seed}'}",
        f"--data.init_args.root={corpus}",
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
    if row != "random_init":
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    train_seconds = time.perf_counter() - start
    scores = benchmark_scores(*embed_split(cli.model, split))
    street_scores = benchmark_scores(*embed_split(cli.model, street))
    scores.update({f"street_{key}": value for key, value in street_scores.items()})
    scores["pair_precision"] = training_pair_precision(cli.model, corpus, cli.model.image_size)
    return {"row": row, "seed": seed, "steps": cli.trainer.global_step, "train_seconds": train_seconds, **scores}


def table(results: list[dict]) -> str:
    lines = [
        "| row | rank-1 | mAP | in-domain rank-1 | in-domain mAP | pair precision | per seed rank-1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        runs = sorted((r for r in results if r["row"] == row), key=lambda r: r["seed"])
        if not runs:
            continue

        def mean(key: str, runs: list[dict] = runs) -> str:
            values = [r[key] for r in runs if key in r]  # runs of older versions lack the control
            return f"{statistics.mean(values):.3f}" if values else "-"

        cells = [mean(k) for k in ("rank1", "mAP", "street_rank1", "street_mAP", "pair_precision")]
        per_seed = ", ".join(f"{r['rank1']:.3f}" for r in runs)
        lines.append(f"| {row} | {' | '.join(cells)} | {per_seed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--out", type=Path, default=Path("outputs/ablation"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--identities", type=int, default=150)
    parser.add_argument("overrides", nargs="*", help="extra recipe overrides for every row")
    args, extra = parser.parse_known_args()
    data_dir = args.cache / "demo-seed0"
    corpus = data_dir / f"corpus-{args.clips}"
    generate_corpus(corpus, num_clips=args.clips, seed=0)
    splits = []
    for domain, folder in (("mall", f"benchmark-{args.identities}"), ("street", f"benchmark-{args.identities}-street")):
        generate_benchmark(data_dir / folder, num_identities=args.identities, seed=1, domain=domain)
        splits.append(load_market_layout(data_dir / folder, name=f"synthetic-{domain}"))
    split, street = splits

    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.jsonl"
    results = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.exists() else []
    done = {(r["row"], r["seed"], r["steps"] if r["row"] != "random_init" else 0) for r in results}
    for seed in args.seeds:
        for row in args.rows:
            key = (row, seed, args.steps if row != "random_init" else 0)
            if key in done:
                continue
            result = run(row, seed, args.steps, corpus, split, street, args.out, [*args.overrides, *extra])
            print(json.dumps(result), flush=True)
            with results_path.open("a") as f:
                f.write(json.dumps(result) + "\n")
            results.append(result)
    print()
    print(f"{len(split.query)} queries, {len(split.gallery)} gallery; {args.steps} steps per trained row")
    print(table([r for r in results if r["row"] == "random_init" or r["steps"] == args.steps]))


if __name__ == "__main__":
    main()
