"""Checkpoints out: TorchScript and ONNX embedding models, and the ``isr-lightning export`` command.

The exported model maps normalised images ``images (B, 3, H, W)`` to L2-normalised
``embeddings (B, D)`` (backbone -> projection -> L2 normalisation, in eval mode), with a
dynamic batch axis. Resizing and mean/std normalisation stay outside; read them from
``ISRModule.data_config`` (printed by the command).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from isr_lightning.backbone import EmbeddingModel
from isr_lightning.checkpoints import load_model
from isr_lightning.module import ISRModule

__all__ = [
    "EmbeddingModel",
    "export",
    "export_onnx",
    "export_torchscript",
    "run_exported",
]

DEFAULT_OPSET = 17


def _embedding_model(model: ISRModule | nn.Module) -> nn.Module:
    """A CPU eval-mode copy, so that exporting leaves the caller's module (device, mode) as it was.

    An :class:`~isr_lightning.module.ISRModule` becomes its backbone and projection; a module
    with an ``embedding_model()`` method (``ReIDFineTuneModule``) gives its own retrieval path.
    """
    if isinstance(model, ISRModule):
        model = EmbeddingModel(model.backbone, model.projection)
    elif callable(getattr(model, "embedding_model", None)):
        model = model.embedding_model()
    return copy.deepcopy(model).eval().cpu()


def _example(model: ISRModule | nn.Module, input_size: tuple[int, int] | None, batch_size: int = 2) -> Tensor:
    if input_size is None:
        input_size = getattr(model, "image_size", None)
        if input_size is None:
            raise ValueError("input_size is required for a model without an image_size attribute")
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch_size, 3, *input_size, generator=generator)


def export_torchscript(
    model: ISRModule | nn.Module, path: str | Path, input_size: tuple[int, int] | None = None
) -> Path:
    """Trace the embedding model to a TorchScript file (``torch.jit.load`` reads it back).

    Args:
        model: an ISRModule (its backbone and projection are exported, in eval mode, on CPU) or
            any module ``(B, 3, H, W) -> (B, D)``.
        path: output file, e.g. ``model.pt``.
        input_size: ``(H, W)`` of the inputs; ``model.image_size`` by default.

    Returns:
        ``path``. The file accepts any batch size at ``input_size``.
    """
    example = _example(model, input_size)
    net = _embedding_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints and jit deprecation
        traced = torch.jit.trace(net, example, check_trace=False)
    traced.save(str(path))
    return path


def export_onnx(
    model: ISRModule | nn.Module,
    path: str | Path,
    input_size: tuple[int, int] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export the embedding model to ONNX: input ``images``, output ``embeddings``, dynamic batch.

    Uses the TorchScript-based exporter (``dynamo=False``), which needs no ``onnxscript``.

    Args:
        model: an ISRModule or any module ``(B, 3, H, W) -> (B, D)``.
        path: output file, e.g. ``model.onnx``.
        input_size: ``(H, W)`` of the inputs; ``model.image_size`` by default.
        opset: ONNX opset version.

    Returns:
        ``path``; weights are stored inside the file.
    """
    example = _example(model, input_size)
    net = _embedding_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=["images"],
            output_names=["embeddings"],
            dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    return path


def run_exported(path: str | Path, images: Tensor) -> Tensor:
    """Run an exported file on CPU (TorchScript by ``torch.jit.load``, ONNX by onnxruntime).

    Args:
        path: a ``.onnx`` file, or any other suffix for TorchScript.
        images: ``(B, 3, H, W)`` normalised images.

    Returns:
        ``(B, D)`` embeddings.
    """
    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (output,) = session.run(["embeddings"], {"images": images.cpu().numpy().astype(np.float32)})
        return torch.from_numpy(output)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return scripted(images.cpu())


def export(ckpt: str, out: Path, opset: int = DEFAULT_OPSET, atol: float = 1e-4) -> int:
    """Export a checkpoint to TorchScript or ONNX (images -> L2-normalised embeddings).

    Args:
        ckpt: any model file :func:`~isr_lightning.checkpoints.load_model` reads (an
            ``ISRModule`` or ``ReIDFineTuneModule`` checkpoint, the ISR release; a local path
            or a URL).
        out: output file: ONNX when it ends with ``.onnx``, else TorchScript (``.pt``).
        opset: ONNX opset.
        atol: largest accepted difference between the exported model and the module.

    Returns:
        0, or 1 when the exported model disagrees with the module beyond ``atol``.
    """
    model = load_model(ckpt, map_location="cpu")
    config = model.data_config
    size = tuple(config["input_size"][1:])
    onnx = out.suffix == ".onnx"
    if onnx:
        out = export_onnx(model, out, input_size=size, opset=opset)
    else:
        out = export_torchscript(model, out, input_size=size)
    images = torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(1))
    expected = model.embed(images).cpu()
    difference = float((run_exported(out, images) - expected).abs().max())
    kind = "ONNX" if onnx else "TorchScript"
    print(f"wrote {out} ({kind}): images (B, 3, {size[0]}, {size[1]}) -> embeddings (B, {expected.shape[1]})")
    print(f"preprocessing: resize to {size}, mean {config['mean']}, std {config['std']}")
    print(f"max abs difference to the module on a random batch of 3: {difference:.3g}")
    return 0 if difference <= atol else 1
