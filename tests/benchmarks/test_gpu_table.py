"""The GPU table's prepared script runs end to end on the CPU (``--dry-run``), so a lent GPU runs it at once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.benchmarks.helpers import BENCHMARKS


@pytest.mark.slow
def test_gpu_table_dry_run_writes_every_row(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_table.py"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"WANDB_MODE": "offline", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((tmp_path / "gpu_table.json").read_text())
    for key in ("bare_crops_per_s", "video_crops_per_s", "shards_crops_per_s", "swin_crops_per_s"):
        assert rows[key] > 0, key
    assert rows["decoders_frames_per_s"]["decord"] > 0 and rows["decoders_frames_per_s"]["pyav"] > 0
    assert "| ISR from shards |" in result.stdout
