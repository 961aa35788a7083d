"""The ``isr-lightning`` dispatcher and :func:`run_function`: commands built from signatures."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from isr_lightning.cli import COMMANDS, function_parser, load_command, main, run_function
from isr_lightning.evaluation.protocol import ReIDProtocol
from isr_lightning.synth.benchmark import BenchmarkConfig
from isr_lightning.synth.config import CorpusConfig


@dataclass(frozen=True)
class _Shape:
    """A checked setting.

    Args:
        height: rows.
        width: columns.
    """

    height: int = 4
    width: int = 2

    def __post_init__(self) -> None:
        if self.height < 1:
            raise ValueError(f"height must be >= 1, got {self.height}")


def _area(shape: _Shape | None = None, scale: float = 1.0) -> float:
    """Area of a shape.

    Args:
        shape: the shape.
        scale: multiplies the area.
    """
    shape = shape or _Shape()
    return shape.height * shape.width * scale


CALLS: list[dict[str, Any]] = []


def _toy(name: str, repeat: int = 1, loud: bool = False, overrides: tuple[str, ...] = (), **area: Any) -> int | None:
    """Say a name.

    What ``--`` takes.

    Args:
        name: who.
        repeat: how often.
        loud: shout.
        overrides: the arguments after ``--``.
        **area: forwarded to the area.
    """
    if name == "missing":
        raise FileNotFoundError("missing: no such file")
    CALLS.append({"name": name, "repeat": repeat, "loud": loud, "overrides": list(overrides), "area": _area(**area)})
    return 3 if name == "three" else None


def test_options_types_defaults_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    CALLS.clear()
    assert (
        run_function(_toy, ["ann", "--repeat", "2", "--loud", "true", "--shape.height", "5", "--scale", "2"], "toy")
        == 0
    )
    assert CALLS[-1] == {"name": "ann", "repeat": 2, "loud": True, "overrides": [], "area": 20.0}
    assert run_function(_toy, ["three", "--", "--a=1", "b"], "toy") == 3  # the function's int is the exit code
    assert CALLS[-1]["overrides"] == ["--a=1", "b"] and CALLS[-1]["area"] == 8.0
    # a bad option or value: exit 2, one line naming it
    for argv, reason in (
        (["ann", "--repeat", "x"], 'Parser key "repeat"'),
        (["ann", "--colour", "red"], "unrecognized arguments: --colour red"),
        (["ann", "--shape.height", "0"], "height must be >= 1, got 0"),  # the dataclass's own check
        ([], "the following arguments are required: name"),
    ):
        assert run_function(_toy, argv, "toy") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("toy: error: ") and reason in err, err
    # bad input met while running: exit 1, one line
    assert run_function(_toy, ["missing"], "toy") == 1
    assert capsys.readouterr().err == "toy: error: missing: no such file\n"
    assert len(CALLS) == 2


def test_help_comes_from_the_docstring(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_function(_toy, ["--help"], "toy")
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Say a name. What ``--`` takes." in text  # the summary, and the paragraph for "--"
    assert "how often. (type: int, default: 1)" in text
    assert "multiplies the area. (type: float, default: 1.0)" in text  # from the function **area reaches
    assert "--overrides" not in text


def test_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    commands = {"toy": _toy, "area": _area}
    assert run_function(commands, ["area", "--scale", "3"], "cmd") == 0
    assert run_function(commands, ["--help"], "cmd") == 0
    assert "toy          Say a name." in capsys.readouterr().out
    assert run_function(commands, ["nope"], "cmd") == 2
    assert "unknown subcommand 'nope'" in capsys.readouterr().err


def test_every_command_answers_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in COMMANDS:
        try:
            code = main([name, "--help"])
        except SystemExit as exit_info:
            code = exit_info.code
        assert code == 0, name
        assert "usage: isr-lightning " + name in capsys.readouterr().out


def _defaults(command: str, subcommand: str | None = None) -> dict[str, Any]:
    """The default of every option of a library command, as its parser holds it."""
    target = load_command(command)
    function = target[subcommand] if subcommand else target
    return function_parser(function, command).get_defaults().as_dict()


@pytest.mark.parametrize(("subcommand", "declared"), [("corpus", CorpusConfig()), ("benchmark", BenchmarkConfig())])
def test_synth_options_are_the_config_fields_with_their_defaults(subcommand: str, declared: Any) -> None:
    defaults = _defaults("synth", subcommand)
    expected = dataclasses.asdict(declared)
    assert {key: defaults[key] for key in expected} == expected


def test_evaluation_options_are_the_protocol_fields() -> None:
    defaults = _defaults("evaluate-features")
    protocol = dataclasses.asdict(ReIDProtocol())
    assert len(protocol) == 9 and {key: defaults[key] for key in protocol} == protocol
