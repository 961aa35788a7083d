"""Progress lines: rate, ETA and skips, every few seconds off a terminal; a rich bar on one."""

from __future__ import annotations

import io

from isr_lightning.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_every_interval_with_rate_eta_and_skips() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress("detect", total=4, unit="videos", rate_unit="frames", every=10, stream=out, live=False)
    progress.clock = clock
    with progress:
        clock.now = 5.0
        progress.advance(done=0, work=100)  # 5 s in, within a video: no line yet
        assert out.getvalue() == ""
        clock.now = 10.0
        progress.advance(work=100)  # 1 of 4 videos after 10 s: 30 s left
        assert out.getvalue() == "detect: 1/4 videos, 200 frames, 20.0 frames/s, skipped 0, ETA 0:00:30\n"
        clock.now = 12.0
        progress.advance(skipped=1)
        clock.now = 30.0
        progress.advance(work=400)
    lines = out.getvalue().splitlines()
    assert lines[1] == "detect: 3/4 videos, 600 frames, 20.0 frames/s, skipped 1, ETA 0:00:10"
    assert lines[-1] == "detect: 3/4 videos, 600 frames, 20.0 frames/s, skipped 1, ETA 0:00:10"  # the closing line
    assert len(lines) == 3


def test_a_terminal_gets_a_bar_and_unknown_totals_have_no_eta() -> None:
    out = io.StringIO()
    with Progress("extract", total=2, unit="clips", stream=out, live=True) as progress:
        progress.advance(work=10)
        progress.advance(work=10)
    assert "extract" in out.getvalue() and "2/2" in out.getvalue()
    plain = Progress("embed", total=None, unit="images", stream=io.StringIO(), live=False)
    with plain:
        plain.advance(done=5, work=5)
    assert plain.eta() is None and plain.line().startswith("embed: 5 images")
