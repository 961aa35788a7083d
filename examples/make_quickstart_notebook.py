"""Write ``examples/quickstart.ipynb`` from the cells below (the notebook is generated, never edited).

Run ``python examples/make_quickstart_notebook.py`` after changing a cell.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    (
        "md",
        """# isr-lightning quickstart

Learn person re-identification features from **unlabeled video** with `ISRModule`, on a CPU in
about a minute: render a tiny synthetic street corpus, train a few steps, and look at retrieval
on a benchmark of unseen people (rank-k, mAP, and a ranked-list picture).

The sizes below are tiny so that the notebook runs anywhere; raise `CLIPS`, `STEPS` and the
backbone for a result worth looking at (or run `isr-lightning demo`).""",
    ),
    (
        "code",
        """from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger

from isr_lightning import ISRModule
from isr_lightning.callbacks import CropThroughput
from isr_lightning.data import CropTransform, PairSampling, VideoPairDataModule
from isr_lightning.evaluation.callback import ReIDBenchmarkEvaluation
from isr_lightning.synth import generate_benchmark, generate_corpus

CLIPS, SECONDS, STEPS, IDENTITIES = 2, 3, 4, 8  # tiny; e.g. 40, 10, 2000, 150 for a real run
W, H = 160, 90  # video frame size; e.g. 640, 360
IMAGE_SIZE = (64, 32)  # (H, W) of the person crops; 256x128 for real ReID
DATA = Path("isr-quickstart-data")""",
    ),
    ("md", "## 1. Data: unlabeled clips with person detections, and a labelled benchmark of other people"),
    (
        "code",
        """corpus = generate_corpus(DATA / "corpus", num_clips=CLIPS, seconds=SECONDS, width=W, height=H)
benchmark = generate_benchmark(DATA / "benchmark", num_identities=IDENTITIES, num_cameras=2, preview=False)
print(f"{len(corpus.clips)} clips, {corpus.num_det_boxes} detections (no identities used for training)")
print(f"benchmark: {benchmark.num_query} queries, {benchmark.num_gallery} gallery images")""",
    ),
    (
        "md",
        """## 2. Train: ISRModule on frame pairs, evaluated on the benchmark at the end of every epoch

`num_workers=0` keeps this tiny run in one process. Real runs decode video in loader workers
(`num_workers=2` or more), and those workers start from a *forkserver*: each one imports the
main script again before it runs. In a notebook that is harmless. In a `.py` script, put the
code that trains under `if __name__ == "__main__":`, or every worker runs the whole script
(and its training) again; the loader stops an unguarded script with an error that says so.""",
    ),
    (
        "code",
        """pl.seed_everything(0)
model = ISRModule(backbone="resnet10t", pretrained=False, embed_dim=64, image_size=IMAGE_SIZE)
data = VideoPairDataModule(
    root=corpus.root,
    batch_size=2,
    batches_per_epoch=STEPS,
    transform=CropTransform(image_size=IMAGE_SIZE),
    sampling=PairSampling(delta_seconds=(0.5, 1.5)),
    num_workers=0,
)
evaluation = ReIDBenchmarkEvaluation(benchmark.root, dataset="folder", num_plot_queries=4, plot_topk=6)
trainer = pl.Trainer(
    accelerator="cpu",
    max_steps=STEPS,
    log_every_n_steps=1,
    logger=CSVLogger("isr-quickstart-logs"),
    callbacks=[evaluation, CropThroughput(window=1)],
    enable_checkpointing=False,
    enable_model_summary=False,
)
trainer.fit(model, datamodule=data)""",
    ),
    ("md", "## 3. Retrieval results on unseen people"),
    (
        "code",
        """for name, value in evaluation.last_metrics.items():
    print(f"{name:>8}: {value:.3f}")""",
    ),
    (
        "md",
        "Each row: a query (left) and its nearest gallery images, framed green when they show the same"
        " person and red otherwise.",
    ),
    (
        "code",
        """from PIL import Image

Image.open(evaluation.last_picture_path)""",
    ),
]


def build() -> nbformat.NotebookNode:
    """The quickstart notebook, without outputs."""
    notebook = new_notebook()
    notebook.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def main() -> None:
    path = Path(__file__).with_name("quickstart.ipynb")
    nbformat.write(build(), path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
