"""``isr-lightning evaluate`` and ``isr-lightning evaluate-features`` (print one JSON object)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isr_lightning.evaluation.engine import evaluate_reid
from isr_lightning.evaluation.protocol import ReIDProtocol

__all__ = ["NPZ_ARRAYS", "evaluate", "evaluate_features", "load_npz"]

NPZ_ARRAYS = (
    "query_feats",
    "gallery_feats",
    "query_pids",
    "gallery_pids",
    "query_camids",
    "gallery_camids",
)


def _device(name: str | None) -> torch.device:
    if name is not None:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _evaluate_arrays(
    arrays: dict[str, Any], output: Path | None, extra: dict[str, Any], device: torch.device, protocol: ReIDProtocol
) -> None:
    """Evaluate ``arrays`` (:data:`NPZ_ARRAYS`) under ``protocol``; print (and write) one JSON object."""
    result = evaluate_reid(
        arrays["query_feats"],
        arrays["gallery_feats"],
        arrays["query_pids"],
        arrays["gallery_pids"],
        arrays["query_camids"],
        arrays["gallery_camids"],
        protocol,
        device=device,
    )
    out = {**result.to_dict(), **extra}
    if result.approximate:
        out["warning"] = (
            f"approximate index {result.index!r}: metrics are truncated at the top {result.extra['k']} "
            "retrieved items, not the exact protocol"
        )
    text = json.dumps(out)
    print(text)
    if output is not None:
        output.write_text(text + "\n")


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


def evaluate_features(file: Path, output: Path | None = None, device: str | None = None, **protocol: Any) -> None:
    """Evaluate exported ReID features of any model under the standard protocol; print one JSON object.

    Args:
        file: an ``.npz`` with the arrays :data:`NPZ_ARRAYS` (features, person ids, camera ids
            of the query and the gallery).
        output: also write the JSON to this file.
        device: torch device of the computation (default: cuda if available, else cpu).
        **protocol: the protocol's settings, the fields of
            :class:`~isr_lightning.evaluation.ReIDProtocol` (``--metric``, ``--ignore_junk``,
            ``--rerank.k1``...).
    """
    settings = ReIDProtocol(**protocol)
    _evaluate_arrays(load_npz(file), output, {}, _device(device), settings)


def evaluate(
    ckpt: str,
    root: Path,
    dataset: str = "market1501",
    flip: bool = False,
    batch_size: int = 128,
    num_workers: int = 4,
    output: Path | None = None,
    device: str | None = None,
    **protocol: Any,
) -> None:
    """Evaluate a checkpoint on a ReID benchmark; print one JSON object (rank1, rank5, rank10, mAP, mINP).

    Loads the model with :func:`~isr_lightning.checkpoints.load_model` (the checkpoint alone
    says its architecture) and embeds the query and gallery images, resized and normalised
    with the model's ``data_config``.

    Args:
        ckpt: any model file ``load_model`` reads: an ``ISRModule`` or ``ReIDFineTuneModule``
            checkpoint, or the ISR release; a local path or a URL (``s3://...``).
        root: dataset folder.
        dataset: ``market1501``, ``msmt17``, ``cuhk03-np-detected``, ``cuhk03-np-labeled`` or
            ``folder``.
        flip: average each image's embedding with its mirror image's.
        batch_size: images per forward pass.
        num_workers: image loading processes.
        output: also write the JSON to this file.
        device: torch device of the model and the computation (default: cuda if available,
            else cpu).
        **protocol: the protocol's settings, the fields of
            :class:`~isr_lightning.evaluation.ReIDProtocol`.
    """
    settings = ReIDProtocol(**protocol)
    # Imported here: images (PIL, torchvision transforms) are not needed by evaluate-features.
    from isr_lightning.checkpoints import load_model
    from isr_lightning.evaluation.datasets import ReIDImageDataset, eval_transform, load_reid_dataset
    from isr_lightning.evaluation.features import extract_features
    from isr_lightning.progress import Progress

    torch_device = _device(device)
    split = load_reid_dataset(dataset, root)
    model = load_model(ckpt, map_location=torch_device).to(torch_device)
    transform = eval_transform(model.data_config)
    arrays: dict[str, Any] = {}
    with Progress("evaluate", total=len(split.query) + len(split.gallery), unit="images") as progress:
        for side in ("query", "gallery"):
            images = ReIDImageDataset(getattr(split, side), transform)
            f, p, c = extract_features(model, images, batch_size, num_workers, torch_device, flip, progress)
            arrays[f"{side}_feats"], arrays[f"{side}_pids"], arrays[f"{side}_camids"] = f, p, c
    _evaluate_arrays(arrays, output, {"dataset": split.name, "flip": flip}, torch_device, settings)
