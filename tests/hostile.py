"""A hostile upstream for the fault matrix: a raw asyncio HTTP/1.1 server on 127.0.0.1, in a thread of its own,
that answers from the fake API (called in process, as an ASGI app) unless a scripted `Misbehaviour` claims the
request; then it answers with anything from a status to a reset mid-body, a trickle or silence.

One server per test module serves every case: each case is mounted under a path prefix of its own (``/c7/v1/...``)
and records every request that reaches it, so a test can count attempts. A raw socket server, not uvicorn, because
the transport faults (a reset after half the body, a ``Content-Length`` that lies, a body sent a byte at a time)
need control of the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from starlette.types import ASGIApp, Message

Kind = Literal["respond", "mutate", "ignore_cursor", "reset_mid_body", "close", "silent", "trickle", "declare_huge"]

HOLD_SECONDS = 10.0
"""The longest a silent or trickling answer holds a connection (the client gives up long before)."""


@dataclass
class Misbehaviour:
    """One scripted answer.

    * ``respond``: `status`, `headers` and `body` as given (a correct ``Content-Length`` unless `headers` has one).
    * ``mutate``: the fake's own answer with `transform` applied to its decoded JSON body (or, with `raw`, its
      bytes).
    * ``ignore_cursor``: the fake's answer to the request without its ``after``: the first page again.
    * ``reset_mid_body``: the fake's status and headers, half its body, then a TCP reset.
    * ``close``: a reset before any byte of an answer.
    * ``silent``: no answer at all; the connection is held until the client closes it.
    * ``trickle``: the fake's answer, one byte every `interval` seconds.
    * ``declare_huge``: ``Content-Length: 2000000000``, 64 KB of the body, then nothing more.
    """

    kind: Kind = "respond"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    transform: Callable[[Any], Any] | None = None
    raw: Callable[[bytes], bytes] | None = None
    interval: float = 0.05


@dataclass
class Seen:
    method: str
    target: str
    """Path (within the case, e.g. ``/v1/fine_tuning/jobs``) and query, as sent."""
    headers: dict[str, str]


@dataclass
class Case:
    """The upstream of one test: the fake app, and the misbehaviours for the requests `aims_at` selects.

    `aims_at` picks the request the faults are aimed at; None: the first request of the case. Every later request
    for the same target (a retry) takes the next misbehaviour, until they run out; other requests reach the fake.
    """

    app: ASGIApp
    script: list[Misbehaviour] = field(default_factory=list)
    aims_at: Callable[[str], bool] | None = None
    requests: list[Seen] = field(default_factory=list)
    target: str | None = None

    def attempts(self) -> int:
        """Requests for the aimed-at target (the first one and its retries)."""
        return sum(1 for seen in self.requests if seen.target == self.target)

    def claim(self, target: str) -> Misbehaviour | None:
        if self.target is None:
            if self.aims_at is not None and not self.aims_at(target):
                return None
            self.target = target
        if target != self.target or not self.script:
            return None
        return self.script.pop(0)


class HostileServer:
    """The server: `case()` mounts a case and yields its base URL (ending in ``/v1``)."""

    def __init__(self) -> None:
        self.cases: dict[str, Case] = {}
        self._names = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.root = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._run, daemon=True, name="hostile-upstream")
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()

    def start(self) -> HostileServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._connection, sock=self._sock))
        self._ready.set()
        self._loop.run_forever()

    @contextmanager
    def case(self, case: Case, name: str | None = None) -> Iterator[str]:
        """Mount `case` under `name` (a fresh one by default; a fixed one lets servers made for one base URL be
        reused from case to case, one case at a time)."""
        name = name or f"c{next(self._names)}"
        assert name not in self.cases, f"{name} is mounted already"
        self.cases[name] = case
        try:
            yield f"{self.root}/{name}/v1"
        finally:
            del self.cases[name]

    # --- one connection: requests until the client closes it ---------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with suppress(Exception):
                writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, raw_target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        prefix, _, rest = raw_target[1:].partition("/")
        case = self.cases.get(prefix)
        if case is None:
            writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            return True
        target = "/" + rest
        case.requests.append(Seen(method, target, headers))
        misbehaviour = case.claim(target)
        if misbehaviour is None:
            status, answer_headers, answer = await _ask(case.app, method, target, headers, body)
            await _send(writer, status, answer_headers, answer)
            return True
        return await self._misbehave(misbehaviour, case, method, target, headers, body, reader, writer)

    async def _misbehave(
        self,
        bad: Misbehaviour,
        case: Case,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if bad.kind == "respond":
            await _send(writer, bad.status, {"content-type": "application/json", **bad.headers}, bad.body)
            return True
        if bad.kind == "close":
            _reset(writer)
            return False
        if bad.kind == "silent":
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(reader.read(), HOLD_SECONDS)
            return False
        if bad.kind == "ignore_cursor":
            path, _, query = target.partition("?")
            kept = "&".join(part for part in query.split("&") if not part.startswith("after="))
            target = f"{path}?{kept}" if kept else path
        status, answer_headers, answer = await _ask(case.app, method, target, headers, body)
        if bad.kind in ("mutate", "ignore_cursor"):
            if bad.raw is not None:
                answer = bad.raw(answer)
            elif bad.transform is not None:
                answer = json.dumps(bad.transform(json.loads(answer))).encode()
            await _send(writer, status, {**answer_headers, **bad.headers}, answer)
            return True
        if bad.kind == "reset_mid_body":
            writer.write(_head(status, answer_headers, len(answer)) + answer[: len(answer) // 2])
            await writer.drain()
            _reset(writer)
            return False
        if bad.kind == "declare_huge":
            writer.write(_head(status, answer_headers, 2_000_000_000) + (answer * 1000)[:65536])
            await writer.drain()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(reader.read(), HOLD_SECONDS)
            return False
        # trickle
        wire = _head(status, answer_headers, len(answer)) + answer
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + HOLD_SECONDS
        for index in range(len(wire)):
            if loop.time() > stop_at or writer.is_closing():
                break
            writer.write(wire[index : index + 1])
            await writer.drain()
            await asyncio.sleep(bad.interval)
        return False


def _head(status: int, headers: dict[str, str], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} X"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"]
    if "content-length" not in {name.lower() for name in headers}:
        lines.append(f"content-length: {length}")
    else:
        lines.append(f"content-length: {headers.get('content-length', headers.get('Content-Length'))}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes) -> None:
    writer.write(_head(status, headers, len(body)) + body)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), not an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _ask(
    app: ASGIApp, method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """The fake's answer to the request: status, headers (without Content-Length) and body."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 80),
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 500
    answer_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() != b"content-length":
                    answer_headers[name.decode("latin-1")] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, answer_headers, b"".join(chunks)


def dead_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then closed): connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
