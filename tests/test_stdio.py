"""The stdio transport, as a client launches it: only JSON-RPC on stdout, demo and real-key modes, `call`."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from openai_checkpoints_mcp.config import CACHE_DIR_ENV
from openai_checkpoints_mcp.fake import DEMO_JOB_IDS, demo_data

from .helpers import INITIALIZE, TEST_KEY, console_script

TEST_CACHE_ENV = {CACHE_DIR_ENV: os.environ.get(CACHE_DIR_ENV, "")}
"""conftest's temporary cache directory: the subprocesses never write to the user's real one."""

pytestmark = pytest.mark.anyio


async def test_best_checkpoint_over_stdio_in_demo_mode():
    params = StdioServerParameters(command=console_script(), args=["--demo"])
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
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {
                "name": "best_checkpoint",
                "arguments": {"job_id": DEMO_JOB_IDS["support_bot"]},
            },
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "get_job", "arguments": {"job_id": "ftjob-../etc"}},
        },
    ]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **TEST_CACHE_ENV}
    with (
        tempfile.TemporaryFile("w+") as errlog,
        subprocess.Popen(
            [console_script(), "--demo", "--log-level", "DEBUG"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            text=True,
            env=env,  # stderr to a file: a full pipe would block the server
        ) as process,
    ):
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
            replies += [json.loads(line) for line in process.stdout.read().splitlines() if line.strip()]
            process.wait(timeout=30)
        finally:
            watchdog.cancel()
            process.kill()
        errlog.seek(0)
        stderr = errlog.read()
    assert all(reply.get("jsonrpc") == "2.0" for reply in replies)
    by_id = {reply["id"]: reply for reply in replies if "id" in reply}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[3]["result"]["structuredContent"]["best"]["step_number"] == 240
    assert by_id[4]["result"]["isError"] is True
    assert by_id[4]["result"]["content"][0]["text"].startswith("invalid_argument: ")
    assert "serving over stdio" in stderr  # logs went to stderr


def test_without_a_key_the_server_still_starts_and_says_what_to_set():
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **TEST_CACHE_ENV}
    done = subprocess.run(
        [console_script(), "call", "list_jobs"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("auth_missing: ") and "OPENAI_API_KEY" in done.stderr


def test_call_prints_the_structured_result():
    done = subprocess.run(
        [
            console_script(),
            "call",
            "best_checkpoint",
            f"job_id={DEMO_JOB_IDS['support_bot']}",
            "top_k=2",
            "--demo",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["best"]["step_number"] == 240 and len(data["ranking"]) == 2


async def test_real_key_mode_over_stdio_against_the_fake_keeps_the_key_out_of_every_stream(
    serve_fake,
):
    """Key from the environment, API at OPENAI_BASE_URL (the fake over HTTP), DEBUG logs: no key anywhere."""
    with serve_fake(demo_data()) as api, tempfile.TemporaryFile("w+") as errlog:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            **TEST_CACHE_ENV,
            "OPENAI_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": api.base_url,
            "OPENAI_ORG_ID": "org-test",
        }
        params = StdioServerParameters(command=console_script(), args=["--log-level", "DEBUG"], env=env)
        with anyio.fail_after(60):
            async with Client(stdio_client(params, errlog=errlog)) as client:
                best = await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB_IDS["support_bot"]})
                missing = await client.call_tool("get_job", {"job_id": "ftjob-doesnotexist000000000000"})
        errlog.seek(0)
        stderr = errlog.read()
        assert api.faults.requests and all(
            r.headers["authorization"] == f"Bearer {TEST_KEY}" and r.headers["openai-organization"] == "org-test"
            for r in api.faults.requests
        )
    assert best.is_error is False and best.structured_content["best"]["step_number"] == 240
    assert best.structured_content["notice"] is None  # real mode: no demo notice
    assert missing.is_error and missing.content[0].text.startswith("not_found: ")
    assert "DEBUG" in stderr
    for text in (best.model_dump_json(), missing.model_dump_json(), stderr):
        assert TEST_KEY not in text


def test_call_with_a_real_key_from_the_environment(serve_fake):
    with serve_fake(demo_data()) as api:
        env = {
            "PATH": os.environ.get("PATH", ""),
            **TEST_CACHE_ENV,
            "OPENAI_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": api.base_url,
        }
        done = subprocess.run(
            [
                console_script(),
                "call",
                "list_checkpoints",
                f"job_id={DEMO_JOB_IDS['reinforcement']}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["coverage"]["method"] == "reinforcement" and data["count"] == 3
    assert TEST_KEY not in done.stdout + done.stderr
