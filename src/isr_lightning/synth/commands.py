"""``isr-lightning synth``: generate the synthetic training corpus or benchmark.

Usage::

    isr-lightning synth corpus ROOT [--clips 40] [--seconds 10] [--fps 12]
                                    [--width 640] [--height 360] [--seed 0] [--workers 1]
                                    [--person-styles flat shaded] [--look-variety 0]
    isr-lightning synth benchmark ROOT [--identities 150] [--cameras 6] [--seed 0]
                                       [--distractors 200] [--junk 100]
                                       [--domain mall|street|station|park] [--person-style S]
"""

from __future__ import annotations

import argparse
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="isr-lightning synth", description="Generate synthetic ReID data.")
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("corpus", help="training clips (mp4 + MOT det/gt sidecars)")
    c.add_argument("root")
    c.add_argument("--clips", type=int, default=40)
    c.add_argument("--seconds", type=float, default=10.0)
    c.add_argument("--fps", type=int, default=12)
    c.add_argument("--width", type=int, default=640)
    c.add_argument("--height", type=int, default=360)
    c.add_argument("--min-people", type=int, default=4)
    c.add_argument("--max-people", type=int, default=9)
    c.add_argument("--crf", type=int, default=23)
    c.add_argument("--person-styles", nargs="+", default=["flat", "shaded"], help="drawing styles, one per clip")
    c.add_argument("--look-variety", type=float, default=0.0, help="0-1: how much cameras differ between clips")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--workers", type=int, default=1)
    c.add_argument("--force", action="store_true", help="regenerate even if cached")
    c.add_argument("--no-preview", action="store_true")
    b = sub.add_parser("benchmark", help="cross-domain Market-1501-layout benchmark")
    b.add_argument("root")
    b.add_argument("--identities", type=int, default=150)
    b.add_argument("--cameras", type=int, default=6)
    b.add_argument("--queries-per-identity", type=int, default=2)
    b.add_argument("--gallery-per-camera", type=int, default=3)
    b.add_argument("--distractors", type=int, default=200)
    b.add_argument("--junk", type=int, default=100)
    b.add_argument("--train-identities", type=int, default=0)
    b.add_argument(
        "--domain", choices=("mall", "street", "station", "park"), default="mall", help="street: in-domain control"
    )
    b.add_argument("--person-style", default=None, help="flat, shaded or outlined (default: the domain's)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true", help="regenerate even if cached")
    b.add_argument("--no-preview", action="store_true")
    return p


def synth_main(argv: list[str]) -> int:
    """Run ``isr-lightning synth`` with ``argv`` (without the command name).

    Returns:
        The exit code.

    """
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if args.what == "corpus":
            from isr_lightning.synth.video import generate_corpus

            info = generate_corpus(
                args.root,
                num_clips=args.clips,
                seed=args.seed,
                workers=args.workers,
                force=args.force,
                preview=not args.no_preview,
                seconds=args.seconds,
                fps=args.fps,
                width=args.width,
                height=args.height,
                min_people=args.min_people,
                max_people=args.max_people,
                crf=args.crf,
                person_styles=tuple(args.person_styles),
                look_variety=args.look_variety,
            )
            what = (
                f"{len(info.clips)} clips x {info.num_frames} frames, "
                f"{info.num_gt_boxes} gt boxes, {info.num_det_boxes} detections"
            )
        else:
            from isr_lightning.synth.benchmark import generate_benchmark

            info = generate_benchmark(
                args.root,
                num_identities=args.identities,
                seed=args.seed,
                force=args.force,
                preview=not args.no_preview,
                num_cameras=args.cameras,
                max_queries_per_identity=args.queries_per_identity,
                gallery_per_camera=args.gallery_per_camera,
                num_distractors=args.distractors,
                num_junk=args.junk,
                num_train_identities=args.train_identities,
                domain=args.domain,
                person_style=args.person_style,
            )
            what = (
                f"{info.num_query} queries, {info.num_gallery} gallery images "
                f"({info.num_distractors} distractors, {info.num_junk} junk), "
                f"{info.num_train} train images"
            )
    except ValueError as e:
        print(f"isr-lightning synth: {e}")
        return 2
    state = "cached" if info.cached else f"generated in {time.perf_counter() - start:.1f} s"
    print(f"{args.root}: {what} ({state})")
    return 0
