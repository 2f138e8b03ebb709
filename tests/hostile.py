"""A hostile upstream for the tests and benches: a raw asyncio HTTP/1.1 server on 127.0.0.1, in a thread of its own
(`HostileServer`), serving cases of two kinds, each mounted under a path prefix of its own (``/c7/v1/...``):

* a `Case` (the fault matrix): the fake API (called in process, as an ASGI app) answers, unless a scripted
  `Misbehaviour` claims the request; then anything from a status to a reset mid-body, a trickle or silence;
* a `CannedCase` (the bound tests, bench/hostile.py): a routes table (`Routes`, request path -> `Answer`) of what no
  honest API sends (an endless body, a ``Content-Length`` it never delivers, a gzip bomb, a result file of a million
  columns), streamed from an iterable of chunks, counting per path the body bytes the server got into the socket,
  so a test can tell that the client stopped reading at its bound. `canned_server` serves one such table on a
  server of its own.

Every case records every request that reaches it, so a test can count attempts. A raw socket server, not uvicorn,
because the faults (a reset after half the body, a ``Content-Length`` that lies, a body sent a byte at a time, an
endless body after the client has gone) need control of the bytes on the wire: a server framework refuses to send
a body shorter than its ``Content-Length`` and keeps accepting the writes of an endless body after the peer is gone.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import struct
import threading
import zlib
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from starlette.types import ASGIApp, Message

from .helpers import checkpoint, job

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


Body = Callable[[], Iterable[bytes] | AsyncIterable[bytes]]
"""A body, as the chunks to write (made afresh for each request). The chunks are taken on the server's event loop:
a body that waits between chunks must be an async iterable (``await asyncio.sleep``), not a blocking one."""


@dataclass
class Answer:
    """One canned answer: status, headers as given, and the body's chunks (written as they come).

    Without ``chunked`` and a ``content-length`` header the body ends the connection; with a ``content-length``
    larger than the body, the connection is closed after what there is.
    """

    body: Body
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    chunked: bool = False
    """Send the body with ``Transfer-Encoding: chunked`` (no length)."""


Routes = dict[str, Answer]
"""The routes table of a `CannedCase`: request path within the case (``/v1/...``, without the query) -> answer."""


@dataclass
class CannedCase:
    """The upstream of one test: canned answers by path (a 404 for any other), and what was written for each path.

    `base_url` (ending in ``/v1``) is set by `canned_server`; with `HostileServer.case`, use the URL it yields.
    """

    routes: Routes
    requests: list[Seen] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    """Body bytes got into the socket, by path (all requests together)."""
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def served(self, path: str) -> int:
        """Body bytes the server got into the socket for `path` (without the ``/v1``; all requests together)."""
        with self.lock:
            return self.written.get("/v1" + path, 0)

    def count(self, path: str, size: int) -> None:
        with self.lock:
            self.written[path] = self.written.get(path, 0) + size


def json_answer(payload: Any) -> Answer:
    body = json.dumps(payload).encode()
    return Answer(lambda: [body], {"content-type": "application/json", "content-length": str(len(body))})


def endless(chunk: bytes, *, start: bytes = b"") -> Body:
    """A body that never ends: `start`, then `chunk` for ever."""

    def body() -> Iterator[bytes]:
        yield start
        while True:
            yield chunk

    return body


def gzip_bomb(expanded: int, *, start: bytes = b"", end: bytes = b"") -> bytes:
    """A gzip body of `start`, zeros and `end`, about `expanded` bytes once decompressed (a thousandth of that sent)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [compressor.compress(start)]
    block = b"0" * (1 << 20)
    left = expanded - len(start)
    while left > 0:
        parts.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(compressor.compress(end))
    parts.append(compressor.flush())
    return b"".join(parts)


def job_with_file(job_id: str, file_id: str) -> Answer:
    return json_answer(job(job_id, result_files=[file_id]))


def checkpoints_of(job_id: str) -> Answer:
    return json_answer(
        {
            "object": "list",
            "data": [checkpoint(job_id, 10, {"train_loss": 0.5, "full_valid_loss": 0.6})],
            "has_more": False,
        }
    )


def result_file_routes(job_id: str, file_id: str, content: Answer) -> Routes:
    """The three paths training_metrics reads for `job_id`: the job (listing `file_id`), its checkpoints, the file."""
    return {
        f"/v1/fine_tuning/jobs/{job_id}": job_with_file(job_id, file_id),
        f"/v1/fine_tuning/jobs/{job_id}/checkpoints": checkpoints_of(job_id),
        f"/v1/files/{file_id}/content": content,
    }


class HostileServer:
    """The server: `case()` mounts a case (a `Case` or a `CannedCase`) and yields its base URL (ending in ``/v1``)."""

    def __init__(self) -> None:
        self.cases: dict[str, Case | CannedCase] = {}
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
        """Stop listening, end every connection still open, and the thread."""
        with suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._connection, sock=self._sock))
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    @contextmanager
    def case(self, case: Case | CannedCase, name: str | None = None) -> Iterator[str]:
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
        except asyncio.CancelledError:  # by stop(): end quietly (re-raised, Python 3.11 logs it as an error)
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
        if isinstance(case, CannedCase):
            return await _answer_canned(case, target.partition("?")[0], writer)
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


async def _answer_canned(case: CannedCase, path: str, writer: asyncio.StreamWriter) -> bool:
    """Write the answer `case` has for `path`, counting its body bytes once drained (the transport then holds at most
    its high-water mark, 64 KiB, not yet in the socket); False once the peer has gone, or when the connection is to
    end (a body without a length, or shorter than its declared one)."""
    answer = case.routes.get(path)
    if answer is None:
        answer = json_answer({"error": {"message": f"no route {path}"}})
        answer.status = 404
    head = [f"HTTP/1.1 {answer.status} X"]
    head += [f"{name}: {value}" for name, value in answer.headers.items()]
    if answer.chunked:
        head.append("transfer-encoding: chunked")
    sent = 0

    async def write(chunk: bytes) -> None:
        nonlocal sent
        if writer.is_closing():
            raise ConnectionResetError("the client has gone")
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if answer.chunked else chunk)
        await writer.drain()
        await asyncio.sleep(0)  # an endless body leaves the other connections their turn
        sent += len(chunk)
        case.count(path, len(chunk))

    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        chunks = answer.body()
        if isinstance(chunks, AsyncIterable):
            async for chunk in chunks:
                if chunk:
                    await write(chunk)
        else:
            for chunk in chunks:
                if chunk:
                    await write(chunk)
        if answer.chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except ConnectionError:  # the client stopped reading and closed the connection
        return False
    declared = answer.headers.get("content-length")
    return answer.chunked or (declared is not None and int(declared) <= sent)


@contextmanager
def canned_server(routes: Routes) -> Iterator[CannedCase]:
    """Serve `routes` on a `HostileServer` of their own for the duration of the context; ``base_url`` ends in
    ``/v1``."""
    server = HostileServer().start()
    case = CannedCase(routes)
    try:
        with server.case(case) as base_url:
            case.base_url = base_url
            yield case
    finally:
        server.stop()


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
