"""Catch the script that starts loader workers from its top level without a ``__main__`` guard.

Loader workers start from a ``forkserver`` (see :class:`~isr_lightning.data.loader.VideoPairLoader`),
and a worker started that way (or by ``spawn``) imports the main script again before it runs.
A script that calls ``trainer.fit(...)`` at module level, outside
``if __name__ == "__main__":``, therefore runs again inside every worker: a second model, a
second trainer, which then fails with a long multiprocessing traceback, and the training
process reports only "DataLoader worker exited unexpectedly". Most Lightning examples in the
wild omit the guard, so this is checked before any worker starts.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
from types import FrameType

__all__ = ["UnguardedEntryPointError", "check_entry_point_guard"]


class UnguardedEntryPointError(RuntimeError):
    """Loader workers would re-run the main script (it has no ``__main__`` guard)."""


def check_entry_point_guard(start_method: str | None) -> None:
    """Raise before workers start if they would re-run the calling script's top level.

    That is the case when the workers' start method re-imports the main module
    (``forkserver``, ``spawn``) and the main script's module-level code, outside an
    ``if __name__ == "__main__":`` block, is what is starting them.

    Args:
        start_method: the workers' multiprocessing start method (``None``: the default one).

    Raises:
        UnguardedEntryPointError: with the script's path, line and the fix.
    """
    method = start_method or multiprocessing.get_start_method(allow_none=True) or _default_start_method()
    if method == "fork":
        return
    found = _unguarded_call_site()
    if found is not None:
        path, line = found
        raise UnguardedEntryPointError(
            f"{path}, line {line}, starts data loader workers from the script's top level, outside "
            f'an `if __name__ == "__main__":` block. Workers start from a {method} and import the '
            "main script again, so each one would run the whole script (and its training) anew. "
            'Put the code that trains under `if __name__ == "__main__":` (see docs/data.md), or '
            "use num_workers=0."
        )


def _default_start_method() -> str:
    return multiprocessing.get_context().get_start_method()


def _unguarded_call_site() -> tuple[str, int] | None:
    """``(path, line)`` of the main script's top-level frame on the stack, if unguarded."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or not os.path.isfile(path):
        return None  # interactive session, notebook, python -c: nothing is re-imported
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>" and os.path.abspath(code.co_filename) == os.path.abspath(path):
            break
        frame = frame.f_back
    if frame is None:
        return None  # called from functions only
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None
    line = frame.f_lineno
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.lineno <= line <= (node.end_lineno or 0):
            return None
    return path, line


def _is_main_test(test: ast.expr) -> bool:
    """Whether ``test`` is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    values = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and values == ["__main__"]
