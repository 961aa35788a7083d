"""What a newcomer meets first: a data root that is missing, wrong or empty is one line."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("entry", ["isr-lightning", "lightning"])
def test_missing_data_root_is_one_line(entry, run_cli):
    result = run_cli(entry, "fit", "--config", "cpu_demo", check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"{entry} fit: error: the data root is missing (--data.root DIR")
    assert "folder of videos" in line and "manifest" in line and "isr-lightning synth corpus DIR" in line


def test_data_root_that_does_not_exist_is_one_line(run_cli, tmp_path):
    result = run_cli("isr-lightning", "fit", "--config", "cpu_demo", "--data.root", str(tmp_path / "nope"), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"isr-lightning fit: error: data root not found: {tmp_path / 'nope'}. root may be a folder of videos with "
        "MOT box files beside them, MOTChallenge sequence folders, or a .csv/.jsonl manifest (docs/data.md); no "
        "data yet? `isr-lightning synth corpus DIR` renders a synthetic corpus"
    ]


def test_data_root_without_clips_ends_in_one_line(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli(
        "lightning",
        "fit",
        "--config",
        "cpu_demo",
        "--data.root",
        str(tmp_path / "empty"),
        "--trainer.logger=false",
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lightning fit: error: no videos") and "isr-lightning synth corpus DIR" in last
