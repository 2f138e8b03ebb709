"""Endurance: 10,000 tool calls over one stdio session, against the fake API with a small fault rate.

One server process (``python -m openai_checkpoints_mcp``, with the key and base URL in its environment and a new,
empty cache directory, as a client launches it) is driven by raw JSON-RPC lines on its stdin, one call at a time, as
an assistant calls tools. The organisation is `sweep.py`'s (150 jobs, 12 of them a sweep). The calls mix the read
tools over random succeeded jobs (seeded): `get_job`, `best_checkpoint`, `list_checkpoints`, `training_metrics`,
`list_events`, `list_jobs`, `compare_jobs` over the sweep, `list_fine_tuned_models` and, rarely,
`plot_training_curve`; a quarter of those that take ``refresh`` ask for it, so the API is read throughout and not
only the cache. The fake is served on 127.0.0.1 behind `RandomFaults`, which answers ``--fault-rate`` of the requests
(2% by default) with a 429, 500 or 503 carrying ``retry-after-ms: 10`` (the server retries them).

Printed: calls per second, p50 and p99 latency (from writing the request to reading its answer: the server's time and
the pipe's), the answers by outcome (``ok``, a tool error's code, or a JSON-RPC error's code), the requests at the
fake and the faults injected, and the server's resident memory (``VmRSS`` from ``/proc/PID/status``) right after
``initialize``, after the warm-up (the first 5% of the calls, which start with one call of each tool: every tool
imported, matplotlib too, and the caches filled), at the middle
and at the end; the goal is memory flat within 10% from the warm-up to the end. Exit status 1 if the server fails
(dies, answers something that is not JSON-RPC, or does not answer within 60 s), 0 otherwise, goal met or not.

    python bench/soak.py [--calls 10000] [--fault-rate 0.02] [--seed 11] [--server-args '--cache-size 0']
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from _venv import BenchError
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from starlette.types import Receive, Scope, Send
from sweep import BENCH_KEY, build_org

from openai_checkpoints_mcp.config import CACHE_DIR_ENV
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, running_server
from openai_checkpoints_mcp.fake.app import default_error_body

ANSWER_WITHIN = 60.0
WARM_UP = 0.05
"""The share of the calls after which memory is taken as the baseline."""
FAULT_STATUSES = (429, 500, 503)
MIX = (
    ("get_job", 20),
    ("best_checkpoint", 20),
    ("list_checkpoints", 15),
    ("training_metrics", 14),
    ("list_events", 10),
    ("list_jobs", 10),
    ("compare_jobs", 5),
    ("list_fine_tuned_models", 5),
    ("plot_training_curve", 1),
)
TAKES_REFRESH = frozenset({"get_job", "best_checkpoint", "list_checkpoints", "training_metrics", "compare_jobs"})


class RandomFaults:
    """An ASGI wrapper answering a random `rate` of the requests with a retryable error (429, 500, 503) that asks
    for a 10 ms wait; it counts the requests and the faults."""

    def __init__(self, app: Any, rate: float, seed: int) -> None:
        self.app = app
        self.rate = rate
        self.random = random.Random(seed)
        self.requests = 0
        self.faults: Counter[int] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        if self.random.random() >= self.rate:
            await self.app(scope, receive, send)
            return
        status = self.random.choice(FAULT_STATUSES)
        self.faults[status] += 1
        body = json.dumps(default_error_body(status)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after-ms", b"10"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def plan(data: FakeData, calls: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """The calls, in order: one of each tool first (so that the warm-up imports them all), then tools drawn by
    `MIX`'s weights, over random succeeded jobs."""
    rng = random.Random(seed)
    succeeded = [job["id"] for job in data.jobs if job["status"] == "succeeded"]
    names = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    planned: list[tuple[str, dict[str, Any]]] = []
    for name in names + rng.choices(names, weights, k=calls - len(names)):
        arguments: dict[str, Any]
        if name == "list_jobs":
            arguments = rng.choice(({"max_results": 20}, {"status": "succeeded", "max_results": 50}))
        elif name == "compare_jobs":
            arguments = {"suffix": "sweep-lr"}
        elif name == "list_fine_tuned_models":
            arguments = {}
        else:
            arguments = {"job_id": rng.choice(succeeded)}
        if name in TAKES_REFRESH and rng.random() < 0.25:
            arguments["refresh"] = True
        planned.append((name, arguments))
    return planned


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError("no VmRSS in /proc/PID/status")


class Session:
    """Raw JSON-RPC over the server's stdin and stdout, one request at a time."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self.stdin = process.stdin
        self.stdout = BufferedByteReceiveStream(process.stdout)
        self.next_id = 0

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.stdin.send(json.dumps(message).encode() + b"\n")
        with anyio.fail_after(ANSWER_WITHIN):
            while True:
                line = await self.stdout.receive_until(b"\n", 256 * 1024 * 1024)
                try:
                    reply = json.loads(line)
                except ValueError:
                    raise BenchError(f"stdout carried a line that is not JSON-RPC: {line[:200]!r}") from None
                if reply.get("id") == self.next_id:
                    return dict(reply)

    async def notify(self, method: str) -> None:
        await self.stdin.send(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")


def outcome(reply: dict[str, Any]) -> str:
    """``ok``, a tool error's code (the text before its colon), or ``jsonrpc <code>``."""
    if "error" in reply:
        return f"jsonrpc {reply['error'].get('code')}"
    result = reply["result"]
    if result.get("isError"):
        text = next((c.get("text", "") for c in result.get("content", []) if c.get("type") == "text"), "")
        return text.split(":", 1)[0] or "error without text"
    return "ok"


async def soak(args: argparse.Namespace) -> int:
    org = build_org()
    calls = plan(org.data, args.calls, args.seed)
    faults = RandomFaults(FakeOpenAI(org.data, api_key=BENCH_KEY), args.fault_rate, args.seed)
    with (
        running_server(faults) as base_url,
        tempfile.TemporaryDirectory(prefix="soak-cache-") as cache_dir,
        tempfile.TemporaryFile("w+") as errlog,
    ):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "OPENAI_API_KEY": BENCH_KEY,
            "OPENAI_BASE_URL": base_url,
            CACHE_DIR_ENV: cache_dir,
        }
        command = [sys.executable, "-m", "openai_checkpoints_mcp", "--log-level", "WARNING", *args.server_args]
        process = await anyio.open_process(command, env=env, stderr=errlog)
        try:
            figures = await drive(Session(process), calls, args)
        except (BenchError, TimeoutError, anyio.EndOfStream, anyio.IncompleteRead, OSError) as exc:
            errlog.seek(0)
            raise BenchError(f"the server failed: {exc!r}\n{errlog.read()[-2000:]}") from None
        finally:
            if process.returncode is None:
                process.kill()
            await process.aclose()
        errlog.seek(0)
        logged = errlog.read().splitlines()
    report(figures, faults, args, logged)
    return 0


async def drive(session: Session, calls: list[tuple[str, dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    pid = session.process.pid
    init = await session.request(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "soak", "version": "0"}},
    )
    if "result" not in init:
        raise BenchError(f"initialize failed: {init}")
    await session.notify("notifications/initialized")
    memory = {"after initialize": rss_mib(pid)}
    warm_up = max(1, int(len(calls) * WARM_UP))
    marks = {warm_up: "after warm-up", len(calls) // 2: "middle", len(calls): "end"}
    samples: list[tuple[int, float]] = []
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    by_tool: dict[str, list[float]] = {}
    started = time.perf_counter()
    for done, (name, arguments) in enumerate(calls, start=1):
        sent = time.perf_counter()
        reply = await session.request("tools/call", {"name": name, "arguments": arguments})
        latency = time.perf_counter() - sent
        latencies.append(latency)
        by_tool.setdefault(name, []).append(latency)
        outcomes[outcome(reply)] += 1
        if done in marks:
            memory[marks[done]] = rss_mib(pid)
        if done % max(1, len(calls) // 20) == 0:
            samples.append((done, rss_mib(pid)))
            if args.progress:
                print(f"  {done:>6} calls, {rss_mib(pid):.1f} MiB", file=sys.stderr)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "latencies": latencies,
        "outcomes": outcomes,
        "memory": memory,
        "samples": samples,
        "by_tool": by_tool,
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report(figures: dict[str, Any], faults: RandomFaults, args: argparse.Namespace, logged: list[str]) -> None:
    latencies: list[float] = figures["latencies"]
    centiles = statistics.quantiles(latencies, n=100, method="inclusive")
    print(f"{len(latencies)} tool calls over one stdio session in {figures['wall']:.1f} s")
    print(f"  calls per second: {len(latencies) / figures['wall']:.1f}")
    print(f"  latency: p50 {_ms(centiles[49])}, p99 {_ms(centiles[98])}, max {_ms(max(latencies))}")
    for name, spent in sorted(figures["by_tool"].items()):
        print(f"    {name:<24} {len(spent):>6} calls, p50 {_ms(statistics.median(spent))}")
    print("  answers: " + ", ".join(f"{kind} {count}" for kind, count in figures["outcomes"].most_common()))
    injected = ", ".join(f"{status} x{count}" for status, count in sorted(faults.faults.items())) or "none"
    print(f"  requests at the fake: {faults.requests}; faults injected ({args.fault_rate:.1%}): {injected}")
    memory: dict[str, float] = figures["memory"]
    print("  resident memory (MiB): " + ", ".join(f"{mark} {mib:.1f}" for mark, mib in memory.items()))
    print("    every 5%: " + " ".join(f"{mib:.0f}" for _, mib in figures["samples"]))
    base, end = memory["after warm-up"], memory["end"]
    growth = (end - base) / base
    verdict = "met" if abs(growth) <= 0.10 else "NOT met"
    print(f"  from the warm-up to the end: {growth:+.1%} (goal: within 10%: {verdict})")
    warnings = [line for line in logged if " WARNING " in line or " ERROR " in line]
    print(f"  server log: {len(logged)} lines, {len(warnings)} warnings or errors")
    for line in warnings[:5]:
        print(f"    {line[:200]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="tool calls to make (default 10,000)")
    parser.add_argument("--fault-rate", type=float, default=0.02, help="share of API requests faulted (0.02)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--progress", action="store_true", help="print memory every 5%% of the calls on stderr")
    parser.add_argument(
        "--server-args",
        type=shlex.split,
        default=[],
        help="more flags for the server, as one string (e.g. '--cache-size 0 --no-persistent-cache')",
    )
    args = parser.parse_args()
    if args.calls < 20:
        parser.error("--calls must be at least 20")
    try:
        return anyio.run(soak, args)
    except BenchError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
