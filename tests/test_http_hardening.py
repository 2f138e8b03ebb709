"""What no HTTP client can do to the server (hardening issue, items 5 and 6), over real uvicorn on 127.0.0.1: slow
clients are closed after the header timeout and displaced at the connection bound while real MCP clients get their
answers; at a low descriptor limit the server stays responsive and its log says each cause once; at the session cap
the idlest session is evicted, the new client works and the evicted one gets 404."""

from __future__ import annotations

import logging
import resource
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace

import anyio
import httpx2
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.transport.connections import REFUSAL, ConnectionGuard, default_limits
from openai_checkpoints_mcp.transport.http import HttpOptions, create_app, uvicorn_config
from openai_checkpoints_mcp.transport.logs import MAX_CAUSES, OncePerInterval

from .helpers import DEMO_JOB, INITIALIZE, MCP_HEADERS, TOKEN, clean_env, mcp_client

pytestmark = pytest.mark.anyio

SLOW_HEAD = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@contextmanager
def guarded_server(app: object, **options: object) -> Iterator[tuple[str, ConnectionGuard]]:
    """`app` served as ``serve_http`` serves it (the guarded h11 protocol, its timeouts and bound) on a free port in
    a background thread; yields its root URL and the guard, whose counts say what it closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn_config(app, HttpOptions(port=port, **options), log_level="WARNING")  # type: ignore[arg-type]
    config.access_log = False
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}", config.http.connection_guard
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def demo_app(**options: object) -> object:
    return create_app(Settings.from_env({}, demo=True), HttpOptions(auth_token=TOKEN, **options))  # type: ignore[arg-type]


def open_slow_sockets(root: str, count: int, head: bytes = SLOW_HEAD) -> list[socket.socket]:
    host, port = root.removeprefix("http://").split(":")
    socks = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(head)
        socks.append(sock)
    return socks


def is_closed(sock: socket.socket) -> bool:
    """Whether the server has closed `sock` (end of stream or reset); anything it wrote first is read and dropped."""
    try:
        while True:
            data = sock.recv(65536, socket.MSG_DONTWAIT)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def trickle_until_closed(socks: list[socket.socket], within: float) -> dict[int, float]:
    """Send one header line to each socket every 0.2 s until the server closes it or `within` seconds pass; the
    seconds after which each one was closed, by index (sockets still open are missing)."""
    start = time.monotonic()
    closed: dict[int, float] = {}
    while len(closed) < len(socks) and time.monotonic() - start < within:
        for n, sock in enumerate(socks):
            if n in closed:
                continue
            if is_closed(sock):
                closed[n] = time.monotonic() - start
                continue
            try:
                sock.send(b"X-Slow: 1\r\n", socket.MSG_DONTWAIT)
            except OSError:
                closed[n] = time.monotonic() - start
        time.sleep(0.2)
    return closed


async def test_slow_headers_are_closed_after_the_header_timeout_while_clients_get_answers():
    """Item 5: sockets trickling their headers were held for as long as they liked."""
    with guarded_server(demo_app(), header_timeout=1.5) as (root, guard):
        socks = open_slow_sockets(root, 30)
        silent = open_slow_sockets(root, 5, head=b"")  # connected, nothing sent
        try:
            closing = anyio.to_thread.run_sync(trickle_until_closed, socks + silent, 10.0)
            async with anyio.create_task_group() as tg:
                result: dict[str, object] = {}

                async def watch() -> None:
                    result["closed"] = await closing

                tg.start_soon(watch)
                async with mcp_client(root, "legacy") as client:
                    answers = [await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB}) for _ in range(5)]
        finally:
            for sock in socks + silent:
                sock.close()
    closed = result["closed"]
    assert isinstance(closed, dict)
    assert sorted(closed) == list(range(35)), "some slow sockets were never closed"
    assert max(closed.values()) < 1.5 + 1.5  # the header timeout, plus the polling's and the loop's slack
    assert guard.closed_slow >= 35
    assert all(a.structured_content["best"]["step_number"] == 240 for a in answers)


def test_a_kept_alive_connection_has_the_idle_timeout_and_its_next_request_the_header_timeout():
    with guarded_server(demo_app(), header_timeout=1.0, idle_timeout=1.0) as (root, _):
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        idle, trickling = open_slow_sockets(root, 2, head=request)
        for sock in (idle, trickling):
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        trickling.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next request's head starts, then trickles
        start = time.monotonic()
        closed = trickle_until_closed([trickling], 5.0)  # sends to the idle one too would make it not idle
        idle_closed = 0.0
        while not is_closed(idle) and time.monotonic() - start < 5:
            time.sleep(0.05)
        idle_closed = time.monotonic() - start
        idle.close()
        trickling.close()
    assert closed and closed[0] < 1.0 + 1.0  # not kept open by the trickle
    assert idle_closed < 1.0 + 1.0  # uvicorn's own default would have been 5 s


async def test_at_the_connection_bound_slow_sockets_make_room_for_real_clients():
    """Item 5: the slots taken by slow sockets locked every other client out."""
    with guarded_server(demo_app(), header_timeout=60, max_connections=8) as (root, guard):
        socks = open_slow_sockets(root, 40)  # five times the bound, each held for the full minute if not displaced
        try:
            async with mcp_client(root, "legacy") as client:
                answers = [await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB}) for _ in range(5)]
            async with httpx2.AsyncClient() as http:
                health = [(await http.get(f"{root}/healthz")).status_code for _ in range(5)]
            still_open = sum(not is_closed(sock) for sock in socks)
        finally:
            for sock in socks:
                sock.close()
    assert all(a.structured_content["best"]["step_number"] == 240 for a in answers)
    assert health == [200] * 5
    assert guard.displaced >= 32 and guard.refused == 0
    assert still_open <= 8


async def test_when_every_connection_is_busy_a_new_one_is_refused_with_503_at_once():
    release = threading.Event()

    async def busy(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await anyio.to_thread.run_sync(release.wait, 30)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    with guarded_server(busy, max_connections=2) as (root, guard):
        socks = open_slow_sockets(root, 2, head=b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # both answering
        time.sleep(0.3)
        try:
            started = time.monotonic()
            third = socket.create_connection(("127.0.0.1", int(root.rsplit(":", 1)[1])), timeout=5)
            answer = b""
            while chunk := third.recv(65536):  # nothing sent: the refusal is written as soon as it connects
                answer += chunk
            took = time.monotonic() - started
            third.close()
        finally:
            release.set()
            for sock in socks:
                sock.close()
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and b"retry-after: 1\r\n" in answer
    assert answer.endswith(b"too many open connections: retry in a second\r\n\r\n")
    assert took < 2 and guard.refused == 1


def test_the_503_refusal_is_a_complete_http_answer():
    """Its Content-Length said 49 for a 48-byte body: a client read a 503 cut short, an error, not the refusal."""
    import h11

    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "127.0.0.1")]))
    client.receive_data(REFUSAL)
    client.receive_data(b"")  # the server closes at once
    events = []
    while not isinstance(event := client.next_event(), h11.ConnectionClosed):
        assert event is not h11.NEED_DATA, "the answer ended before its declared length"
        events.append(event)
    assert isinstance(events[0], h11.Response) and events[0].status_code == 503
    assert (
        b"".join(e.data for e in events if isinstance(e, h11.Data))
        == b"too many open connections: retry in a second\r\n\r\n"
    )
    assert isinstance(events[-1], h11.EndOfMessage)


def test_the_default_bound_fits_the_descriptor_limit():
    for fd_limit in (256, 1024, 20_000):
        limits = default_limits(fd_limit=fd_limit)
        assert limits.max_connections + 3 * limits.backlog <= fd_limit - 64
    assert default_limits(fd_limit=256).max_connections == 120
    assert default_limits(fd_limit=1 << 20).max_connections == 1024


def _accept_error(message: str) -> logging.LogRecord:
    """A record as asyncio's accept loop logs one at the descriptor limit."""
    record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)
    try:
        raise OSError(24, "Too many open files")
    except OSError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    return record


def test_a_flood_of_records_is_one_line_per_cause_without_a_traceback():
    now = [0.0]
    limit = OncePerInterval(60, clock=lambda: now[0])
    shown = []
    for n in range(1000):
        record = _accept_error(f"socket.accept() out of system resource\nsocket: <fd={n}>")
        if limit.filter(record):
            shown.append(record)
        now[0] += 0.01
    other = logging.LogRecord(
        "uvicorn.error", logging.WARNING, __file__, 1, "Invalid HTTP request received.", None, None
    )
    assert limit.filter(other)  # another cause has its own line
    now[0] += 60
    again = _accept_error("socket.accept() out of system resource")
    assert limit.filter(again)
    assert len(shown) == 1 and shown[0].exc_info is None
    assert shown[0].getMessage() == "socket.accept() out of system resource: [Errno 24] Too many open files"
    assert again.getMessage() == (
        "socket.accept() out of system resource: [Errno 24] Too many open files "
        "(999 more like this since the last one shown were not logged)"
    )


def test_endless_distinct_causes_keep_the_filter_bounded():
    """The remembered causes were bounded, but the counts of held records were not: each distinct message sent twice
    within the interval left a count behind for ever."""
    now = [0.0]
    limit = OncePerInterval(60, clock=lambda: now[0])
    for n in range(5 * MAX_CAUSES):
        for _ in range(2):
            limit.filter(logging.LogRecord("x", logging.WARNING, __file__, 1, f"cause {n}", None, None))
    assert len(limit._held) <= MAX_CAUSES + 1 and len(limit._last) <= MAX_CAUSES + 1


def _serve_with_few_descriptors(port: int, fd_limit: int) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import resource, sys; from openai_checkpoints_mcp.cli import main; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({fd_limit}, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
        "main(sys.argv[1:])",
        "--demo",
        "--transport",
        "streamable-http",
        "--port",
        str(port),
        "--header-timeout",
        "2",
    ]


async def test_with_few_descriptors_300_slow_sockets_neither_lock_clients_out_nor_flood_the_log():
    """Item 5: at 256 descriptors, 300 slow sockets left clients without an answer and wrote 139,131 tracebacks."""
    from .test_http_transport import _free_port, _process

    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 400  # this process holds the 300 sockets
    with _process(_serve_with_few_descriptors(port, 128), clean_env(MCP_AUTH_TOKEN=TOKEN), root) as output:
        socks: list[socket.socket] = []
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))  # never waits: most wait in the listen queue
            socks.append(sock)
        try:
            stop = threading.Event()

            def trickle() -> None:
                while not stop.wait(0.2):
                    for sock in socks:
                        with suppress(OSError):
                            sock.send(b"X-Slow: 1\r\n")

            trickler = threading.Thread(target=trickle, daemon=True)
            trickler.start()
            with anyio.fail_after(60):
                async with mcp_client(root, "legacy") as client:
                    answers = [await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB}) for _ in range(5)]
            stop.set()
            trickler.join()
        finally:
            for sock in socks:
                sock.close()
    log = output[0]
    assert all(a.structured_content["best"]["step_number"] == 240 for a in answers)
    assert "Traceback" not in log
    assert log.count("Too many open files") <= 2
    assert log.count("to make room for a new one") <= 3  # one line per cause (three ranks) per minute
    assert len(log) < 20_000, log[-3000:]


def _initialize(http: httpx2.Client, root: str) -> str:
    response = http.post(f"{root}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


def _ping(http: httpx2.Client, root: str, session: str) -> int:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}", "Mcp-Session-Id": session}
    headers["MCP-Protocol-Version"] = "2025-11-25"
    return http.post(f"{root}/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers=headers).status_code


async def test_at_the_session_cap_the_idlest_session_is_evicted_for_a_new_client():
    """Item 6: 10,000 abandoned initialize calls took 466 MB, and then every new client got 503 for 30 minutes."""
    with guarded_server(demo_app(max_sessions=3)) as (root, _):

        def abandon_sessions() -> tuple[list[str], list[int]]:
            with httpx2.Client(timeout=10) as http:
                sessions = [_initialize(http, root) for _ in range(3)]
                before = [_ping(http, root, session) for session in sessions[1:]]  # the first is now the idlest
            return sessions, before

        sessions, before = await anyio.to_thread.run_sync(abandon_sessions)
        async with mcp_client(root, "legacy") as client:  # a fourth session: the first one makes room
            answer = await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB})
            with httpx2.Client(timeout=10) as http:
                after = [await anyio.to_thread.run_sync(_ping, http, root, session) for session in sessions]
    assert before == [200, 200]
    assert answer.structured_content["best"]["step_number"] == 240
    assert after == [404, 200, 200]  # the evicted session's id is unknown now: its client must initialize again


def test_session_and_connection_flags_reach_the_options(capsys):
    from openai_checkpoints_mcp.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--transport", "streamable-http", "--header-timeout", "0"])
    assert exit_.value.code == 2 and "--header-timeout: must be a number above 0" in capsys.readouterr().err
    options = HttpOptions.from_env({"OPENAI_CHECKPOINTS_MCP_MAX_SESSIONS": "7"}, header_timeout=3, max_connections=9)
    assert (options.max_sessions, options.header_timeout, options.max_connections) == (7, 3, 9)
    assert options.connection_limits().max_connections == 9
    assert replace(options, max_connections=None).connection_limits().max_connections >= 1


def test_the_guard_is_uvicorns_h11_protocol_and_a_given_bound_is_kept():
    config = uvicorn_config(demo_app(), HttpOptions())
    assert config.http.__mro__[1].__name__ == "H11Protocol"  # what uvicorn's auto picks without httptools
    limits = default_limits(max_connections=100, fd_limit=256)
    assert (limits.max_connections, limits.backlog) == (100, 30)
