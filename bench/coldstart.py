"""Cold start of our stdio server against the official reference server ``mcp-server-time``.

What is measured: the wall time from spawning the server process until the JSON-RPC response to one
``initialize`` request (protocol 2025-11-25), written to stdin right after the spawn, arrives as a line on
stdout. That covers interpreter start-up, imports (mostly the MCP SDK), building the server, its lifespan and
the handshake. Teardown is not timed: stdin is closed and the process reaped after the clock stops.

The runs alternate (ours, reference, ours, ...) so that drift in machine load hits both alike; each server is
started once untimed first so that both have their bytecode caches. Both get only PATH and HOME, so no API key
leaks in. The reference is installed once into its own virtualenv, ``bench/.venv-reference/``.

    python bench/coldstart.py [--runs 25] [--no-demo] [--reference-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _venv import BenchError, venv_python

REFERENCE_VENV = Path(__file__).resolve().parent / ".venv-reference"
TIMEOUT = 30.0
REQUEST_ID = 1
INITIALIZE = (
    json.dumps(
        {
            "jsonrpc": "2.0",
            "id": REQUEST_ID,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "coldstart-bench", "version": "0"},
            },
        }
    ).encode()
    + b"\n"
)
ENV = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}


def reference_python(given: str | None) -> str:
    """The interpreter that has ``mcp-server-time``: the one given, else the cached venv (created on first use)."""
    return venv_python(
        REFERENCE_VENV, "mcp-server-time", given, installed=lambda python: python.with_name("mcp-server-time").exists()
    )


def versions(python: str, *dists: str) -> str:
    code = "import sys, importlib.metadata as m; print(' '.join(d + ' ' + m.version(d) for d in sys.argv[1:]))"
    return subprocess.run([python, "-c", code, *dists], capture_output=True, text=True, check=True).stdout.strip()


def read_response(fd: int, deadline: float) -> None:
    """Read stdout lines until the one that answers our request; skip notifications, reject anything else."""
    buffer = b""
    while True:
        while b"\n" not in buffer:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise BenchError(f"no initialize response within {TIMEOUT:g} s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise BenchError("stdout closed before the initialize response")
            buffer += chunk
        line, _, buffer = buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            raise BenchError(f"stdout line is not JSON: {line[:200]!r}") from None
        if isinstance(message, dict) and "id" not in message:
            continue  # a notification
        result = message.get("result") if isinstance(message, dict) else None
        if not isinstance(result, dict) or message["id"] != REQUEST_ID or "protocolVersion" not in result:
            raise BenchError(f"expected the initialize result for id {REQUEST_ID}, got {line[:300]!r}")
        return


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Close stdin (a stdio server exits on EOF) and wait; kill it if it lingers."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


def time_initialize(name: str, command: list[str]) -> float:
    """Seconds from spawn to the initialize response; raises BenchError with the server's stderr tail."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=ENV, cwd=tempfile.gettempdir()
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(INITIALIZE)
            proc.stdin.flush()
            read_response(proc.stdout.fileno(), start + TIMEOUT)
            return time.perf_counter() - start
        except (BenchError, BrokenPipeError) as exc:
            reap(proc)
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-2000:]
            raise BenchError(f"{name} ({' '.join(command)}): {exc}; exit {proc.returncode}\n{tail}") from None
        finally:
            reap(proc)


def summary(label: str, times: list[float]) -> str:
    p25, median, p75 = (1000 * q for q in statistics.quantiles(times, n=4, method="inclusive"))
    return f"  {label:<10} median {median:4.0f} ms  (p25 {p25:.0f}, p75 {p75:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="timed runs of each server (default 25)")
    parser.add_argument(
        "--demo",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start ours with --demo (default); --no-demo starts it with no flags and no key",
    )
    parser.add_argument(
        "--reference-python",
        metavar="PATH",
        help="an interpreter that already has mcp-server-time, instead of bench/.venv-reference",
    )
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    ref_python = reference_python(args.reference_python)
    script = Path(ref_python).parent / "mcp-server-time"
    servers = {
        "ours": [sys.executable, "-m", "openai_checkpoints_mcp", *(["--demo"] if args.demo else [])],
        "reference": [str(script)] if script.exists() else [ref_python, "-m", "mcp_server_time"],
    }
    times: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for name, command in servers.items():
            time_initialize(name, command)  # warm-up: writes .pyc, not timed
        for _ in range(args.runs):
            for name, command in servers.items():
                times[name].append(time_initialize(name, command))
    except BenchError as exc:
        hint = "\n(try --no-demo)" if args.demo and str(exc).startswith("ours") else ""
        sys.exit(f"error: {exc}{hint}")
    print(f"cold start, spawn -> initialize response; n={args.runs} each, interleaved, after one warm-up each")
    ours_versions = versions(sys.executable, "mcp", "openai-checkpoints-mcp")
    print(f"  ours:      {' '.join(servers['ours'][1:])}  [{ours_versions}]")
    print(f"  reference: {' '.join(servers['reference'])}  [{versions(ref_python, 'mcp', 'mcp-server-time')}]")
    for name in servers:
        print(summary(name, times[name]))
    ratio = statistics.median(times["ours"]) / statistics.median(times["reference"])
    print(f"ratio ours/reference (medians): {ratio:.3f}")
    print(f"goal: ratio <= 1.05  ({'met' if ratio <= 1.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
