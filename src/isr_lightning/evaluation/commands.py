"""``isr-lightning evaluate`` and ``isr-lightning evaluate-features`` (print one JSON object)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isr_lightning.evaluation.engine import ReIDResult, evaluate_reid
from isr_lightning.evaluation.rerank import KReciprocal

__all__ = ["NPZ_ARRAYS", "evaluate_features_main", "evaluate_main", "load_npz"]

# The names of isr_lightning.evaluation.datasets.DATASETS (checked by a test), without importing it.
DATASET_NAMES = ("cuhk03-np-detected", "cuhk03-np-labeled", "folder", "market1501", "msmt17")

NPZ_ARRAYS = (
    "query_feats",
    "gallery_feats",
    "query_pids",
    "gallery_pids",
    "query_camids",
    "gallery_camids",
)


def _add_protocol_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("protocol")
    g.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    g.add_argument("--max-rank", type=int, default=10, help="length of the CMC curve (default 10)")
    g.add_argument("--chunk-size", type=int, default=512, help="query rows per block (memory bound)")
    g.add_argument(
        "--backend",
        choices=("torch", "faiss"),
        default="torch",
        help="exact matrix product per chunk (torch, default) or a FAISS index",
    )
    g.add_argument(
        "--index",
        default="Flat",
        help="FAISS index factory string with --backend faiss; anything but Flat is APPROXIMATE",
    )
    g.add_argument("--k", type=int, default=100, help="items retrieved per query by an approximate index")
    g.add_argument("--nprobe", type=int, default=None, help="IVF lists probed (approximate index)")
    g.add_argument(
        "--keep-junk",
        action="store_true",
        help="rank gallery items with person id -1 as negatives (default: ignore them, as the official protocol)",
    )
    r = parser.add_argument_group("k-reciprocal re-ranking (Zhong et al., CVPR 2017)")
    r.add_argument("--rerank", action="store_true", help="rank by k-reciprocal re-ranked distances")
    r.add_argument("--rerank-k1", type=int, default=KReciprocal.k1, help="k1 (default %(default)s)")
    r.add_argument("--rerank-k2", type=int, default=KReciprocal.k2, help="k2 (default %(default)s)")
    r.add_argument("--rerank-lambda", type=float, default=KReciprocal.lambda_value, help="lambda (default %(default)s)")
    r.add_argument(
        "--rerank-max-items",
        type=int,
        default=KReciprocal.max_items,
        help="refuse above this many queries + gallery items (time grows as N^2; default %(default)s)",
    )
    g.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    g.add_argument("--output", type=Path, default=None, help="also write the JSON to this file")


def _rerank(args: argparse.Namespace) -> KReciprocal | None:
    if not args.rerank:
        return None
    return KReciprocal(args.rerank_k1, args.rerank_k2, args.rerank_lambda, args.rerank_max_items)


def _device(name: str | None) -> torch.device:
    if name is not None:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _run_protocol(args: argparse.Namespace, arrays: dict[str, Any], extra: dict[str, Any]) -> int:
    result: ReIDResult = evaluate_reid(
        arrays["query_feats"],
        arrays["gallery_feats"],
        arrays["query_pids"],
        arrays["gallery_pids"],
        arrays["query_camids"],
        arrays["gallery_camids"],
        metric=args.metric,
        max_rank=args.max_rank,
        chunk_size=args.chunk_size,
        backend=args.backend,
        index=args.index,
        k=args.k,
        nprobe=args.nprobe,
        device=_device(args.device),
        ignore_junk=not args.keep_junk,
        rerank=_rerank(args),
    )
    out = result.to_dict()
    out.update(extra)
    if result.approximate:
        out["warning"] = (
            f"approximate index {args.index!r}: metrics are truncated at the top {args.k} "
            "retrieved items, not the exact protocol"
        )
    text = json.dumps(out)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read exported features; raise naming the file and the missing array.

    Args:
        path: an ``.npz`` with :data:`NPZ_ARRAYS`.

    Returns:
        The arrays by name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with np.load(path, allow_pickle=False) as data:
        missing = [name for name in NPZ_ARRAYS if name not in data.files]
        if missing:
            raise KeyError(
                f"{path}: missing array(s) {', '.join(missing)}; expected {', '.join(NPZ_ARRAYS)} "
                f"(found {', '.join(data.files) or 'none'})"
            )
        return {name: np.asarray(data[name]) for name in NPZ_ARRAYS}


def evaluate_features_main(argv: list[str]) -> int:
    """``isr-lightning evaluate-features FILE.npz``: evaluate exported features of any model.

    Args:
        argv: command-line arguments without the command name.

    Returns:
        The exit code (1 with a message on stderr for bad input).
    """
    parser = argparse.ArgumentParser(
        prog="isr-lightning evaluate-features",
        description="Evaluate exported ReID features (.npz with arrays "
        + ", ".join(NPZ_ARRAYS)
        + ") under the standard protocol; prints one JSON object.",
    )
    parser.add_argument("file", type=Path, help="the .npz file")
    _add_protocol_args(parser)
    args = parser.parse_args(argv)
    try:
        arrays = load_npz(args.file)
        return _run_protocol(args, arrays, {})
    except (FileNotFoundError, KeyError, ValueError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"isr-lightning evaluate-features: error: {msg}", file=sys.stderr)
        return 1


def evaluate_main(argv: list[str]) -> int:
    """``isr-lightning evaluate --ckpt CKPT --root DIR --dataset NAME``.

    Loads an ``ISRModule`` or ``ReIDFineTuneModule`` from the checkpoint, embeds the query and
    gallery images (resized and normalised with the module's ``data_config``) and prints one
    JSON object.

    Args:
        argv: command-line arguments without the command name.

    Returns:
        The exit code (1 with a message on stderr for bad input).
    """
    parser = argparse.ArgumentParser(
        prog="isr-lightning evaluate",
        description="Evaluate a checkpoint on a ReID benchmark; prints one JSON object with "
        "rank1, rank5, rank10, mAP, mINP, n_query, n_gallery.",
    )
    parser.add_argument("--ckpt", required=True, type=Path, help="ISRModule or ReIDFineTuneModule checkpoint")
    parser.add_argument("--root", required=True, type=Path, help="dataset folder")
    parser.add_argument("--dataset", default="market1501", choices=DATASET_NAMES)
    parser.add_argument("--flip", action="store_true", help="average with flipped images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--num-workers", type=int, default=4)
    _add_protocol_args(parser)
    args = parser.parse_args(argv)
    device = _device(args.device)
    # Imported here: images (PIL, torchvision transforms) are not needed by evaluate-features.
    from isr_lightning.evaluation.datasets import ReIDImageDataset, eval_transform, load_reid_dataset
    from isr_lightning.evaluation.features import extract_features

    try:
        split = load_reid_dataset(args.dataset, args.root)
        if not args.ckpt.is_file():
            raise FileNotFoundError(f"{args.ckpt}: checkpoint not found")
        from isr_lightning.finetune.checkpoints import is_fine_tuned_checkpoint
        from isr_lightning.module import ISRModule  # lazy: heavy, and owned by the core

        if is_fine_tuned_checkpoint(args.ckpt):
            from isr_lightning.finetune.module import ReIDFineTuneModule

            model = ReIDFineTuneModule.load_from_checkpoint(str(args.ckpt), map_location=device)
        else:
            model = ISRModule.load_from_checkpoint(str(args.ckpt), map_location=device)
        model.to(device).eval()
        transform = eval_transform(model.data_config)
        arrays: dict[str, Any] = {}
        for side in ("query", "gallery"):
            ds = ReIDImageDataset(getattr(split, side), transform)
            f, p, c = extract_features(model, ds, args.batch_size, args.num_workers, device, args.flip)
            arrays[f"{side}_feats"], arrays[f"{side}_pids"], arrays[f"{side}_camids"] = f, p, c
        return _run_protocol(args, arrays, {"dataset": split.name, "flip": args.flip})
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"isr-lightning evaluate: error: {err}", file=sys.stderr)
        return 1
