"""Helpers for .ci/mcp-checks (the standard library, and the installed package's tool table): free ports, waiting
for /healthz, and checking the JSON that the MCP Inspector CLI and the conformance suite wrote. Each command exits 1
with one line on stderr when a check fails, so the bash script can stop there."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from openai_checkpoints_mcp.server import tool_table

SNAPSHOTS = Path(__file__).resolve().parents[1] / "tests" / "snapshots"
"""One <tool>.json per tool the server can register (tests/test_snapshots.py keeps them in step with the server)."""
WRITE_TOOLS = {spec.name for spec in tool_table() if not spec.read_only}
"""Never listed by these checks' servers, which run without --allow-writes."""
EXPECTED_TOOLS = {path.stem for path in SNAPSHOTS.glob("*.json")} - WRITE_TOOLS
"""The read tools, all of which tools/list must show."""


def fail(message: str) -> NoReturn:
    print(f"mcp-checks: FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def free_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        print(sock.getsockname()[1])


def wait_healthz(root: str, pid: str, version: str) -> None:
    """Wait (60 s at most) until GET /healthz answers exactly {"status": "ok", "version": <version>}."""
    deadline = time.monotonic() + 60
    while True:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            fail(f"the server (pid {pid}) exited before answering {root}/healthz")
        try:
            with urllib.request.urlopen(f"{root}/healthz", timeout=2) as response:
                body = json.loads(response.read())
            if body != {"status": "ok", "version": version}:
                fail(f"/healthz answered {body!r}, expected status ok and version {version}")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            fail(f"{root}/healthz did not answer within 60 s")
        time.sleep(0.2)


def expect_401(url: str) -> None:
    """A POST to the MCP endpoint without a token must get 401 with a Bearer challenge."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            fail(f"POST {url} without a token got {response.status}, expected 401")
    except urllib.error.HTTPError as exc:
        challenge = exc.headers.get("WWW-Authenticate", "")
        if exc.code != 401 or not challenge.startswith("Bearer"):
            fail(f"POST {url} without a token got {exc.code} ({challenge!r}), expected 401 with a Bearer challenge")


def _result(path: str) -> dict[str, Any]:
    text = Path(path).read_text()
    try:
        document = json.loads(text)
    except ValueError:
        fail(f"{path} is not JSON: {text[:300]!r}")
    if not isinstance(document, dict) or not isinstance(document.get("result"), dict):
        fail(f"{path} has no result object: {text[:300]!r}")
    result: dict[str, Any] = document["result"]
    return result


def check_tools_list(path: str) -> None:
    if not EXPECTED_TOOLS:
        fail(f"no tool snapshots in {SNAPSHOTS}, so the expected tools are unknown")
    names = {tool.get("name") for tool in _result(path).get("tools", [])}
    if not names >= EXPECTED_TOOLS:
        fail(f"tools/list lacks {sorted(EXPECTED_TOOLS - names)}; got {sorted(map(str, names))}")
    if names & WRITE_TOOLS:
        fail(f"tools/list shows the write tools {sorted(names & WRITE_TOOLS)} although --allow-writes was not given")
    print(f"mcp-checks: ok: tools/list --strict: {len(names)} tools, no schema errors")


def check_best_checkpoint(path: str, job_id: str) -> None:
    result = _result(path)
    if result.get("isError") is not False:
        fail(f"tools/call best_checkpoint returned an error: {json.dumps(result)[:500]}")
    data = result.get("structuredContent") or {}
    best = data.get("best") or {}
    if data.get("job_id") != job_id or not isinstance(best.get("step_number"), int):
        fail(f"tools/call best_checkpoint returned no best checkpoint for {job_id}: {json.dumps(data)[:500]}")
    if not str(data.get("notice", "")).startswith("DEMO DATA"):
        fail("tools/call best_checkpoint: the demo notice is missing (was the server in demo mode?)")
    print(f"mcp-checks: ok: tools/call best_checkpoint {job_id}: step {best['step_number']}, isError false")


def check_conformance(out_dir: str, scenario: str) -> None:
    """The scenario's checks.json: at least one SUCCESS, and no FAILURE or WARNING."""
    files = sorted(Path(out_dir).glob(f"server-{scenario}-*/checks.json"))
    if not files:
        fail(f"conformance {scenario}: no checks.json under {out_dir}")
    checks = json.loads(files[-1].read_text())
    statuses = [check.get("status") for check in checks]
    bad = [
        f"{c.get('id')}: {c.get('status')}: {c.get('errorMessage', '')}"
        for c in checks
        if c.get("status") in ("FAILURE", "WARNING")
    ]
    if bad or "SUCCESS" not in statuses:
        fail(f"conformance {scenario}: {'; '.join(bad) or 'no successful check'}")
    print(f"mcp-checks: ok: conformance {scenario}: {statuses.count('SUCCESS')}/{len(checks)} checks passed")


COMMANDS: dict[str, Callable[..., None]] = {
    "free-port": free_port,
    "wait-healthz": wait_healthz,
    "expect-401": expect_401,
    "tools-list": check_tools_list,
    "best-checkpoint": check_best_checkpoint,
    "conformance": check_conformance,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: mcp_checks.py {{{','.join(COMMANDS)}}} ARGS...")
    COMMANDS[sys.argv[1]](*sys.argv[2:])
