"""The stdio transport: a thin layer of our own between the process's stdin and stdout and the SDK's server.

The SDK's ``stdio_server`` drops every line that does not validate as a JSON-RPC message without answering it, so a
client whose request is malformed (no method, ``"jsonrpc": "1.0"``, a float id, deep arguments, a cut line) waits for
its own timeout. Here:

* stdin is read in chunks by a worker thread and cut into lines of at most `jsonrpc.MAX_LINE_BYTES` (a longer line is
  answered as soon as it passes the bound, and the rest of it, up to its newline, is read and dropped unkept);
* each line is checked (`jsonrpc.check_line`, in a worker thread when it is long): a valid message goes to the SDK's
  server through its memory streams, a malformed one is answered with its JSON-RPC error, a malformed response is
  dropped;
* one writer task puts every message on stdout, one JSON object per line: the server's replies and notifications and
  our refusals, so that lines never interleave; serialising happens in the worker thread too;
* while serving, fd 0 reads the null device and fd 1 writes to stderr, the wire being on private duplicates: a stray
  ``print()`` or a child process can neither corrupt the protocol stream nor consume its input. Both are restored on
  exit.

Refusals are logged on stderr, one line per kind a minute at most (a client sending only garbage cannot flood the
log), and never with the line's content.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Final

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from mcp.types import ErrorData, JSONRPCError

from .jsonrpc import CHECK_IN_THREAD, Drop, Forward, LineSplitter, Overlong, Refuse, Verdict, check_line, check_overlong
from .logs import OncePerInterval

logger = logging.getLogger(__name__)

READ_CHUNK: Final = 64 * 1024
"""Bytes asked of stdin per read."""

LOG_INTERVAL: Final = 60.0
"""Seconds between two log lines about the same kind of malformed line."""
logger.addFilter(OncePerInterval(LOG_INTERVAL))  # a client looping on a bad line must not flood the log

ToServer = MemoryObjectSendStream[SessionMessage | Exception]
FromClient = MemoryObjectReceiveStream[SessionMessage | Exception]
ToWire = MemoryObjectSendStream[SessionMessage]
RunSession = Callable[[FromClient, ToWire], Awaitable[None]]
"""Serves one session over the two streams until the first ends (the SDK's ``Server.run``, bound to its options)."""


async def serve_stdio(run_session: RunSession) -> None:
    """Serve `run_session` over this process's stdin and stdout until the client closes stdin."""
    with _claimed_wire() as (wire_in, wire_out):
        await serve_over(wire_in, wire_out, run_session)


async def serve_over(wire_in: int, wire_out: int, run_session: RunSession) -> None:
    """Serve `run_session` reading JSON-RPC lines from the descriptor `wire_in` and writing them to `wire_out`."""
    to_server, from_client = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    to_wire, from_server = anyio.create_memory_object_stream[SessionMessage](0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_write_wire, wire_out, from_server)
        reading = anyio.CancelScope()
        tasks.start_soon(_read_wire, wire_in, to_server, to_wire.clone(), reading)
        await run_session(from_client, to_wire)
        reading.cancel()  # the session ended first (not at end of input): stop reading; the writer drains


async def _read_wire(wire_in: int, to_server: ToServer, to_wire: ToWire, scope: anyio.CancelScope) -> None:
    splitter = LineSplitter()
    with scope:
        async with to_server, to_wire:
            while True:
                try:
                    chunk = await anyio.to_thread.run_sync(os.read, wire_in, READ_CHUNK, abandon_on_cancel=True)
                except OSError as exc:
                    logger.warning("stdin could not be read (%s): ending the session", exc.strerror or exc)
                    chunk = b""
                for piece in splitter.feed(chunk) if chunk else splitter.end():
                    verdict = await _check(piece)
                    if isinstance(verdict, Forward):
                        await to_server.send(SessionMessage(verdict.message))
                    elif isinstance(verdict, Refuse):
                        _log_refusal(verdict)
                        error = ErrorData(code=verdict.code, message=verdict.message)
                        await to_wire.send(SessionMessage(JSONRPCError(jsonrpc="2.0", id=verdict.id, error=error)))
                    else:
                        _log_refusal(verdict)
                if not chunk:
                    return


async def _check(piece: bytes | Overlong) -> Verdict:
    if isinstance(piece, Overlong):
        return check_overlong(piece.prefix)
    if len(piece) > CHECK_IN_THREAD:
        return await anyio.to_thread.run_sync(check_line, piece)
    return check_line(piece)


async def _write_wire(wire_out: int, from_server: MemoryObjectReceiveStream[SessionMessage]) -> None:
    """Write each message as one line. Once stdout is closed (the client went away) the rest is drained unwritten,
    so that the server never blocks on a reply nobody reads."""
    closed = False
    async with from_server:
        async for session_message in from_server:
            if closed:
                continue
            try:
                await anyio.to_thread.run_sync(_write_message, wire_out, session_message)
            except OSError as exc:
                logger.info("stdout is closed (%s): replies are no longer written", exc.strerror or exc)
                closed = True


def _write_message(wire_out: int, session_message: SessionMessage) -> None:
    data = memoryview((session_message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n").encode())
    while data:
        data = data[os.write(wire_out, data) :]


@contextmanager
def _claimed_wire() -> Iterator[tuple[int, int]]:
    """Private duplicates of fd 0 and 1 for the wire, with fd 0 on the null device and fd 1 on stderr meanwhile.

    If the descriptors cannot be duplicated or diverted, the wire is served on fd 0 and 1 themselves. The duplicates
    are never closed: a worker thread may still be blocked on one when the session ends, and a closed descriptor
    could be reused under it."""
    sys.stdout.flush()
    try:
        wire_in, wire_out = os.dup(0), os.dup(1)
    except OSError:
        yield 0, 1
        return
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            os.dup2(null, 0)
        finally:
            os.close(null)
        os.dup2(2, 1)
    except OSError:
        os.dup2(wire_in, 0)
        os.dup2(wire_out, 1)
        os.close(wire_in)
        os.close(wire_out)
        wire_in, wire_out = 0, 1
    try:
        yield wire_in, wire_out
    finally:
        if (wire_in, wire_out) != (0, 1):
            sys.stdout.flush()
            os.dup2(wire_in, 0)
            os.dup2(wire_out, 1)


def _log_refusal(verdict: Refuse | Drop) -> None:
    """Log a refused or dropped line (never its content): one template per kind, so that the logger's
    `OncePerInterval` lets through the first of each kind and then one a `LOG_INTERVAL`, saying how many more."""
    if isinstance(verdict, Drop):
        if verdict.reason != "a blank line":
            logger.warning("dropped " + verdict.reason.replace("%", "%%") + " from the client")
        return
    logger.warning(f"answered a malformed message with error {verdict.code}: %s", verdict.message)
