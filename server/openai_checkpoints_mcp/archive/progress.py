"""What the ``archive`` command shows on stderr while it runs: a tqdm bar on a terminal, plain lines otherwise.

The bar's total is unknown until the listing ends (it shows jobs done and the rate until then). Without a terminal
(a log file, CI, a pipe) a line is printed at most every `PLAIN_EVERY` seconds, and one at the end, never a flood.
tqdm is imported only when a bar is drawn, so nothing else pays for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from .writer import Tally

PLAIN_EVERY = 2.0
"""Seconds between two plain progress lines."""


def describe(tally: Tally) -> str:
    """The state of a run in a few words: ``120 of 340+ jobs, 3 skipped as complete, 1 incomplete``."""
    total = f"{tally.selected:,}" if tally.selection_done else f"{tally.selected:,}+"
    return f"{tally.done:,} of {total} jobs, {tally.skipped:,} skipped as complete, {tally.incomplete:,} incomplete"


class PlainProgress:
    """One line every `every` seconds at most (``archive: 120 of 340+ jobs, ..., 12 s``), and a last one at `close`."""

    def __init__(
        self, stream: TextIO, *, every: float = PLAIN_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._every = every
        self._clock = clock
        self._started = self._last = clock()
        self._tally: Tally | None = None
        self._shown: str | None = None

    def __call__(self, tally: Tally) -> None:
        self._tally = tally
        if self._clock() - self._last >= self._every:
            self._print(tally)

    def close(self) -> None:
        """The last line, unless it would repeat the one printed last."""
        if self._tally is not None and describe(self._tally) != self._shown:
            self._print(self._tally)

    def _print(self, tally: Tally) -> None:
        self._last = now = self._clock()
        self._shown = describe(tally)
        print(f"archive: {self._shown}, {now - self._started:.0f} s", file=self._stream, flush=True)


class BarProgress:
    """A tqdm bar of jobs done; its total is set once the listing has ended."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: Any = None

    def __call__(self, tally: Tally) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=None, unit="job", desc="archive", file=self._stream, dynamic_ncols=True)
        bar = self._bar
        if tally.selection_done and bar.total != tally.selected:
            bar.total = tally.selected
            bar.refresh()
        bar.set_postfix_str(f"{tally.skipped:,} skipped, {tally.incomplete:,} incomplete", refresh=False)
        if tally.done > bar.n:
            bar.update(tally.done - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def progress_for(stream: TextIO) -> PlainProgress | BarProgress:
    """A bar when `stream` is a terminal, plain lines otherwise."""
    isatty = getattr(stream, "isatty", None)
    return BarProgress(stream) if isatty is not None and isatty() else PlainProgress(stream)
