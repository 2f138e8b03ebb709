"""The streamable HTTP transport over real HTTP on 127.0.0.1: bearer auth, DNS-rebinding protection, /healthz,
progress and cancellation, the refusal to listen beyond loopback without a token, the CLI and the uvicorn factory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from starlette.types import ASGIApp, Receive, Scope, Send

from openai_checkpoints_mcp.auth import BearerAuth, is_loopback
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import DEMO_JOB_IDS, FakeData, FakeOpenAI, running_server
from openai_checkpoints_mcp.http import (
    HttpConfigError,
    HttpOptions,
    bind_refusal,
    create_app,
    host_patterns,
    origin_pattern,
    transport_security,
)
from openai_checkpoints_mcp.server import server_version

from .conftest import TEST_KEY, console_script
from .factories import checkpoint, job

TOKEN = "mcp-test-token-4f1e9c0b7a2d"
DEMO_JOB = DEMO_JOB_IDS["support_bot"]
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve `app` with uvicorn (lifespan on, as in production) on a free 127.0.0.1 port in a background thread;
    yields ``http://127.0.0.1:PORT``."""
    with running_server(app, base_path="", lifespan="on") as url:
        yield url


@contextmanager
def demo_server(**options: Any) -> Iterator[str]:
    """Our server in demo mode over HTTP, with `TOKEN` unless `auth_token` says otherwise."""
    options.setdefault("auth_token", TOKEN)
    with serving(create_app(Settings.from_env({}, demo=True), HttpOptions(**options))) as root:
        yield root


@asynccontextmanager
async def mcp_client(root: str, mode: str = "auto", token: str | None = TOKEN) -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client for ``root/mcp``, sending `token` as a bearer token (if any)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    transport = streamable_http_client(f"{root}/mcp", http_client=create_mcp_http_client(headers=headers))
    async with Client(transport, mode=mode) as client:
        yield client


pytestmark = pytest.mark.anyio


# --- tool calls and authentication --------------------------------------------------------------------------------


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


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"Bearer {TOKEN}x"])
async def test_requests_without_the_right_token_get_401(authorization, captured_logs):
    headers = dict(MCP_HEADERS) | ({"Authorization": authorization} if authorization else {})
    with demo_server() as root:
        async with httpx2.AsyncClient() as http:
            post = await http.post(f"{root}/mcp", json=INITIALIZE, headers=headers)
            get = await http.get(f"{root}/mcp", headers=headers)
            delete = await http.delete(f"{root}/mcp", headers=headers)
    for response in (post, get, delete):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "invalid_token"
        assert TOKEN not in response.text
    assert TOKEN not in captured_logs.text and "rejected POST /mcp" in captured_logs.text


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_the_sdk_client_cannot_connect_without_the_right_token(token, mode):
    with demo_server() as root, pytest.RaisesGroup(MCPError, flatten_subgroups=True):
        async with mcp_client(root, mode, token=token):
            pass


async def test_a_tokenless_server_serves_loopback_connections_only():
    app = create_app(Settings.from_env({}, demo=True), HttpOptions(auth_token=None))
    with serving(app) as root:
        async with mcp_client(root, token=None) as client:
            result = await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB})
    assert result.structured_content["best"]["step_number"] == 240
    # uvicorn --factory --host 0.0.0.0 without a token: a request that arrived on a non-loopback address is refused.
    # (ASGITransport puts the URL's host in the ASGI scope's "server"; nothing leaves the process.)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://192.0.2.10:8000") as http:
        refused = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        health = await http.get("/healthz")
    assert refused.status_code == 403 and "MCP_AUTH_TOKEN" in refused.json()["error_description"]
    assert health.status_code == 200


async def test_bearer_auth_compares_the_whole_token():
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guarded = BearerAuth(app, TOKEN, public_paths=["/healthz"])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=guarded), base_url="http://127.0.0.1") as http:
        statuses = [
            (await http.get("/mcp", headers={"Authorization": value})).status_code
            for value in (f"Bearer {TOKEN}", f"bearer {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer  {TOKEN} ", "Bearer ")
        ]
        public = (await http.get("/healthz")).status_code
    assert statuses == [204, 204, 401, 204, 401]
    assert public == 204 and seen == ["/mcp", "/mcp", "/mcp", "/healthz"]
    with pytest.raises(ValueError, match="printable ASCII"):
        BearerAuth(app, "two words")


# --- DNS rebinding ------------------------------------------------------------------------------------------------


async def test_wrong_host_gets_421_and_wrong_origin_403():
    options = HttpOptions.from_env({}, allowed_hosts=["mcp.example.com"], allowed_origins=["https://app.example.com"])
    with demo_server(allowed_hosts=options.allowed_hosts, allowed_origins=options.allowed_origins) as root:
        port = root.rsplit(":", 1)[1]
        auth = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}

        async def status(**headers: str) -> int:
            async with httpx2.AsyncClient() as http:
                return (await http.post(f"{root}/mcp", json=INITIALIZE, headers={**auth, **headers})).status_code

        assert await status(Host=f"evil.example:{port}") == 421
        assert await status(Host="evil.example") == 421
        assert await status(Origin="http://evil.example") == 403
        assert await status(Origin="https://app.example.com.evil.example") == 403
        assert await status(Origin=f"http://localhost:{port}") == 200
        assert await status(Host=f"localhost:{port}") == 200
        assert await status(Host="mcp.example.com") == 200  # --allowed-host: bare name, any port
        assert await status(Host="mcp.example.com:8443") == 200
        assert await status(Origin="https://app.example.com") == 200  # --allowed-origin


def test_allowed_hosts_and_origins_default_to_loopback_and_the_bound_address():
    loopback = transport_security(HttpOptions())
    assert loopback.enable_dns_rebinding_protection is True
    assert loopback.allowed_hosts == ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    assert loopback.allowed_origins == ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    bound = transport_security(HttpOptions(host="10.1.2.3", port=9000, auth_token=TOKEN))
    assert "10.1.2.3:9000" in bound.allowed_hosts and "http://10.1.2.3:9000" in bound.allowed_origins
    v6 = transport_security(HttpOptions(host="2001:db8::5", port=9000, auth_token=TOKEN))
    assert "[2001:db8::5]:9000" in v6.allowed_hosts
    wildcard = transport_security(HttpOptions(host="0.0.0.0", auth_token=TOKEN, allowed_hosts=("mcp.example.com",)))
    assert wildcard.enable_dns_rebinding_protection is True
    assert wildcard.allowed_hosts == ["127.0.0.1:*", "localhost:*", "[::1]:*", "mcp.example.com"]


@pytest.mark.parametrize(
    ("value", "patterns"),
    [
        ("mcp.example.com", ["mcp.example.com", "mcp.example.com:*"]),
        ("mcp.example.com:8443", ["mcp.example.com:8443"]),
        ("mcp.example.com:*", ["mcp.example.com:*"]),
        ("[2001:db8::1]", ["[2001:db8::1]", "[2001:db8::1]:*"]),
        ("[2001:db8::1]:8000", ["[2001:db8::1]:8000"]),
    ],
)
def test_allowed_host_values(value, patterns):
    assert host_patterns(value) == patterns


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://mcp.example.com", "not a URL"),
        ("mcp.example.com/mcp", "not a URL"),
        ("", "not a URL"),
        ("2001:db8::1", "in brackets"),
        ("mcp.example.com:https", "port must be a number"),
        ("[2001:db8::1]x", "bracketed IPv6"),
        ("*", "only the port can be"),
        ("*.example.com:443", "only the port can be"),
    ],
)
def test_bad_allowed_host_values(value, message):
    with pytest.raises(HttpConfigError, match=message):
        host_patterns(value)


def test_allowed_origin_values():
    assert origin_pattern("https://app.example.com/") == "https://app.example.com"
    assert origin_pattern("http://localhost:*") == "http://localhost:*"
    for bad in ("app.example.com", "ftp://app.example.com", "https://app.example.com/path", "https://"):
        with pytest.raises(HttpConfigError, match="scheme://host"):
            origin_pattern(bad)


# --- /healthz -----------------------------------------------------------------------------------------------------


async def test_healthz_is_public_and_says_only_status_and_version():
    with demo_server() as root:
        async with httpx2.AsyncClient() as http:
            response = await http.get(f"{root}/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "version": server_version()}


# --- progress and cancellation over HTTP --------------------------------------------------------------------------


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
    with running_server(upstream) as base_url:
        # Long timeouts: within this test only a cancelled call can make the server drop its upstream request.
        settings = Settings(api_key=TEST_KEY, base_url=base_url, timeout=120.0, deadline=300.0, max_retries=0)
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


# --- refusing to listen beyond loopback without a token -----------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"])
def test_loopback_hosts_need_no_token(host):
    assert is_loopback(host)
    assert bind_refusal(HttpOptions(host=host)) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "mcp.example.com", "128.0.0.1"])
def test_other_hosts_need_a_token(host):
    assert not is_loopback(host)
    message = bind_refusal(HttpOptions(host=host))
    assert message is not None and "\n" not in message
    assert "MCP_AUTH_TOKEN" in message and "--auth-token-file" in message
    assert bind_refusal(HttpOptions(host=host, auth_token=TOKEN)) is None


def _clean_env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **extra}


def test_the_cli_refuses_to_listen_on_all_interfaces_without_a_token():
    run = subprocess.run(
        [console_script(), "--demo", "--transport", "streamable-http", "--host", "0.0.0.0", "--port", "8000"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to listen on 0.0.0.0 without a bearer token")
    assert "Set MCP_AUTH_TOKEN or pass --auth-token-file PATH" in lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "9000"], "--port needs --transport streamable-http"),
        (["--transport", "streamable-http", "call", "list_jobs"], "serving flags do not apply to call"),
        (["--host", "0.0.0.0", "call", "list_jobs"], "--host: serving flags do not apply to call"),
        (["--transport", "streamable-http", "--port", "0"], "--port: must be a port number"),
    ],
)
def test_http_flag_misuse_is_a_usage_error(argv, message, capsys):
    from openai_checkpoints_mcp.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_token_sources(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n\n")
    assert HttpOptions.from_env({"MCP_AUTH_TOKEN": "from-env"}, auth_token_file=str(token_file)).auth_token == TOKEN
    assert HttpOptions.from_env({"MCP_AUTH_TOKEN": " from-env "}).auth_token == "from-env"
    assert HttpOptions.from_env({"MCP_AUTH_TOKEN_FILE": str(token_file)}).auth_token == TOKEN
    assert HttpOptions.from_env({"MCP_AUTH_TOKEN": ""}).auth_token is None
    assert TOKEN not in repr(HttpOptions(auth_token=TOKEN)) and "auth_token=set" in str(HttpOptions(auth_token=TOKEN))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(HttpConfigError, match="is empty"):
        HttpOptions.from_env({}, auth_token_file=str(tmp_path / "empty"))
    with pytest.raises(HttpConfigError, match="cannot read the token file"):
        HttpOptions.from_env({}, auth_token_file=str(tmp_path / "missing"))
    (tmp_path / "spaced").write_text("two words")
    with pytest.raises(HttpConfigError, match="printable ASCII") as bad:
        HttpOptions.from_env({}, auth_token_file=str(tmp_path / "spaced"))
    assert "two words" not in str(bad.value)
    env = {"OPENAI_CHECKPOINTS_MCP_STATELESS": "1", "OPENAI_CHECKPOINTS_MCP_ALLOWED_HOSTS": "a.example, b.example:9"}
    options = HttpOptions.from_env(env, allowed_hosts=["c.example:1"])
    assert options.stateless is True
    assert options.allowed_hosts == ("a.example", "a.example:*", "b.example:9", "c.example:1")
    assert HttpOptions.from_env(env, stateless=False).stateless is False


# --- the real entry points in subprocesses ------------------------------------------------------------------------


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
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True
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
    with _process(argv, _clean_env(), root) as output:
        async with mcp_client(root, "legacy") as client:
            result = await client.call_tool("best_checkpoint", {"job_id": DEMO_JOB})
        async with httpx2.AsyncClient() as http:
            unauthorised = await http.post(f"{root}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert result.structured_content["best"]["step_number"] == 240
    assert unauthorised.status_code == 401
    assert f"serving MCP over streamable HTTP at {root}/mcp (bearer token required, sessions)" in output[0]
    assert "Application shutdown complete" in output[0]  # SIGTERM stops it cleanly
    assert TOKEN not in output[0]  # not even at DEBUG


async def test_uvicorn_factory_with_workers_in_stateless_mode():
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "openai_checkpoints_mcp.http:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    env = _clean_env(MCP_AUTH_TOKEN=TOKEN, OPENAI_CHECKPOINTS_MCP_DEMO="1", OPENAI_CHECKPOINTS_MCP_STATELESS="1")
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
    run = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []
