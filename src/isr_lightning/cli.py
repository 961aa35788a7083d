"""The ``isr-lightning`` command.

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI subcommands; the library's
other commands are listed in :data:`COMMANDS` and imported only when called, so that
``isr-lightning --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

# name -> ("module:function", one-line help). Each function takes argv (list[str]) and
# returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("isr_lightning.demo:main", "train ISR on CPU and show what it learned"),
    "detect": ("isr_lightning.data.commands:detect_main", "write MOT detection sidecars for raw videos"),
    "evaluate": ("isr_lightning.evaluation.commands:evaluate_main", "evaluate a checkpoint on a ReID benchmark (JSON)"),
    "evaluate-features": (
        "isr_lightning.evaluation.commands:evaluate_features_main",
        "evaluate exported features from an .npz (JSON)",
    ),
    "extract": ("isr_lightning.data.extract:extract_main", "store a corpus's person crops as LitData shards"),
    "export": ("isr_lightning.export:export_main", "export a checkpoint to TorchScript or ONNX"),
    "synth": ("isr_lightning.synth.commands:synth_main", "render synthetic street videos or a ReID benchmark"),
}

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def _load(target: str) -> Callable[[list[str]], int]:
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def _usage() -> str:
    lines = ["usage: isr-lightning COMMAND [ARGS]", "", "Lightning commands:"]
    lines += [f"  {name:<18} LightningCLI {name} (--config FILE.yaml)" for name in LIGHTNING_SUBCOMMANDS]
    lines += ["", "Library commands:"]
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
    return int(_load(COMMANDS[command][0])(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
