"""The package's public surface."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


def _imported_modules(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The ``isr_lightning`` modules that a module imports anywhere (top level, functions, TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def _import_graph(root: Path) -> dict[str, set[str]]:
    files = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    known = set(files)
    return {
        name: _imported_modules(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (depth-first search), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_the_package_modules() -> None:
    # Every import counts, also those inside functions and under TYPE_CHECKING: a lazy import is
    # still a circle for the reader (loaders take plain modules; models import loaders).
    # The packages' PEP 562 exports (importlib) are not import statements and do not count.
    graph = _import_graph(Path(isr_lightning.__file__).parent)
    assert "isr_lightning.checkpoints" in graph["isr_lightning.module"]  # the graph sees real imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_cycle_search_finds_a_lazy_import_circle() -> None:
    tree = ast.parse("import isr_lightning.b\ndef f():\n    from isr_lightning import a\n")
    known = {"isr_lightning", "isr_lightning.a", "isr_lightning.b"}
    graph = {"isr_lightning.a": _imported_modules(tree, "isr_lightning.a", False, known)}
    graph["isr_lightning.b"] = _imported_modules(ast.parse("from .a import x"), "isr_lightning.b", False, known)
    graph["isr_lightning"] = set()
    assert graph["isr_lightning.a"] == {"isr_lightning.b", "isr_lightning"}
    assert _cycle(graph) == ["isr_lightning.a", "isr_lightning.b", "isr_lightning.a"]


# Test files that check a behaviour across modules rather than one module (the rest mirror the
# source: tests/<package path>/test_<module>.py; a module with several test files is a folder).
BEHAVIOUR_TESTS = {
    "test_isr_release.py": "the released ISR weights through checkpoints.py and module.py",
    "test_mixed_precision.py": "the module, loss and loader under bf16/fp16 autocast",
    "data/test_bad_inputs.py": "bad files counted and skipped from discovery to batches",
    "data/test_distributed.py": "2-process gloo data splitting through the loader and the module",
    "data/test_mot17_mini.py": "real MOT17 frames through the whole data path",
    "data/test_object_storage.py": "shards, manifests and checkpoints in a real S3 server (storage, extract, shards)",
    "data/test_predict_video.py": "trainer.predict over video boxes (data and predict.py)",
    "data/test_worker_processes.py": "loader workers started after decoders were used",
    "finetune/test_distributed.py": "2-process gloo fine-tuning (sampler, losses, validation)",
    "finetune/test_recipes.py": "the fine-tuning recipes through the command line",
    "test_multinode.py": "2 nodes x 1 process (gloo, loopback) training from s3:// shards, and a node killed",
}
NOT_THE_PACKAGE = ("benchmarks", "docs", "examples")  # tests of the repository's other folders


def test_the_test_tree_mirrors_the_source() -> None:
    tests, source = Path(__file__).parent, Path(isr_lightning.__file__).parent
    modules = {p.relative_to(source).with_suffix("") for p in source.rglob("*.py")}
    modules |= {m.with_name(m.name.lstrip("_")) for m in modules}  # _lazy.py -> test_lazy.py
    modules |= {m.with_name("package") for m in modules if m.name == "__init__"}  # __init__.py -> test_package.py
    unmatched = []
    for path in sorted(tests.rglob("test_*.py")):
        relative = path.relative_to(tests)
        if relative.parts[0] in NOT_THE_PACKAGE or relative.as_posix() in BEHAVIOUR_TESTS:
            continue
        module = relative.with_name(relative.stem.removeprefix("test_"))
        if module not in modules and relative.parent not in modules:  # a module's folder of tests
            unmatched.append(relative.as_posix())
    assert unmatched == []
    stale = [name for name in BEHAVIOUR_TESTS if not (tests / name).is_file()]
    assert stale == []
