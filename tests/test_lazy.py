"""Packages that import their public names on first use: ``isr_lightning._lazy`` and ``isr_lightning.data``."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import isr_lightning.data
from isr_lightning._lazy import lazy_exports


def test_lazy_exports_imports_on_first_access(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("fake_package")
    sub = types.ModuleType("fake_package.sub")
    sub.VALUE = object()
    monkeypatch.setitem(sys.modules, "fake_package", package)
    package.__getattr__, package.__dir__ = lazy_exports("fake_package", {"VALUE": "sub"})
    assert "VALUE" in package.__dir__() and "VALUE" not in vars(package)
    monkeypatch.setitem(sys.modules, "fake_package.sub", sub)
    assert package.VALUE is sub.VALUE
    assert vars(package)["VALUE"] is sub.VALUE  # kept: the next access is a plain attribute
    with pytest.raises(AttributeError, match="'fake_package' has no attribute 'OTHER'"):
        package.__getattr__("OTHER")


def test_every_public_name_of_data_resolves() -> None:
    assert sorted(isr_lightning.data.__all__) == sorted(isr_lightning.data._EXPORTS)
    for name in isr_lightning.data.__all__:
        value = getattr(isr_lightning.data, name)
        assert getattr(value, "__name__", name) == name
    assert set(isr_lightning.data.__all__) <= set(dir(isr_lightning.data))


def test_formats_shared_with_the_synthetic_world_import_no_torch() -> None:
    """The MOT format and box geometry come without torch and Lightning, and so does the synthetic world."""
    code = (
        "import sys, isr_lightning.data.mot, isr_lightning.data.boxes, isr_lightning.synth;"
        "print(sorted(m for m in ('torch', 'lightning', 'timm') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
