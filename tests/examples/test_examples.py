"""Examples run as users run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_custom_backbone_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "custom_backbone.py")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "embedding shape: (2, 128)" in result.stdout
