"""The installed console script as a stdio subprocess: real protocol, demo mode, and nothing else on stdout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from openai_checkpoints_mcp.fake import DEMO_JOB_IDS

pytestmark = pytest.mark.anyio


def _console_script() -> str:
    """The installed `openai-checkpoints-mcp`, next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).with_name("openai-checkpoints-mcp")
    found = str(beside) if beside.exists() else shutil.which("openai-checkpoints-mcp")
    if found is None:
        pytest.fail("the console script openai-checkpoints-mcp is not installed; pip install the project first")
    return found


async def test_best_checkpoint_over_stdio_in_demo_mode():
    params = StdioServerParameters(command=_console_script(), args=["--demo"])
    with anyio.fail_after(60):
        async with Client(params) as client:
            assert client.server_info.name == "openai-checkpoints"
            result = await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB_IDS["support_bot"]})
    assert result.is_error is False
    data = result.structured_content
    assert data["best"]["step_number"] == 240 and data["best_is_final"] is False
    assert data["notice"].startswith("DEMO DATA")


def test_stdout_carries_only_json_rpc():
    """Drive the server by hand: every stdout line must be a JSON-RPC message; logs go to stderr."""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "best_checkpoint", "arguments": {"job_id": DEMO_JOB_IDS["support_bot"]}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "get_job", "arguments": {"job_id": "ftjob-../etc"}}},
    ]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    process = subprocess.Popen(
        [_console_script(), "--demo", "--log-level", "DEBUG"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env,
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        process.stdin.flush()
        replies = []
        while {r.get("id") for r in replies} < {1, 2, 3, 4}:
            line = process.stdout.readline()
            if not line:
                break
            replies.append(json.loads(line))  # a stray print or log line on stdout would fail here
        process.stdin.close()
        process.wait(timeout=30)
        rest = process.stdout.read()
        stderr = process.stderr.read() if process.stderr else ""
        replies += [json.loads(line) for line in rest.splitlines() if line.strip()]
    finally:
        watchdog.cancel()
        process.kill()
    assert all(reply.get("jsonrpc") == "2.0" for reply in replies)
    by_id = {reply["id"]: reply for reply in replies if "id" in reply}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[3]["result"]["structuredContent"]["best"]["step_number"] == 240
    assert by_id[4]["result"]["isError"] is True
    assert by_id[4]["result"]["content"][0]["text"].startswith("invalid_argument: ")
    assert "serving over stdio" in stderr  # logs went to stderr


def test_without_a_key_the_server_still_starts_and_says_what_to_set():
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run(
        [_console_script(), "call", "list_jobs"], capture_output=True, text=True, timeout=60, env=env,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("auth_missing: ") and "OPENAI_API_KEY" in done.stderr


def test_call_prints_the_structured_result():
    done = subprocess.run(
        [_console_script(), "call", "best_checkpoint", f"job_id={DEMO_JOB_IDS['support_bot']}", "top_k=2",
         "--demo"], capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["best"]["step_number"] == 240 and len(data["ranking"]) == 2
