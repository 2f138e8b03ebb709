"""One log line per cause per interval: what keeps a flood of connections from becoming a flood of log lines.

At the descriptor limit asyncio's accept loop logged a traceback for every failed ``accept()`` (139,131 of them,
62 MB in 12 s). `OncePerInterval` on a logger lets the first record of each cause through, counts the rest for
`interval` seconds, and says how many it held back on the next line of that cause; an ``OSError`` (``EMFILE``,
``ENOBUFS``, a reset) is written as its one-line message instead of a traceback, which says nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

Cause = tuple[str, int, str, str]

MAX_CAUSES = 1000
"""Causes remembered at once; beyond, the filter starts afresh (a logger fed endless distinct messages)."""


def cause_of(record: logging.LogRecord) -> Cause:
    """What makes two records "the same": logger, level, the message's first line before its arguments are filled
    in, and the exception's type and where it was raised (so distinct bugs stay distinct)."""
    template = str(record.msg).split("\n", 1)[0]
    where = ""
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        frames = traceback.extract_tb(exc.__traceback__)
        errno = getattr(exc, "errno", None)
        where = f"{type(exc).__name__}:{errno}:" + (f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "")
    return (record.name, record.levelno, template, where)


class OncePerInterval(logging.Filter):
    """Lets through the first record of each cause (`cause_of`) per `interval` seconds."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[Cause, float] = {}
        self._held: dict[Cause, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        cause = cause_of(record)
        now = self.clock()
        with self._lock:
            last = self._last.get(cause)
            if last is not None and now - last < self.interval:
                self._held[cause] = self._held.get(cause, 0) + 1
                return False
            self._last[cause] = now
            held = self._held.pop(cause, 0)
            if len(self._last) > MAX_CAUSES:  # causes are few; this bounds a logger fed endless distinct messages
                self._last = {cause: now}
                self._held = {}  # the counts of the causes forgotten go with them
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, OSError) or held:
            message = record.getMessage().split("\n", 1)[0]
            if isinstance(exc, OSError):
                message += f": {exc}"
                record.exc_info = None
                record.exc_text = None
            if held:
                message += f" ({held} more like this since the last one shown were not logged)"
            record.msg, record.args = message, None
        return True
