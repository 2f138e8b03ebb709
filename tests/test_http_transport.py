"""The streamable HTTP transport over real HTTP on 127.0.0.1: tool calls, stateless mode, SSE answers, /healthz,
progress and cancellation, a cache shared by the server's clients, the CLI and the uvicorn factory."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx2
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import (
    FakeData,
    FakeOpenAI,
)
from openai_checkpoints_mcp.server import server_version
from openai_checkpoints_mcp.transport.http import (
    HttpOptions,
    create_app,
)

from .helpers import (
    DEMO_JOB,
    INITIALIZE,
    MCP_HEADERS,
    README_JOB,
    TEST_KEY,
    TOKEN,
    checkpoint,
    clean_env,
    console_script,
    demo_server,
    job,
    mcp_client,
    one_job,
    serve_app,
    serving,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("stateless", [False, True])
async def test_responses_are_sse_streams_with_and_without_sessions(stateless):
    """README, Sessions or stateless: "Responses are always SSE streams (never plain JSON)"."""
    with demo_server(stateless=stateless) as root:
        async with httpx2.AsyncClient() as http:
            raw = await http.post(
                f"{root}/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"},
            )
    assert raw.status_code == 200
    assert raw.headers["content-type"].split(";")[0] == "text/event-stream"
    data = [line.removeprefix("data:").strip() for line in raw.text.splitlines() if line.startswith("data:")]
    assert json.loads(data[-1])["result"]["protocolVersion"] == "2025-11-25"
    assert ("mcp-session-id" in raw.headers) is not stateless


@pytest.mark.parametrize("stateless", [False, True])
async def test_http_clients_of_one_server_share_its_cache(serve_fake, mode, stateless):
    """README, Cache: "The cache and the concurrency bound belong to one server process: HTTP sessions share them"."""
    with (
        serve_fake(one_job()) as api,
        serving(create_app(api.settings, HttpOptions(auth_token=TOKEN, stateless=stateless))) as root,
    ):
        async with mcp_client(root, mode) as first:
            one = await first.call_tool("best_checkpoint", {"job_id": README_JOB})
        made = len(api.faults.requests)
        async with mcp_client(root, mode) as second:
            two = await second.call_tool("best_checkpoint", {"job_id": README_JOB})
    assert made == 2 and len(api.faults.requests) == made  # the second client's identical call made no request
    assert one.structured_content == two.structured_content


async def test_tool_calls_with_the_token(mode):
    with demo_server() as root:
        async with mcp_client(root, mode) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB})
            bad = await client.call_tool("get_job", {"job_id": "ftjob-../files"})
    assert {"list_jobs", "get_job", "list_checkpoints", "best_checkpoint"} <= tools
    assert result.is_error is False
    assert result.structured_content["best"]["step_number"] == 240
    assert result.structured_content["notice"].startswith("DEMO DATA")
    assert bad.is_error and bad.content[0].text.startswith("invalid_argument: job_id")  # same errors as stdio


async def test_stateless_mode_answers_without_sessions(mode):
    with demo_server(stateless=True) as root:
        async with mcp_client(root, mode) as client:
            result = await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB})
        async with httpx2.AsyncClient() as http:
            headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
            raw = await http.post(f"{root}/mcp", json=INITIALIZE, headers=headers)
    assert result.structured_content["best"]["step_number"] == 240
    assert raw.status_code == 200 and "mcp-session-id" not in raw.headers


async def test_healthz_is_public_and_says_only_status_and_version():
    with demo_server() as root:
        async with httpx2.AsyncClient() as http:
            response = await http.get(f"{root}/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "version": server_version()}


async def test_progress_notifications_over_http(serve_fake, mode):
    job_id = "ftjob-Progress000000000000000001"
    cps = [checkpoint(job_id, step, {"train_loss": 1 / step}) for step in range(1, 251)]
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    with (
        serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api,
        serving(create_app(api.settings, HttpOptions(auth_token=TOKEN))) as root,
    ):
        async with mcp_client(root, mode) as client:
            result = await client.call_tool("list_checkpoints", {"job_id": job_id}, progress_callback=on_progress)
    assert result.structured_content["count"] == 250
    assert [u[0] for u in updates] == [1, 2, 3]
    assert updates[-1][2] == "read 3 pages, 250 checkpoints"


class HangingCheckpoints:
    """The fake API, except that checkpoint requests are never answered: records when one arrives and when the
    server's HTTP client gives up on it (the connection closes), which happens only if the tool call is cancelled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.arrived = threading.Event()
        self.abandoned = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "/checkpoints" not in scope["path"]:
            await self.app(scope, receive, send)
            return
        self.arrived.set()
        while (await receive())["type"] != "http.disconnect":
            pass
        self.abandoned.set()


async def test_cancelling_a_call_over_http_cancels_it_on_the_server(mode):
    job_id = "ftjob-Cancel0000000000000000001"
    fake = FakeOpenAI(FakeData(jobs=[job(job_id)], checkpoints={job_id: []}), api_key=TEST_KEY)
    upstream = HangingCheckpoints(fake)
    with serve_app(upstream) as base_url:
        # Long timeouts: within this test only a cancelled call can make the server drop its upstream request.
        settings = Settings(
            api_key=TEST_KEY,
            base_url=base_url,
            timeout=120.0,
            deadline=300.0,
            max_retries=0,
        )
        with serving(create_app(settings, HttpOptions(auth_token=TOKEN))) as root:
            async with mcp_client(root, mode) as client:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.call_tool, "list_checkpoints", {"job_id": job_id})
                    assert await anyio.to_thread.run_sync(upstream.arrived.wait, 30)
                    assert not upstream.abandoned.is_set()
                    tg.cancel_scope.cancel()
                assert await anyio.to_thread.run_sync(upstream.abandoned.wait, 30), "the server kept working"
                again = await client.call_tool("get_job", {"job_id": job_id})  # the session is still usable
    assert again.is_error is False and again.structured_content["id"] == job_id


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "9000"], "--port needs --transport streamable-http"),
        (
            ["--transport", "streamable-http", "call", "list_jobs"],
            "serving flags do not apply to call",
        ),
        (
            ["--host", "0.0.0.0", "call", "list_jobs"],
            "--host: serving flags do not apply to call",
        ),
        (
            ["--transport", "streamable-http", "--port", "0"],
            "--port: must be a port number",
        ),
    ],
)
def test_http_flag_misuse_is_a_usage_error(argv, message, capsys):
    from openai_checkpoints_mcp.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _process(argv: list[str], env: dict[str, str], root: str) -> Iterator[list[str]]:
    """Start a server process, wait until GET /healthz answers, and stop it (SIGTERM) on exit.

    Yields a list that holds the process's whole output (stdout and stderr) once it has stopped.
    """
    output: list[str] = []
    with (
        tempfile.TemporaryFile("w+") as log,
        subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process,
    ):
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"the server exited ({process.returncode}):\n{log.read()}")
                try:
                    if httpx2.get(f"{root}/healthz", timeout=2).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("the server did not answer /healthz within 60 s")
                time.sleep(0.1)
            yield output
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            finally:
                process.kill()
                log.seek(0)
                output.append(log.read())


async def test_the_cli_serves_http_with_a_token_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    argv = [
        console_script(),
        "--demo",
        "--transport",
        "streamable-http",
        "--port",
        str(port),
        "--auth-token-file",
        str(token_file),
        "--log-level",
        "DEBUG",
    ]
    with _process(argv, clean_env(), root) as output:
        async with mcp_client(root, "legacy") as client:
            result = await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB})
        async with httpx2.AsyncClient() as http:
            unauthorised = await http.post(f"{root}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert result.structured_content["best"]["step_number"] == 240
    assert unauthorised.status_code == 401
    assert f"serving MCP over streamable HTTP at {root}/mcp (bearer token required, sessions)" in output[0]
    assert "Application shutdown complete" in output[0]  # SIGTERM stops it cleanly
    assert TOKEN not in output[0]  # not even at DEBUG


async def test_a_token_in_the_query_string_is_not_written_to_the_access_log():
    """Hardening issue, item 7: ``GET /mcp?token=...`` wrote the token to the access log."""
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    argv = [console_script(), "--demo", "--transport", "streamable-http", "--port", str(port)]
    secrets = ["tok-AAAA1111", "tok-BBBB2222", "tok-CCCC3333", "tok-DDDD4444"]
    query = f"token={secrets[0]}&access_token={secrets[1]}&API_KEY={secrets[2]}&key={secrets[3]}&page=visible7"
    with _process(argv, clean_env(), root) as output:
        async with httpx2.AsyncClient() as http:
            await http.get(f"{root}/healthz?{query}")
    assert "/healthz?token=***&access_token=***&API_KEY=***&key=***&page=visible7" in output[0]
    assert not any(secret in output[0] for secret in secrets)


def test_a_port_in_use_is_one_line_and_exit_1_with_no_start_up_line():
    """Hardening issue, item 9: the start-up line came before binding, and a port in use ended in a uvicorn traceback
    and exit 3."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        argv = [console_script(), "--demo", "--transport", "streamable-http", "--port", str(port)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "serving MCP" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot listen on 127.0.0.1:{port}: ") and "choose another --port" in last


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OPENAI_CHECKPOINTS_MCP_CACHE_URL", "ftp://nowhere"), ("OPENAI_CHECKPOINTS_MCP_TOOLSETS", "nonsense")],
)
def test_the_uvicorn_factory_refuses_a_bad_variable_in_one_line_and_exit_2(variable, value):
    """Not uvicorn's "Error loading ASGI app factory" traceback: the line the CLI prints for the same mistake."""
    argv = [sys.executable, "-m", "uvicorn", "--factory", "openai_checkpoints_mcp.transport.http:create_app"]
    argv += ["--port", str(_free_port())]
    env = clean_env(MCP_AUTH_TOKEN=TOKEN, OPENAI_API_KEY=TEST_KEY, **{variable: value})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and value in done.stderr


async def test_uvicorn_factory_with_workers_in_stateless_mode():
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "openai_checkpoints_mcp.transport.http:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    env = clean_env(
        MCP_AUTH_TOKEN=TOKEN,
        OPENAI_CHECKPOINTS_MCP_DEMO="1",
        OPENAI_CHECKPOINTS_MCP_STATELESS="1",
    )
    with _process(argv, env, root) as output:
        results = []
        for mode in ("legacy", "auto", "legacy", "auto"):
            async with mcp_client(root, mode) as client:
                results.append((await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB})).structured_content)
        async with httpx2.AsyncClient() as http:
            health = (await http.get(f"{root}/healthz")).json()
            unauthorised = await http.post(f"{root}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert [r["best"]["step_number"] for r in results] == [240] * 4
    assert health == {"status": "ok", "version": server_version()}
    assert unauthorised.status_code == 401
    assert TOKEN not in output[0]


def test_http_machinery_is_not_imported_for_stdio():
    code = (
        "import sys; from openai_checkpoints_mcp.cli import build_parser; build_parser(); "
        "import openai_checkpoints_mcp.server; "
        "print(json.dumps(sorted(m for m in ('openai_checkpoints_mcp.http', 'openai_checkpoints_mcp.auth') "
        "if m in sys.modules)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", "import json; " + code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []
