"""A miniature demo runs end to end: data generation, evaluation, training, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isr_lightning.cli import main
from isr_lightning.demo import BENCHMARKS, REPORTED


@pytest.mark.slow
def test_miniature_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "demo",
            f"--out={out}",
            f"--cache={tmp_path / 'cache'}",
            "--clips=2",
            "--identities=6",
            "--minutes=0.2",
            "--max_steps=2",
            "--",
            "--model.init_args.image_size=[64,32]",  # the recipe's ImageNet MobileNetV2, smaller crops
            "--data.init_args.transform.image_size=[64,32]",
            "--data.init_args.batch_size=2",
            "--data.init_args.num_workers=0",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    others = {f"{name}_{key}" for name in BENCHMARKS if name != "mall" for key in ("rank1", "mAP")}
    for phase in ("before", "after"):
        assert set(metrics[phase]) == set(REPORTED) | others
        assert all(0.0 <= value <= 1.0 for value in metrics[phase].values())
        assert metrics[phase]["rank1"] <= metrics[phase]["rank5"] <= metrics[phase]["rank10"]
    assert metrics["steps"] == 2
    assert (out / "isr.ckpt").stat().st_size > 0
    assert (out / "ranked_lists.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "rank1" in printed and "park_mAP" in printed and str(out.resolve()) in printed
