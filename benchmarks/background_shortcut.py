"""How much of the frame-pair association can the background alone explain?

In a static camera a person at ``t`` and ``t + delta`` often stands in front of similar
background, so a model could associate the two crops by the background instead of the
person. This script renders frame pairs of a synthetic corpus with their exact per-pixel
identity maps (``ClipSimulator``), cuts every ground-truth person box three ways and
associates the two frames by Hungarian matching on a model's embeddings:

- ``full``: the crop as the detector gives it;
- ``person only``: every pixel that is not the person is set to grey;
- ``background only``: every pixel of the person is set to grey.

The precision of ``background only`` against chance (one over the number of people) is
the background shortcut; ``person only`` is what the person alone supports.

    python benchmarks/background_shortcut.py --corpus ~/.cache/isr-lightning/demo-seed0/corpus-40
    python benchmarks/background_shortcut.py --corpus DIR --checkpoint outputs/demo/isr.ckpt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from isr_lightning import ISRModule
from isr_lightning.data.transforms import CropTransform
from isr_lightning.synth import ClipSimulator, CorpusConfig

GREY = 128
VIEWS = ("full", "person only", "background only")


def crops_three_ways(image: np.ndarray, idmap: np.ndarray, ids: np.ndarray, boxes: np.ndarray) -> dict[str, list]:
    """Cut each ``x, y, w, h`` box as is, with only its person, and without its person."""
    out: dict[str, list] = {view: [] for view in VIEWS}
    for pid, (x, y, w, h) in zip(ids.tolist(), boxes.astype(int).tolist(), strict=True):
        crop = image[y : y + h, x : x + w]
        person = (idmap[y : y + h, x : x + w] == pid)[..., None]
        out["full"].append(crop)
        out["person only"].append(np.where(person, crop, GREY).astype(np.uint8))
        out["background only"].append(np.where(person, GREY, crop).astype(np.uint8))
    return out


def hungarian_correct(a: torch.Tensor, b: torch.Tensor, ids_a: np.ndarray, ids_b: np.ndarray) -> tuple[int, int]:
    """Correct and total matches of Hungarian matching on cosine similarity."""
    rows, cols = linear_sum_assignment((a @ b.t()).numpy(), maximize=True)
    return int((ids_a[rows] == ids_b[cols]).sum()), len(rows)


def measure(model: ISRModule, config: CorpusConfig, clips: int, pairs_per_clip: int, delta: float, seed: int) -> dict:
    transform = CropTransform(image_size=model.image_size, train=False, **_norm(model))
    rng = np.random.default_rng(seed)
    counts = {view: [0, 0] for view in VIEWS}
    chance = []
    gap = max(1, round(delta * config.fps))
    for clip in range(min(clips, config.num_clips)):
        sim = ClipSimulator(config, clip)
        for t in rng.integers(0, config.num_frames - gap, pairs_per_clip).tolist():
            frames = [sim.render(t), sim.render(t + gap)]
            common = np.intersect1d(frames[0][2].ids, frames[1][2].ids)
            if len(common) < 2:
                continue
            chance.append(1.0 / len(common))
            sides = []
            for image, idmap, ann in frames:
                keep = np.isin(ann.ids, common)
                sides.append((ann.ids[keep], crops_three_ways(image, idmap, ann.ids[keep], ann.boxes[keep])))
            for view in VIEWS:
                emb = [model.embed(transform(crops[view])).cpu() for _, crops in sides]
                c, n = hungarian_correct(emb[0], emb[1], sides[0][0], sides[1][0])
                counts[view][0] += c
                counts[view][1] += n
    result = {view: c / max(n, 1) for view, (c, n) in counts.items()}
    result["chance"] = float(np.mean(chance)) if chance else 0.0
    result["pairs"] = counts["full"][1]
    return result


def _norm(model: ISRModule) -> dict:
    config = model.data_config
    return {"mean": config["mean"], "std": config["std"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True, help="a synthetic corpus (its corpus.json config)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: ImageNet MobileNetV2, untrained")
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--pairs-per-clip", type=int, default=4)
    parser.add_argument("--delta", type=float, default=2.0, help="seconds between the two frames")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = CorpusConfig.from_dict(json.loads((args.corpus / "corpus.json").read_text())["config"])
    if args.checkpoint is None:
        torch.manual_seed(0)
        model = ISRModule(backbone="mobilenetv2_100", weights="imagenet", embed_dim=128, image_size=(128, 64))
    else:
        model = ISRModule.load_from_checkpoint(args.checkpoint, map_location="cpu")
    result = measure(model, config, args.clips, args.pairs_per_clip, args.delta, args.seed)
    print(json.dumps(result))
    print(f"\n{result['pairs']} person pairs; chance {result['chance']:.3f}")
    print("| crop | Hungarian precision |\n|---|---|")
    for view in VIEWS:
        print(f"| {view} | {result[view]:.3f} |")


if __name__ == "__main__":
    main()
