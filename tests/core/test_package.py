"""The package's public surface."""

from __future__ import annotations

import subprocess
import sys

import isr_lightning


def test_every_public_name_resolves() -> None:
    assert sorted(isr_lightning.__all__) == sorted(isr_lightning._EXPORTS)
    for name in isr_lightning.__all__:
        assert getattr(isr_lightning, name).__name__ == name


def test_evaluation_and_synth_do_not_import_training_stack() -> None:
    code = (
        "import sys, isr_lightning, isr_lightning.evaluation, isr_lightning.synth;"
        "print(sorted(m for m in ('timm', 'lightning') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
