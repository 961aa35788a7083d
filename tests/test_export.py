"""TorchScript and ONNX exports give the module's embeddings, at batch sizes 1 and 3."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from isr_lightning import ISRModule
from isr_lightning.cli import main
from isr_lightning.export import export_onnx, export_torchscript, run_exported
from tests.helpers import TINY_VIT

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MODELS = {
    "test_vit": TINY_VIT,
    "tiny_swin": {
        "backbone": "swin_base_patch4_window7_224",
        "backbone_kwargs": {"embed_dim": 16, "depths": (2, 2), "num_heads": (1, 2)},
        "image_size": (224, 224),
    },
}
EXPORTERS = {"torchscript": (export_torchscript, ".pt"), "onnx": (export_onnx, ".onnx")}


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_equals_module_for_batch_sizes_1_and_3(name: str, fmt: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ISRModule(**MODELS[name], embed_dim=8)
    export, suffix = EXPORTERS[fmt]
    path = export(model, tmp_path / f"model{suffix}")
    assert model.training  # exporting works on a copy: the module's mode is unchanged
    for batch_size in (1, 3):  # one file, two batch sizes: the batch axis is dynamic
        images = torch.randn(batch_size, 3, *model.image_size)
        got = run_exported(path, images)
        assert got.shape == (batch_size, 8)
        torch.testing.assert_close(got, model.embed(images), rtol=0, atol=1e-5)
        torch.testing.assert_close(got.norm(dim=1), torch.ones(batch_size))  # L2 norm is inside


def test_onnx_names_and_dynamic_batch_axis(tmp_path: Path) -> None:
    import onnx

    path = export_onnx(ISRModule(**TINY_VIT, embed_dim=8), tmp_path / "model.onnx")
    graph = onnx.load(str(path)).graph
    (inputs,), (outputs,) = graph.input, graph.output
    assert (inputs.name, outputs.name) == ("images", "embeddings")
    dims = inputs.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 32, 16]


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_export_command(fmt: str, trained_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"model{EXPORTERS[fmt][1]}"
    assert main(["export", str(trained_ckpt), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max abs difference" in printed and out.is_file()
    assert f"({'ONNX' if fmt == 'onnx' else 'TorchScript'})" in printed  # the format follows the suffix
    model = ISRModule.load_from_checkpoint(trained_ckpt)
    images = torch.randn(2, 3, 32, 16)
    torch.testing.assert_close(run_exported(out, images), model.embed(images), rtol=0, atol=1e-5)


def test_export_command_names_a_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "absent.ckpt"), str(tmp_path / "model.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("isr-lightning export: error:") and err.count("\n") == 1 and "absent.ckpt" in err
    assert not (tmp_path / "model.onnx").exists()
