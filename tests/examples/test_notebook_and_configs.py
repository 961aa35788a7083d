"""The quickstart notebook executes headless and matches its generator; ``own_videos.yaml`` trains."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.lightning_cli.helpers import TINY

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _generator():
    spec = importlib.util.spec_from_file_location("make_quickstart_notebook", EXAMPLES / "make_quickstart_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_is_generated_from_script():
    nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
    committed = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    generated = _generator().build()
    assert [c.source for c in committed.cells] == [c.source for c in generated.cells], (
        "examples/quickstart.ipynb is stale: run python examples/make_quickstart_notebook.py"
    )


def test_quickstart_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra")
    pytest.importorskip("ipykernel", reason="ipykernel is in the dev extra")
    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    text = "".join(
        out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    for name in ("rank1", "rank5", "mAP", "mINP"):
        assert f"{name}: " in text, text[-2000:]
    values = [float(line.split(":")[1]) for line in text.splitlines() if line.strip().startswith(("rank1:", "mAP:"))]
    assert values and all(0.0 <= v <= 1.0 for v in values)
    last = notebook.cells[-1].outputs
    assert any("image/png" in out.get("data", {}) for out in last), "ranked-list picture not shown"


def test_own_videos_config_trains(run_cli, tiny_corpus, tmp_path):
    run_cli(
        "isr-lightning",
        "fit",
        "--config",
        str(EXAMPLES / "own_videos.yaml"),
        "--data.root",
        str(tiny_corpus),
        *TINY,
        "--data.init_args.boxes.score_threshold=0.0",
        "--data.init_args.boxes.min_box_size=8",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir=logs",
    )
    (checkpoint,) = tmp_path.glob("**/checkpoints/last.ckpt")
    assert checkpoint.stat().st_size > 0
