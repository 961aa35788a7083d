"""Fixtures shared with the command-line tests."""

from tests.cli.conftest import run_cli, tiny_benchmark, tiny_corpus

__all__ = ["run_cli", "tiny_benchmark", "tiny_corpus"]
