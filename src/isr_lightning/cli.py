"""The ``isr-lightning`` command.

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI subcommands. The library's
other commands (:data:`COMMANDS`) are plain Python functions: :func:`run_function` builds
each one's options from its signature and Google docstring with jsonargparse, as LightningCLI
does for ``fit``, so an option and its default are declared once, in the function (or the
dataclass or function it forwards ``**kwargs`` to). The functions are imported only when
called, so that ``isr-lightning --help`` stays fast.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser

# name -> ("module:attribute", one-line help). The attribute is a function, or a dict of
# functions for a command with subcommands.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("isr_lightning.demo:demo", "train ISR on CPU and show what it learned"),
    "detect": ("isr_lightning.data.commands:detect", "write MOT detection sidecars for raw videos"),
    "evaluate": ("isr_lightning.evaluation.commands:evaluate", "evaluate a checkpoint on a ReID benchmark (JSON)"),
    "evaluate-features": (
        "isr_lightning.evaluation.commands:evaluate_features",
        "evaluate exported features from an .npz (JSON)",
    ),
    "extract": ("isr_lightning.data.extract:extract", "store a corpus's person crops as LitData shards"),
    "export": ("isr_lightning.export:export", "export a checkpoint to TorchScript or ONNX"),
    "synth": ("isr_lightning.synth.commands:SYNTH_COMMANDS", "render synthetic street videos or a ReID benchmark"),
}

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

# Exceptions a command turns into one line on stderr and exit code 1: bad input files and
# values. Anything else is a bug and keeps its traceback.
INPUT_ERRORS = (OSError, ValueError, KeyError)

# A function parameter of this name receives the arguments after a literal "--" unparsed.
PASSTHROUGH = "overrides"

Command = Callable[..., Any]


def load_command(name: str) -> Command | Mapping[str, Command]:
    """The function (or dict of subcommand functions) of the library command ``name`` of :data:`COMMANDS`."""
    module_name, attribute = COMMANDS[name][0].split(":")
    return getattr(importlib.import_module(module_name), attribute)


def _summary(function: Command, paragraphs: int = 1) -> str:
    return "\n\n".join((inspect.getdoc(function) or "").split("\n\n")[:paragraphs])


def _innermost(err: BaseException) -> BaseException:
    """The original error under jsonargparse's wrappers (its message is the readable one)."""
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def _message(err: BaseException) -> str:
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)


def _subcommand_usage(commands: Mapping[str, Command], argv: list[str], prog: str) -> int:
    asked = bool(argv) and argv[0] in ("-h", "--help")
    lines = [f"usage: {prog} {{{','.join(commands)}}} [ARGS]"]
    if argv and not asked:
        lines.append(f"{prog}: error: unknown subcommand {argv[0]!r}")
    lines += [f"  {name:<12} {_summary(function)}" for name, function in commands.items()]
    print("\n".join(lines), file=sys.stdout if asked else sys.stderr)
    return 0 if asked else 2


def function_parser(function: Command, prog: str) -> ArgumentParser:
    """The jsonargparse parser of a function's signature and docstring.

    Options are named after the parameters (``--max_rank 5``, ``--force true``; the first
    parameters without defaults are positional), including those of the callables the
    function forwards ``**kwargs`` to, as jsonargparse resolves them. A parameter named
    ``overrides`` is left out: it receives the arguments after ``--`` (see :func:`run_function`).

    Args:
        function: the command's function.
        prog: the command as the user typed it.

    Returns:
        The parser (``exit_on_error=False``: a bad option raises ``ArgumentError``).
    """
    from jsonargparse import ArgumentParser

    passthrough = PASSTHROUGH in inspect.signature(function).parameters
    description = _summary(function, paragraphs=2 if passthrough else 1)  # the second says what "--" takes
    parser = ArgumentParser(prog=prog, description=description, exit_on_error=False)
    parser.add_function_arguments(function, as_positional=True, skip={PASSTHROUGH} if passthrough else None)
    return parser


def run_function(target: Command | Mapping[str, Command], argv: Sequence[str], prog: str) -> int:
    """Parse ``argv`` with :func:`function_parser`, call the function, return an exit code.

    A parameter named ``overrides`` receives the arguments after ``--`` unparsed.

    Args:
        target: the function, or a dict ``subcommand -> function`` (``argv[0]`` chooses).
        argv: the arguments after the command's name.
        prog: the command as the user typed it, for messages.

    Returns:
        0 on success (or the function's integer result); 1 with one line on stderr when the
        function raised one of :data:`INPUT_ERRORS`; 2 with one line on stderr on a bad option
        or value (including a dataclass's own check of its fields).
    """
    from jsonargparse import ArgumentError

    argv = list(argv)
    if isinstance(target, Mapping):
        if not argv or argv[0] not in target:
            return _subcommand_usage(target, argv, prog)
        target, argv, prog = target[argv[0]], argv[1:], f"{prog} {argv[0]}"
    passthrough: dict[str, list[str]] = {}
    if PASSTHROUGH in inspect.signature(target).parameters:
        split = argv.index("--") if "--" in argv else len(argv)
        argv, passthrough[PASSTHROUGH] = argv[:split], argv[split + 1 :]
    parser = function_parser(target, prog)
    if not logging.getLogger().handlers:  # commands report skipped inputs through logging
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        for chatty in ("botocore", "aiobotocore", "s3fs", "litdata"):  # "Found credentials...", cache sizes: every run
            logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        kwargs = parser.instantiate(parser.parse_args(argv))
    except (ArgumentError, *INPUT_ERRORS) as err:
        cause = err if isinstance(err, ArgumentError) else _innermost(err)  # the parser's names the option
        reason = " ".join(_message(cause).split())  # one line
        print(f"{prog}: error: {reason} ({prog} --help lists the options)", file=sys.stderr)
        return 2
    try:
        result = target(**vars(kwargs), **passthrough)
    except INPUT_ERRORS as err:
        print(f"{prog}: error: {_message(err)}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _usage() -> str:
    lines = ["usage: isr-lightning COMMAND [ARGS]", "", "Lightning commands:"]
    lines += [f"  {name:<18} LightningCLI {name} (--config FILE.yaml)" for name in LIGHTNING_SUBCOMMANDS]
    lines += ["", "Library commands (COMMAND --help lists the options):"]
    lines += [f"  {name:<18} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``isr-lightning`` command line.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = args[0], args[1:]
    if command in LIGHTNING_SUBCOMMANDS:
        from isr_lightning.lightning_cli import run_command

        return run_command("isr-lightning", [command, *rest])
    if command not in COMMANDS:
        print(f"isr-lightning: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return run_function(load_command(command), rest, f"isr-lightning {command}")


if __name__ == "__main__":
    sys.exit(main())
