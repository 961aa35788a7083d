"""Progress of the long commands (``detect``, ``extract``, ``evaluate``, ``synth``): rate and ETA.

On a terminal a rich progress bar (rich is already a dependency, Lightning's bar for ``fit``
uses it too); otherwise, so that CI and cluster logs stay readable, one plain line every
``every`` seconds and one at the end::

    detect: 3/10 videos, 2400 frames, 80.1 frames/s, ETA 0:01:10, skipped 0

Usage::

    with Progress("detect", total=len(videos), unit="videos", rate_unit="frames") as progress:
        for video in videos:
            ...
            progress.advance(done=1, work=num_frames)   # or skipped=1
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Items done out of a total, the rate of the work they hold, the time left, the skips so far.

    Args:
        name: what is running (the command).
        total: items to do (videos, clips, images); ``None`` when unknown.
        unit: what an item is, for the line ("videos").
        rate_unit: what the rate counts ("frames"); the work of each item is given to :meth:`advance`.
        every: seconds between plain lines when the output is not a terminal.
        stream: where to write (default ``sys.stderr``).
        live: force the rich bar (``True``) or plain lines (``False``); default: a terminal or not.
    """

    def __init__(
        self,
        name: str,
        total: int | None,
        unit: str = "items",
        rate_unit: str | None = None,
        every: float = 30.0,
        stream: IO[str] | None = None,
        live: bool | None = None,
    ) -> None:
        self.name, self.total, self.unit = name, total, unit
        self.rate_unit = rate_unit or unit
        self.every = every
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.done = self.work = self.skipped = 0
        self.clock = time.monotonic
        self._bar: Any = None

    def __enter__(self) -> Progress:
        self._start = self._last = self.clock()
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.name, total=self.total, status="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.update(self._task, status=self._status())
            self._bar.stop()
        else:
            print(self.line(), file=self.stream, flush=True)

    def advance(self, done: int = 1, work: int = 0, skipped: int = 0) -> None:
        """Count ``done`` finished items holding ``work`` units of work, ``skipped`` of them skipped."""
        self.done += done
        self.work += work
        self.skipped += skipped
        now = self.clock()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, status=self._status())
        elif now - self._last >= self.every:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def _rate(self) -> float:
        return self.work / max(self.clock() - self._start, 1e-9)

    def _status(self) -> str:
        parts = []
        if self.work:
            parts.append(f"{self.work} {self.rate_unit}, {self._rate():.1f} {self.rate_unit}/s")
        parts.append(f"skipped {self.skipped}")
        return ", ".join(parts)

    def eta(self) -> float | None:
        """Seconds left, from the items done so far (``None`` without a total or before the first)."""
        if self.total is None or self.done == 0:
            return None
        elapsed = self.clock() - self._start
        return elapsed / self.done * max(self.total - self.done, 0)

    def line(self) -> str:
        """The plain progress line."""
        count = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
        eta = self.eta()
        left = f", ETA {_clock(eta)}" if eta is not None and self.done < (self.total or 0) else ""
        return f"{self.name}: {count} {self.unit}, {self._status()}{left}"
