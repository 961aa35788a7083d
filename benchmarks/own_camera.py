"""The one-camera user's path, end to end, with the commands docs/own_camera.md gives.

1. ``isr-lightning detect`` on a folder holding the camera's video (no boxes yet);
2. ``isr-lightning fit`` with the recipe, from a starting checkpoint, for ``--steps`` steps;
3. ``isr-lightning predict --ckpt_path`` embeds every person box of the video;
4. with ``--check VIDEO,GT`` (a camera with ground-truth tracks), ``isr-lightning evaluate`` of
   the start and of the trained checkpoint on that camera's people (each person's early boxes
   query the late ones, :func:`~isr_lightning.evaluation.tracks.write_track_benchmark`).

Prints each step's wall time and the scores. Skips (exit 0) when the video is absent: OpenCV's
vtest.avi is in Debian's ``opencv-doc`` package (``../shared/data/tud-stadtmitte/README.md``).

Run: ``python benchmarks/own_camera.py --video vtest.avi --start outputs/demo/isr.ckpt --steps 300
[--check TUD.mp4,TUD.gt.txt] --out /tmp/own_camera``
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from isr_lightning.evaluation.tracks import write_track_benchmark

BIN = Path(sys.executable).parent


def run(*args: str) -> tuple[str, float]:
    """Run an ``isr-lightning`` command; return its stdout and wall time (fails loudly)."""
    began = time.perf_counter()
    result = subprocess.run([str(BIN / "isr-lightning"), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"isr-lightning {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, required=True, help="the camera's footage")
    parser.add_argument("--start", default="outputs/demo/isr.ckpt", help="the checkpoint to adapt")
    parser.add_argument("--recipe", default="cpu_demo")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--check", help="VIDEO,GT: a camera with ground-truth tracks to score")
    parser.add_argument("--out", type=Path, default=Path("/tmp/own_camera"))
    args = parser.parse_args()
    if not args.video.is_file():
        print(f"skipped: {args.video} not found (see the docstring for vtest.avi)")
        return
    footage = args.out / "footage"
    if args.out.exists():
        shutil.rmtree(args.out)
    footage.mkdir(parents=True)
    shutil.copy(args.video, footage / args.video.name)
    times = {}
    _, times["detect"] = run("detect", str(footage))
    out, times["fit"] = run(
        "fit",
        "--config",
        args.recipe,
        "--data.root",
        str(footage),
        f"--model.init_args.weights={args.start}",
        f"--trainer.max_steps={args.steps}",
        f"--trainer.default_root_dir={args.out / 'run'}",
        "--trainer.enable_progress_bar=false",
    )
    checkpoint = re.search(r"^checkpoint: (.+)$", out, re.MULTILINE).group(1)
    _, times["predict"] = run(
        "predict",
        "--ckpt_path",
        checkpoint,
        "--data",
        "isr_lightning.predict.VideoCropDataModule",
        "--data.root",
        str(footage),
        "--trainer.callbacks",
        "isr_lightning.predict.EmbeddingWriter",
        "--trainer.callbacks.output_path",
        str(args.out / "crops.npz"),
        "--trainer.logger",
        "false",
        "--return_predictions",
        "false",
    )
    print("| step | wall time |\n|---|---|\n" + "\n".join(f"| {k} | {v:.0f} s |" for k, v in times.items()))
    if args.check:
        video, gt = args.check.split(",")
        folder = args.out / "check"
        write_track_benchmark(video, gt, folder)
        print("\n| model | rank-1 | mAP |\n|---|---|---|")
        for name, ckpt in (("start", args.start), ("adapted", checkpoint)):
            result = json.loads(run("evaluate", ckpt, str(folder), "--dataset", "folder", "--num_workers", "0")[0])
            print(f"| {name} | {result['rank1']:.3f} | {result['mAP']:.3f} |")


if __name__ == "__main__":
    main()
