"""Helpers for .ci/mcp-checks (the standard library, and the installed package's tool, resource-template and prompt
tables): free ports, waiting for /healthz, and checking the JSON that the MCP Inspector CLI and the conformance suite
wrote. Each command exits 1 with one line on stderr when a check fails, so the bash script can stop there."""

from __future__ import annotations

import base64
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
from openai_checkpoints_mcp.tools.prompts import PROMPTS
from openai_checkpoints_mcp.tools.resources import TEMPLATES

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


def check_templates_list(path: str) -> None:
    """resources/templates/list: exactly the table's templates, in its order, each with a title, a description and
    its MIME type (the Inspector's --strict lints tools/list only, so this is the strict check of templates)."""
    listed = _result(path).get("resourceTemplates", [])
    expected = [(spec.uri_template, spec.name, spec.mime_type) for spec in TEMPLATES]
    got = [(t.get("uriTemplate"), t.get("name"), t.get("mimeType")) for t in listed]
    if got != expected:
        fail(f"resources/templates/list: expected {expected}, got {got}")
    bare = [t.get("name") for t in listed if not t.get("title") or not t.get("description")]
    if bare:
        fail(f"resources/templates/list: {bare} lack a title or a description")
    print(f"mcp-checks: ok: resources/templates/list: {len(listed)} templates, as the table declares them")


def check_prompts_list(path: str) -> None:
    """prompts/list: exactly the table's prompts, in its order, each described, every argument described."""
    listed = _result(path).get("prompts", [])
    names = [p.get("name") for p in listed]
    if names != [spec.name for spec in PROMPTS]:
        fail(f"prompts/list: expected {[spec.name for spec in PROMPTS]}, got {names}")
    bare = [p.get("name") for p in listed if not p.get("title") or not p.get("description")]
    arguments = [(p.get("name"), a) for p in listed for a in p.get("arguments") or []]
    bare += [f"{name}.{a.get('name')}" for name, a in arguments if not a.get("description")]
    if bare:
        fail(f"prompts/list: {bare} lack a title or a description")
    print(f"mcp-checks: ok: prompts/list: {len(listed)} prompts, every argument described")


def check_prompt_get(path: str, job_id: str) -> None:
    """prompts/get choose_checkpoint: one user message, a script naming the job and the tools to call."""
    messages = _result(path).get("messages", [])
    texts = [m.get("content", {}).get("text", "") for m in messages if m.get("role") == "user"]
    if len(messages) != 1 or len(texts) != 1 or job_id not in texts[0] or "best_checkpoint" not in texts[0]:
        fail(f"prompts/get choose_checkpoint: not a script for {job_id}: {json.dumps(messages)[:500]}")
    print(f"mcp-checks: ok: prompts/get choose_checkpoint {job_id}: one user message naming the tools")


def check_resource_read(path: str, uri: str, mime_type: str) -> None:
    """resources/read: one content of `uri` with `mime_type`; CSV starting with its step column, a PNG (base64 in
    the blob), or demo JSON."""
    contents = _result(path).get("contents", [])
    if len(contents) != 1 or contents[0].get("uri") != uri or contents[0].get("mimeType") != mime_type:
        fail(f"resources/read {uri}: expected one {mime_type} content, got {json.dumps(contents)[:500]}")
    if mime_type == "image/png":
        try:
            png = base64.b64decode(str(contents[0].get("blob", "")), validate=True)
        except ValueError:
            png = b""
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            fail(f"resources/read {uri}: no PNG in the blob: {json.dumps(contents)[:300]}")
        print(f"mcp-checks: ok: resources/read {uri}: {mime_type}, {len(png):,} bytes")
        return
    text = str(contents[0].get("text", ""))
    if mime_type == "text/csv":
        ok = text.startswith("step,") and text.count("\n") > 1
    else:
        try:
            ok = str(json.loads(text).get("notice", "")).startswith("DEMO DATA")
        except (ValueError, AttributeError):
            ok = False
    if not ok:
        fail(f"resources/read {uri}: unexpected content {text[:300]!r}")
    print(f"mcp-checks: ok: resources/read {uri}: {mime_type}, {len(text):,} characters")


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
    "templates-list": check_templates_list,
    "prompts-list": check_prompts_list,
    "prompt-get": check_prompt_get,
    "resource-read": check_resource_read,
    "conformance": check_conformance,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: mcp_checks.py {{{','.join(COMMANDS)}}} ARGS...")
    COMMANDS[sys.argv[1]](*sys.argv[2:])
