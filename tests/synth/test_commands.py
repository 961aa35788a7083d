"""``isr-lightning synth corpus|benchmark``: options from the generators, caching, one-line errors."""

from __future__ import annotations

from isr_lightning.cli import main


def test_corpus_and_benchmark_commands(tmp_path, capsys):
    root = tmp_path / "c"
    argv = [
        "synth",
        "corpus",
        str(root),
        "--num_clips",
        "1",
        "--seconds",
        "0.5",
        "--fps",
        "4",
        "--width",
        "96",
        "--height",
        "64",
        "--preview",
        "false",
    ]
    assert main(argv) == 0
    assert (root / "clip00000.mp4").exists()
    assert main(argv) == 0
    assert "cached" in capsys.readouterr().out
    bench = tmp_path / "b"
    assert (
        main(
            [
                "synth",
                "benchmark",
                str(bench),
                "--num_identities",
                "3",
                "--num_cameras",
                "2",
                "--num_distractors",
                "1",
                "--num_junk",
                "1",
                "--preview",
                "false",
            ]
        )
        == 0
    )
    assert any((bench / "query").iterdir())
    assert main(["synth", "benchmark", str(bench), "--num_cameras", "12"]) == 1
    assert capsys.readouterr().err.strip() == "isr-lightning synth benchmark: error: num_cameras must be in [2, 9]"
    assert main(["synth", "benchmark", str(bench), "--cameras", "2"]) == 2  # not an option
    assert "unrecognized arguments: --cameras 2" in capsys.readouterr().err
