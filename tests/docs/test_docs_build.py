"""The documentation site builds with ``mkdocs build --strict`` (no warnings) and renders the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is in the docs/dev extras: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is in the docs/dev extras")
    pytest.importorskip("material", reason="mkdocs-material is in the docs/dev extras")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    # every page of the nav was written, and the API reference was generated from docstrings
    for page in ("quickstart", "configuration", "api", "faq", "concepts", "data", "evaluation", "benchmarks"):
        assert (site / page / "index.html").is_file(), page
    api = (site / "api" / "index.html").read_text()
    assert 'id="isr_lightning.evaluation.callback.ReIDBenchmarkEvaluation"' in api
    assert "reliability-weighted InfoNCE" in api  # ISRModule's docstring text
    configuration = (site / "configuration" / "index.html").read_text()
    assert "batches_per_epoch" in configuration and "pair_miner" in configuration
