"""Load on the streamable HTTP transport: real MCP clients at once while slow sockets try to hold the server.

What runs: our server in demo mode as a subprocess (``--transport streamable-http`` on a free 127.0.0.1 port, a
bearer token, its descriptor limit lowered to ``--nofile``, 256 by default as in the hardening issue). Against
it, for ``--seconds``:

* ``--clients`` MCP clients (the SDK's streamable HTTP client, one session each, protocol 2025-11-25), spread over
  ``--processes`` client processes, each calling ``best_checkpoint`` and ``list_jobs`` in turn as fast as answers
  come;
* ``--slow`` slow sockets (an attacker without a token): each connects, sends the start of a request head and then
  one header line a second; when the server closes one (its header timeout, or displaced at the connection
  bound) it connects again at the next second, as slowloris does.

Printed: tool calls, throughput, p50/p99/max latency, failed calls, HTTP statuses seen by the clients (non-2xx
separately: the goal is none), how often the server closed a slow socket, the server's log (lines, "Too many open
files", tracebacks) and its resident memory. Then ``--sessions`` abandoned ``initialize`` calls: the memory an idle
session holds, and that the cap evicts instead of refusing (``--max-sessions`` below ``--sessions``).

    python bench/http_load.py [--seconds 60] [--clients 50] [--slow 300] [--nofile 256] [--sessions 2000]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
from _venv import BenchError

from openai_checkpoints_mcp.fake import DEMO_JOB_IDS

TOKEN = "bench-token-6d0c2f8e1b7a4953"
GRACE = 30.0
"""Seconds past the end of the load a client may still be waiting for an answer before it is counted as locked out."""
DEMO_JOB = DEMO_JOB_IDS["support_bot"]
SLOW_HEAD = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}
HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "Authorization": f"Bearer {TOKEN}",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def server(port: int, nofile: int, extra: list[str]) -> Iterator[tuple[subprocess.Popen[bytes], list[str]]]:
    """Our server in demo mode on `port`, its descriptor limit `nofile` (0: unchanged); yields it and a list that
    holds its whole log (stdout and stderr) once it has stopped."""

    def limit() -> None:
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    argv = [sys.executable, "-m", "openai_checkpoints_mcp", "--demo", "--transport", "streamable-http"]
    argv += ["--port", str(port), *extra]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "MCP_AUTH_TOKEN": TOKEN}
    with tempfile.TemporaryDirectory() as tmp:
        env["OPENAI_CHECKPOINTS_MCP_CACHE_DIR"] = tmp
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=limit
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise BenchError(f"the server exited ({process.returncode}): {log_path.read_text()[-2000:]}")
                try:
                    if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError("the server did not answer /healthz within 60 s")
                time.sleep(0.1)
            output: list[str] = []
            yield process, output
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        output.append(log_path.read_text(errors="replace"))


class SlowSockets:
    """`count` sockets that each send a request head one line a second; those the server closed connect again at
    the next second (as slowloris does)."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.closed_by_server = 0
        self.connects = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self, selector: selectors.BaseSelector) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", self.port))  # in progress; the first send waits for it
        selector.register(sock, selectors.EVENT_READ, data={"sent_head": False})
        self.connects += 1

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for _ in range(self.count):
            self._connect(selector)
        next_trickle = time.monotonic()
        lost = 0
        while not self.stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # closed by the server: connected again at the next tick
                    selector.unregister(sock)
                    sock.close()
                    self.closed_by_server += 1
                    lost += 1
            if time.monotonic() >= next_trickle:
                next_trickle += 1.0
                for _ in range(lost):
                    self._connect(selector)
                lost = 0
                for key in list(selector.get_map().values()):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        sock.send(b"X-Slow: 1\r\n" if key.data["sent_head"] else SLOW_HEAD)
                        key.data["sent_head"] = True
                    except OSError:
                        pass  # not connected yet (still in the listen queue), or being closed
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()


async def client_loop(
    root: str,
    until: float,
    latencies: list[float],
    failures: collections.Counter[str],
    statuses: collections.Counter[int],
) -> None:
    """One MCP client calling tools in turn until `until`, in one session; if the session breaks, the failure is
    counted and a new session is opened, as a real client would."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def count(response: httpx2.Response) -> None:
        statuses[response.status_code] += 1

    calls = [("best_checkpoint", {"job_id": DEMO_JOB}), ("list_jobs", {"max_results": 5})]
    n = 0
    while time.monotonic() < until:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
        http.event_hooks = {"response": [count]}
        try:
            async with http, Client(streamable_http_client(f"{root}/mcp", http_client=http), mode="legacy") as client:
                while time.monotonic() < until:
                    name, arguments = calls[n % len(calls)]
                    n += 1
                    started = time.perf_counter()
                    result = await client.call_tool(name, arguments)
                    if result.is_error:
                        failures["tool error: " + " ".join(getattr(b, "text", "") for b in result.content)[:60]] += 1
                    else:
                        latencies.append(time.perf_counter() - started)
        except Exception as exc:  # the session could not start, or broke: counted, and a new one opened
            failures[leaf(exc)] += 1
            await anyio.sleep(0.1)


def leaf(exc: BaseException) -> str:
    """The first exception that is not a group, as ``Type: message`` (short)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:100]


async def load(root: str, clients: int, seconds: float) -> tuple[list[float], collections.Counter[str], Any, float]:
    latencies: list[float] = []
    failures: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int] = collections.Counter()
    started = time.monotonic()
    finished = [0]

    async def one_client() -> None:
        await client_loop(root, started + seconds, latencies, failures, statuses)
        finished[0] += 1

    with anyio.move_on_after(seconds + GRACE):  # a server that locks clients out must not hang the bench
        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(one_client)
    if finished[0] < clients:
        failures[f"no answer {GRACE:g} s past the end"] += clients - finished[0]
    return latencies, failures, statuses, time.monotonic() - started


def run_workers(root: str, clients: int, processes: int, seconds: float) -> tuple[list[float], Any, Any, float]:
    """The clients spread over `processes` worker processes (this script with ``--worker``), so that no client
    waits for another's CPU in one event loop; their figures added up."""
    shares = [clients // processes + (n < clients % processes) for n in range(processes)]
    argv = [sys.executable, __file__, "--worker", root, "--seconds", str(seconds)]
    started = time.monotonic()
    workers = [
        subprocess.Popen([*argv, "--clients", str(share)], stdout=subprocess.PIPE, text=True)
        for share in shares
        if share
    ]
    latencies: list[float] = []
    failures: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int] = collections.Counter()
    for worker in workers:
        out, _ = worker.communicate(timeout=seconds + GRACE + 120)
        if worker.returncode != 0:
            raise BenchError(f"a client process failed ({worker.returncode})")
        figures = json.loads(out)
        latencies += figures["latencies"]
        failures.update(figures["failures"])
        statuses.update({int(status): n for status, n in figures["statuses"].items()})
    return latencies, failures, statuses, time.monotonic() - started


def worker(root: str, clients: int, seconds: float) -> int:
    latencies, failures, statuses, _ = anyio.run(load, root, clients, seconds)
    print(json.dumps({"latencies": latencies, "failures": failures, "statuses": statuses}))
    return 0


def abandon_sessions(root: str, count: int) -> tuple[int, collections.Counter[int]]:
    """`count` initialize calls whose sessions are never used again; their HTTP statuses."""
    statuses: collections.Counter[int] = collections.Counter()
    with httpx2.Client(timeout=30) as http:
        for _ in range(count):
            statuses[http.post(f"{root}/mcp", json=INITIALIZE, headers=HEADERS).status_code] += 1
    return count, statuses


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load phase (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent MCP clients (default 50)")
    parser.add_argument("--slow", type=int, default=300, help="slow sockets (default 300)")
    parser.add_argument("--nofile", type=int, default=256, help="the server's descriptor limit, 0: unchanged")
    parser.add_argument("--sessions", type=int, default=2000, help="abandoned initialize calls afterwards")
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=1000,
        help="the server's --max-sessions (default 1000; 0: not passed, for a server without the flag)",
    )
    parser.add_argument("--processes", type=int, default=5, help="client processes the clients are spread over")
    parser.add_argument("--log", metavar="FILE", help="write the server's log to FILE")
    parser.add_argument("--worker", metavar="ROOT", help=argparse.SUPPRESS)  # a client process of run_workers
    parser.add_argument("server_flags", nargs="*", help="more flags for the server, after --")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.clients, args.seconds)

    port = free_port()
    root = f"http://127.0.0.1:{port}"
    extra = [*(["--max-sessions", str(args.max_sessions)] if args.max_sessions else []), *args.server_flags]
    print(
        f"http_load: {args.clients} MCP clients ({args.processes} processes) + {args.slow} slow sockets for "
        f"{args.seconds:g} s; server --demo, "
        f"descriptor limit {args.nofile or 'unchanged'}, {' '.join(extra)}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with server(port, args.nofile, extra) as (process, output):
        rss_start = rss_mb(process.pid)
        slow = SlowSockets(port, args.slow)
        slow.thread.start()
        time.sleep(1.0)  # the slow sockets are in place before the clients arrive
        latencies, failures, statuses, took = run_workers(root, args.clients, args.processes, args.seconds)
        slow.stop.set()
        slow.thread.join()
        rss_load = rss_mb(process.pid)
        time.sleep(1.0)
        before_sessions = rss_mb(process.pid)
        count, session_statuses = abandon_sessions(root, args.sessions)
        rss_end = rss_mb(process.pid)
        alive = httpx2.get(f"{root}/healthz", timeout=5).status_code
    log = output[0]
    if args.log:
        Path(args.log).write_text(log)

    non_2xx = sum(n for status, n in statuses.items() if not 200 <= status < 300)
    calls = len(latencies)
    print(f"\ntool calls answered   {calls:,} in {took:.1f} s: {calls / took:,.0f} calls/s")
    print(
        f"latency               p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies, default=0) * 1000:.0f} ms"
    )
    print(f"failed calls          {sum(failures.values())} {dict(failures) or ''}")
    print(f"HTTP statuses         {dict(sorted(statuses.items()))}; non-2xx: {non_2xx} (goal: 0)")
    print(f"slow sockets          {slow.connects:,} connections, {slow.closed_by_server:,} closed by the server")
    print(
        f"server log            {len(log.splitlines())} lines, {len(log):,} bytes; 'Too many open files' "
        f"{log.count('Too many open files')}, tracebacks {log.count('Traceback')}; displaced lines "
        f"{log.count('to make room for a new one')}"
    )
    per_session = (rss_end - before_sessions) * 1024 / max(1, min(count, args.max_sessions or count))
    print(f"server memory         {rss_start:.0f} MB at start, {rss_load:.0f} MB after the load")
    print(
        f"sessions              {count:,} abandoned initialize calls (cap {args.max_sessions:,}): statuses "
        f"{dict(session_statuses)}; {rss_end:.0f} MB after them, about {per_session:.0f} KB per kept session; "
        f"evictions logged {log.count('evicted the session idle longest')} (once a minute)"
    )
    print(f"/healthz afterwards   {alive}")
    return 0 if non_2xx == 0 and not failures and alive == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
