"""What one HTTP connection may hold: a header timeout, an idle timeout and a bound on open connections.

uvicorn (with h11) waits for a request's head as long as the client likes, and accepts connections until the
process runs out of file descriptors: 300 sockets trickling their headers held the server for as long as they
cared to, and at the descriptor limit every accept failed (and was logged) while legitimate clients got nothing.
`guarded_protocol` makes uvicorn's h11 protocol class keep to `ConnectionLimits`:

* **header timeout**: a request's head and body must have arrived within ``header_timeout`` seconds, counted from
  the connection (for its first request) or from the first byte of the request (on a kept-alive connection);
  trickling does not extend it. Then the connection is closed.
* **idle timeout**: a kept-alive connection with no request is closed after ``idle_timeout`` seconds (uvicorn's
  ``timeout_keep_alive``).
* **connection bound**: over ``max_connections`` open connections, room is made a moment later
  (`ADMISSION_DELAY`, by when a real newcomer has sent its request and is being answered) by closing connections
  in the order of `_displacement_rank`, slow heads first: a slow client loses its place to a new one, never the
  other way round. Only when every connection is busy answering is a new one refused: ``503`` and closed at once,
  before anything is read.

The bound's default keeps within the process's descriptor limit (`default_limits`), with room for the server's
own upstream connections and files, and the listen backlog is sized so that bursts of accepts stay within it
too. Every reason a connection is closed is logged once per interval (`logs.OncePerInterval`), with a count.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .limits import DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT
from .logs import OncePerInterval

logger = logging.getLogger(__name__)

MAX_DEFAULT_CONNECTIONS = 1024
"""The default connection bound when the descriptor limit leaves room for more."""
FD_HEADROOM = 64
"""File descriptors kept out of the connection bound: the upstream API's connection pool, the cache file, the
log, the interpreter's own."""
MAX_BACKLOG = 2048
"""uvicorn's default listen backlog, which asyncio also takes as the most connections accepted in one go."""
LISTEN_QUEUE = MAX_BACKLOG
"""The kernel's queue of connections not yet accepted, set once serving (`http.serve_http`): they hold no
descriptor, so only the accepts per turn (the backlog given to asyncio) are bounded by the descriptor budget."""

ADMISSION_DELAY = 0.1
"""Seconds a newcomer over the bound has to send its request before it can be closed to make room."""
SILENT_GRACE = 1.0
"""The same for one that has sent nothing yet: its first segments may have been dropped at a full listen queue."""

_REFUSAL_BODY = b"too many open connections: retry in a second\r\n\r\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"\r\n" + _REFUSAL_BODY
)
"""What a connection over the bound gets before it is closed (written before its request is read)."""


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take and how many connections may be open at once."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int = MAX_DEFAULT_CONNECTIONS
    backlog: int = MAX_BACKLOG
    """The listen backlog, which is also the most connections asyncio accepts in one event-loop turn."""

    def __post_init__(self) -> None:
        if not self.header_timeout > 0 or not self.idle_timeout > 0:
            raise ValueError("the header and idle timeouts must be positive numbers of seconds")
        if self.max_connections < 1 or self.backlog < 1:
            raise ValueError("the connection bound and the backlog must be at least 1")


def descriptor_limit() -> int:
    """The process's soft limit on open file descriptors (``ulimit -n``); a large number when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY else int(soft)


def default_limits(
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int | None = None,
    fd_limit: int | None = None,
) -> ConnectionLimits:
    """Limits that fit the descriptor limit (`fd_limit`, default the process's own).

    Connections and the accepts of a few event-loop turns stay below the limit less `FD_HEADROOM`: five eighths of
    that budget for connections (at most `MAX_DEFAULT_CONNECTIONS`), and a third of the rest for the backlog, since
    a connection closed to make room gives its descriptor back only a turn or two later, while accepts go on. A
    `max_connections` given is kept (it is the operator's choice) and the backlog is fitted to it, at least 8.
    """
    budget = max(16, (descriptor_limit() if fd_limit is None else fd_limit) - FD_HEADROOM)
    bound = max_connections if max_connections is not None else min(MAX_DEFAULT_CONNECTIONS, budget * 5 // 8)
    backlog = max(8, min(MAX_BACKLOG, (budget - bound) // 3))
    return ConnectionLimits(header_timeout, idle_timeout, bound, backlog)


class ConnectionGuard:
    """The open connections of one server and the limits they keep to; shared by every connection's protocol."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: set[_Guarded] = set()
        self.closed_slow = 0
        self.displaced = 0
        self.refused = 0
        """Counts since start, for tests and benches."""
        self._making_room: asyncio.TimerHandle | None = None

    def admit(self, newcomer: _Guarded, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether `newcomer` may stay open: refused only when the bound is reached and every connection is busy
        answering. Over the bound, room is made a moment later (`ADMISSION_DELAY`, see `make_room`)."""
        if len(self.open) >= self.limits.max_connections and not any(
            _displacement_rank(conn) is not None for conn in self.open
        ):
            self.refused += 1
            logger.warning(
                "refused a connection: %d connections are open, each busy with a request (--max-connections)",
                len(self.open),
            )
            return False
        self.open.add(newcomer)
        if len(self.open) > self.limits.max_connections and self._making_room is None:
            self._making_room = loop.call_later(ADMISSION_DELAY, self.make_room, loop)
        return True

    def make_room(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close connections in the order of `_displacement_rank` until the bound holds again.

        A newcomer is judged only once it has had time to send its request: a real client sends it as soon as it
        has connected, so after `ADMISSION_DELAY` it is answering and out of reach, unless its first segments were
        dropped while the listen queue was full and come again after TCP's retransmission timeout (200 ms and
        more): one that has sent nothing gets `SILENT_GRACE`, unless the connections over the bound reach half the
        backlog (of the descriptors budgeted for them). While a newcomer waits to be judged, no connection that has
        been answered before is closed; this runs again a moment later.
        """
        self._making_room = None
        while len(self.open) > self.limits.max_connections:
            now = time.monotonic()
            crowded = len(self.open) >= self.limits.max_connections + self.limits.backlog // 2
            ranked, young = [], False
            for conn in self.open:
                order = _displacement_rank(conn)
                if order is None:
                    continue
                grace = ADMISSION_DELAY if order[0] == 0 or crowded else SILENT_GRACE
                if order[0] <= 1 and now - order[1] < grace:
                    young = True
                else:
                    ranked.append((order, conn))
            (rank, since), victim = min(ranked, key=lambda entry: entry[0]) if ranked else ((4, now), None)
            if young and rank > 1:  # newcomers still to be judged go before any connection that has been answered
                self._making_room = loop.call_later(ADMISSION_DELAY, self.make_room, loop)
                return
            if victim is None:  # every one is answering: they stay, and new ones are refused until some close
                return
            self.displaced += 1
            logger.warning(DISPLACED[rank], now - since, len(self.open))
            victim.close_now()

    def slow_client(self, conn: _Guarded) -> None:
        self.closed_slow += 1
        logger.info(
            "closed a connection that did not send a complete request within %g s (--header-timeout)",
            self.limits.header_timeout,
        )


class _Guarded(Protocol):
    """What the guard sees of a connection (the class `guarded_protocol` returns)."""

    reading_since: float | None
    idle_since: float | None
    served: bool
    """Whether it has had a response: a client that has completed a request is likely a real one."""
    head_pending: bool
    """Whether it is reading a request whose head (request line and headers) is not complete yet."""
    sent_bytes: bool
    """Whether it has sent any of the request it is reading."""

    def close_now(self) -> None: ...


DISPLACED = (
    "closed a connection that had sent part of a request head and no more for %.1f s to make room for a new one: "
    "%d connections are open (--max-connections)",
    "closed a connection that had sent nothing in %.1f s to make room for a new one: %d connections are open "
    "(--max-connections)",
    "closed a connection idle for %.1f s to make room for a new one: %d connections are open (--max-connections)",
    "closed a connection that had not completed a request in %.1f s to make room for a new one: %d connections "
    "are open (--max-connections)",
)
"""The log line of each rank of `_displacement_rank` (each its own cause, so each has its line)."""


def _displacement_rank(conn: _Guarded) -> tuple[int, float] | None:
    """Which connection makes room at the bound: the smallest (rank, since), None for one busy answering.

    First a connection that has sent part of the head of its first request and stopped: that is what a slow
    client does, while a real one sends its head in one go as soon as it has connected. Then one that has sent
    nothing yet (an attacker's, or a real client slow to start), then an idle one, then one sending a body or a
    later request (it got its head through, or has been served before: most likely a real client). Oldest
    first within each.
    """
    if conn.reading_since is not None and conn.head_pending and not conn.served:
        return (0 if conn.sent_bytes else 1, conn.reading_since)
    if conn.idle_since is not None:
        return (2, conn.idle_since)
    if conn.reading_since is not None:
        return (3, conn.reading_since)
    return None


def guarded_protocol(guard: ConnectionGuard) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol class, keeping to `guard`'s limits; pass it as ``uvicorn.Config(http=...)``.

    A connection is in one of three phases: *reading* a request (from the connection, or from the first byte of a
    request on a kept-alive one, until its head and body are in), *answering* it (the app runs; an SSE stream can
    last long and is bounded by the app, not here), or *idle* between requests (uvicorn's keep-alive timer). The
    header timer runs only while reading, and a reading or idle connection can be displaced at the bound.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        connection_guard = guard

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.reading_since: float | None = None
            """When the connection began to send the request it is sending, if it is."""
            self.idle_since: float | None = None
            """When a kept-alive connection began to wait for its next request, if it is waiting."""
            self.served = False
            self.head_pending = True
            self.sent_bytes = False
            self._bytes_since_response = False
            self._header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            if not guard.admit(self, self.loop):
                transport.write(REFUSAL)  # type: ignore[attr-defined]
                transport.close()
                return
            self._refresh()

        def connection_lost(self, exc: Exception | None) -> None:
            guard.open.discard(self)
            self._stop_header_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            self._bytes_since_response = True
            self._refresh()  # the timer of a kept-alive connection's next request starts at its first byte
            super().data_received(data)
            self._refresh()

        def on_response_complete(self) -> None:
            self._bytes_since_response = False
            self.served = True
            super().on_response_complete()
            self._refresh()

        def close_now(self) -> None:
            guard.open.discard(self)  # at once: a connection being closed is no longer counted, nor displaced again
            self._stop_header_timer()
            if not self.transport.is_closing():
                self.transport.close()

        def _refresh(self) -> None:
            """Work out the phase after an event, and start or stop the header timer."""
            if self.transport is None or self.transport.is_closing():
                return
            cycle = self.cycle
            answering = cycle is not None and not cycle.response_complete and not cycle.more_body
            between = cycle is None or cycle.response_complete
            reading = not answering and (not between or cycle is None or self._bytes_since_response)
            self.head_pending = reading and between
            self.sent_bytes = self._bytes_since_response
            if reading and self.reading_since is None:
                self.reading_since = time.monotonic()
                self._header_timer = self.loop.call_later(guard.limits.header_timeout, self._too_slow)
            elif not reading:
                self._stop_header_timer()
            if between and not reading:
                self.idle_since = self.idle_since or time.monotonic()
            else:
                self.idle_since = None

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            self.reading_since = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self.reading_since is not None and not self.transport.is_closing():
                guard.slow_client(self)
                self.close_now()

    return GuardedH11Protocol


def install_log_limits(interval: float = 60.0) -> None:
    """One line per cause per `interval` on the loggers a flood of connections writes to: asyncio's (failed
    accepts, ``EMFILE``), uvicorn's (invalid requests), this module's and the session cap's. Once per process."""
    for name in ("asyncio", "uvicorn.error", __name__, "openai_checkpoints_mcp.transport.sessions"):
        target = logging.getLogger(name)
        if not any(isinstance(existing, OncePerInterval) for existing in target.filters):
            target.addFilter(OncePerInterval(interval))
