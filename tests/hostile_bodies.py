"""A hostile upstream for the bound tests (the fault matrix has its own, hostile.py): a raw-socket HTTP/1.1
server on 127.0.0.1 that answers what no honest API sends (an endless body, a Content-Length it never delivers, a
gzip bomb, a result file of a million columns), and counts the bytes it managed to write, so a test can tell that
the client stopped reading at its bound.

Raw sockets rather than an ASGI app: a server framework would refuse to send a body shorter than its Content-Length,
and keeps accepting the writes of an endless body after the client has gone; a socket says when the peer is gone.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .helpers import checkpoint, job

Body = Callable[[], Iterable[bytes]]
"""A body, as the chunks to write."""


@dataclass
class Answer:
    """One canned answer: status, headers, and the body's chunks (written as they come)."""

    body: Body
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    chunked: bool = False
    """Send the body with ``Transfer-Encoding: chunked`` (no length)."""


@dataclass
class Hostile:
    """The routes (request path without the query -> answer) and what was written for each path."""

    routes: dict[str, Answer]
    written: dict[str, int] = field(default_factory=dict)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def served(self, path: str) -> int:
        """Body bytes the server got into the socket for `path` (all requests together)."""
        with self.lock:
            return self.written.get("/v1" + path, 0)


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


def result_file_routes(job_id: str, file_id: str, content: Answer) -> dict[str, Answer]:
    """The three paths training_metrics reads for `job_id`: the job (listing `file_id`), its checkpoints, the file."""
    return {
        f"/v1/fine_tuning/jobs/{job_id}": job_with_file(job_id, file_id),
        f"/v1/fine_tuning/jobs/{job_id}/checkpoints": checkpoints_of(job_id),
        f"/v1/files/{file_id}/content": content,
    }


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            try:
                request_line = self.rfile.readline(65537)
            except OSError:
                return
            if not request_line:
                return
            headers: dict[str, str] = {}
            while True:
                line = self.rfile.readline(65537)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if int(headers.get("content-length") or 0):
                self.rfile.read(int(headers["content-length"]))
            path = request_line.split()[1].decode().partition("?")[0]
            hostile = self.server.hostile
            answer = hostile.routes.get(path) or json_answer({"error": {"message": f"no route {path}"}})
            if path not in hostile.routes:
                answer.status = 404
            if not self._answer(path, answer):
                return

    def _answer(self, path: str, answer: Answer) -> bool:
        """Write `answer`; False once the peer has gone (or the body had no length: the connection ends)."""
        head = [f"HTTP/1.1 {answer.status} X"]
        head += [f"{name}: {value}" for name, value in answer.headers.items()]
        if answer.chunked:
            head.append("transfer-encoding: chunked")
        sent = 0
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
            for chunk in answer.body():
                if not chunk:
                    continue
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if answer.chunked else chunk)
                sent += len(chunk)
                with self.server.hostile.lock:
                    written = self.server.hostile.written
                    written[path] = written.get(path, 0) + len(chunk)
            if answer.chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client stopped reading and closed the connection
            return False
        declared = answer.headers.get("content-length")
        return answer.chunked or (declared is not None and int(declared) <= sent)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    hostile: Hostile


@contextmanager
def hostile_server(routes: dict[str, Answer]) -> Iterator[Hostile]:
    """Serve `routes` on 127.0.0.1 (in threads) for the duration of the context; ``base_url`` ends in ``/v1``."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hostile = Hostile(routes)
    server.hostile = hostile
    hostile.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield hostile
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
