"""Packages whose public names are imported on first use (PEP 562)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a package that imports its names on first use.

    Use in a package's ``__init__.py`` as ``__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)``
    (with the same imports under ``if TYPE_CHECKING:`` for type checkers and the API docs).

    Args:
        package: the package's name, e.g. ``"isr_lightning.data"``.
        exports: public name -> submodule that defines it, relative to the package.

    Returns:
        ``(__getattr__, __dir__)``: the first imports the submodule of a public name on first
        access and keeps the value in the package; the second lists the package's names and
        its public names.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook of PEP 562
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module hook of PEP 562
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
