"""Adversarial edges of issue 4 (HTTP transport, Azure, write tools), over real HTTP on 127.0.0.1.

* Auth: every path but ``GET /healthz`` needs the token, whatever its spelling, method or encoding.
* DNS rebinding: Host and Origin variants; /healthz says nothing but status and version.
* Secrets: an upstream message cut at its length limit never shows part of the key; nothing logs the key or token.
* Azure: the write tools send api-version and the api-key header, and keep what Azure said and its advice.
* Writes: a retried write whose first answer was lost reports what happened, not "already done".
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openai_checkpoints_mcp.api.errors import parse_error_body
from openai_checkpoints_mcp.config import DEFAULT_AZURE_API_VERSION, Settings
from openai_checkpoints_mcp.fake import DEMO_JOB_IDS, FakeData, FakeOpenAI, Fault, running_server
from openai_checkpoints_mcp.fake.azure import azure_dataset, azure_error_body
from openai_checkpoints_mcp.http import HttpOptions, bind_refusal, create_app
from openai_checkpoints_mcp.server import create_server, server_version

from .conftest import TEST_KEY
from .factories import job
from .test_http import INITIALIZE, MCP_HEADERS, TOKEN, demo_server, mcp_client, serving

pytestmark = pytest.mark.anyio

JOB = "ftjob-Edge0000000000000000000001"


def _text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(block, "text", "") for block in result.content)


def _raw(root: str, method: str, target: str, headers: dict[str, str | None], body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request written by hand (so the request target is sent exactly as given); status and body."""
    host, port = root.removeprefix("http://").rsplit(":", 1)
    sent = {"Host": f"127.0.0.1:{port}", **MCP_HEADERS, "Content-Length": str(len(body)), "Connection": "close"}
    sent.update(headers)
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items() if v is not None)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


# --- auth: no path, method or spelling reaches MCP without the token ----------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/mcp"),
        ("POST", "/mcp/"),
        ("POST", "//mcp"),
        ("POST", "/MCP"),
        ("POST", "/%6dcp"),
        ("POST", "/mcp%2f"),
        ("POST", "/healthz/../mcp"),
        ("POST", "/healthz%2f..%2fmcp"),
        ("POST", "/./mcp"),
        ("POST", "http://127.0.0.1/mcp"),
        ("POST", "/mcp?x=/healthz"),
        ("POST", "/healthz/"),
        ("POST", "/healthz;/mcp"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("HEAD", "/mcp"),
        ("OPTIONS", "/mcp"),
        ("PUT", "/mcp"),
        ("GET", "/"),
        ("GET", "/docs"),
        ("GET", "/HEALTHZ"),
    ],
)
async def test_every_path_but_healthz_needs_the_token(method, target):
    body = json.dumps(INITIALIZE).encode() if method in ("POST", "PUT") else b""
    with demo_server() as root:
        status, answer = _raw(root, method, target, {}, body)
        wrong_status, _ = _raw(root, method, target, {"Authorization": f"Bearer {TOKEN[:-1]}"}, body)
    assert status == 401 and wrong_status == 401, (status, answer)
    assert b"protocolVersion" not in answer and TOKEN.encode() not in answer


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (f"Bearer {TOKEN} extra", 401),
        (f"Bearer\t{TOKEN}", 401),
        (f"Token {TOKEN}", 401),
        (TOKEN, 401),
        (f"Bearer {TOKEN.upper()}", 401),
        ("Bearer " + TOKEN[:8], 401),
        (f"Bearer {TOKEN}\x00", 400),  # the HTTP server refuses a header with a NUL outright, before our app
    ],
)
async def test_near_miss_tokens_get_401(authorization, expected):
    with demo_server() as root:
        status, answer = _raw(root, "POST", "/mcp", {"Authorization": authorization}, json.dumps(INITIALIZE).encode())
    assert status == expected, (status, answer)
    assert b"protocolVersion" not in answer and TOKEN.encode() not in answer


async def test_healthz_says_status_and_version_only_whatever_is_asked():
    with demo_server() as root:
        answers = [
            _raw(root, "GET", "/healthz", headers)
            for headers in (
                {},
                {"Authorization": f"Bearer {TOKEN}"},
                {"Host": "evil.example"},
                {"Origin": "http://evil.example"},
                {"Accept": "text/html"},
            )
        ]
        query = _raw(root, "GET", "/healthz?verbose=1&debug=true", {})
        post = _raw(root, "POST", "/healthz", {}, b"{}")
    for status, body in [*answers, query]:
        assert status == 200 and json.loads(body) == {"status": "ok", "version": server_version()}
    assert post[0] in (401, 405) and b"version" not in post[1]


# --- DNS rebinding -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Host": "evil.example"}, 421),
        ({"Host": "evil.example:8000"}, 421),
        ({"Host": "127.0.0.1.evil.example:8000"}, 421),
        ({"Host": "localhost.evil.example:80"}, 421),
        ({"Host": "LOCALHOST.evil.example:80"}, 421),
        ({"Host": ""}, 421),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "http://localhost.evil.example:80"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "https://127.0.0.1.evil.example"}, 403),
        ({"Origin": "http://127.0.0.1:1234"}, 200),
        ({"Host": "[::1]:8000"}, 200),
    ],
)
async def test_host_and_origin_variants(headers, expected):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with demo_server() as root:
        status, _ = _raw(root, "POST", "/mcp", {**auth, **headers}, json.dumps(INITIALIZE).encode())
    assert status == expected


# --- secrets --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["openai-message", "azure-detail", "azure-target", "redirect-location"])
async def test_an_upstream_text_cut_at_its_limit_never_shows_part_of_the_key(serve_fake, shape, captured_logs):
    """Upstream texts are shortened (300 characters for a message, 120 for a detail, 200 for a Location): the key
    must be masked before the cut, or a key that straddles the cut shows its first characters."""
    faults = {
        "openai-message": Fault(
            status=400,
            body={
                "error": {
                    "message": "x" * 280 + " " + TEST_KEY,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
        "azure-detail": Fault(
            status=400,
            body=azure_error_body("BadRequest", "Bad.", details=[{"code": "X", "message": "y" * 100 + TEST_KEY}]),
            headers={"apim-request-id": "0f3c5b7e-6a1d-4c52-9a43-1f6f3c2b8e10"},
        ),
        "azure-target": Fault(
            status=400,
            body=azure_error_body("BadRequest", "Bad.", target="t" * 105 + TEST_KEY),
            headers={"apim-request-id": "0f3c5b7e-6a1d-4c52-9a43-1f6f3c2b8e10"},
        ),
        "redirect-location": Fault(status=302, body=b"", headers={"location": "https://h/" + "a" * 180 + TEST_KEY}),
    }
    with serve_fake(FakeData(jobs=[job(JOB)])) as api:
        api.faults.add(faults[shape])
        async with api.client() as client:
            result = await client.call_tool("get_job", {"job_id": JOB})
    text = _text(result)
    assert TEST_KEY[:10] not in result.model_dump_json(), text
    # httpcore2's own DEBUG trace prints raw response headers (the Location echoing the key): not ours to mask
    ours = [r.getMessage() for r in captured_logs.records if not r.name.startswith("httpcore")]
    assert ours and not any(TEST_KEY[:10] in message for message in ours)


async def test_no_key_or_token_in_the_logs_of_an_http_server_at_debug(serve_fake, captured_logs):
    with (
        serve_fake(FakeData(jobs=[job(JOB)])) as api,
        serving(create_app(api.settings, HttpOptions(auth_token=TOKEN))) as root,
    ):
        async with mcp_client(root) as client:
            await client.call_tool("get_job", {"job_id": JOB})
        async with httpx2.AsyncClient() as http:
            await http.post(f"{root}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer nope"})
    assert "rejected POST /mcp" in captured_logs.text  # the logs were captured
    assert TOKEN not in captured_logs.text and TEST_KEY not in captured_logs.text


# --- upstream error bodies of every shape --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"error": ' * 50_000,
        b'{"error": {"innererror": ' + b'{"innererror": ' * 50_000,
    ],
)
def test_a_deeply_nested_error_body_is_just_not_understood(body):
    assert parse_error_body(body) is None


async def test_a_deeply_nested_error_body_is_still_a_coded_tool_error(serve_fake):
    with serve_fake(FakeData(jobs=[job(JOB)])) as api:
        api.faults.add(Fault(status=400, body=b"[" * 100_000, content_type="application/json"))
        async with api.client() as client:
            text = _text(await client.call_tool("get_job", {"job_id": JOB}))
    assert text.startswith(f"invalid_argument: The API refused the request for job {JOB} (HTTP 400)."), text


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"oops"',
        b"<html>502</html>",
        b"\xff\xfe\x00garbage",
        b'{"error": null}',
        b'{"error": []}',
        b'{"error": {"message": {"nested": 1}, "code": true}}',
        b'{"error": {"code": 12345}}',
        b'{"message": "top-level only"}',
        b'{"error": {"message": "' + b"z" * 2_000_000 + b'"}}',
    ],
)
async def test_error_bodies_of_every_shape_give_coded_errors(serve_fake, body):
    with serve_fake(FakeData(jobs=[job(JOB)])) as api:
        api.faults.add(Fault(status=400, body=body, content_type="application/json"))
        async with api.client() as client:
            text = _text(await client.call_tool("get_job", {"job_id": JOB}))
    assert text.startswith("invalid_argument: The API refused the request for job "), text[:300]
    assert len(text) < 1500


# --- the write tools on Azure --------------------------------------------------------------------------------------

AZURE = azure_dataset()
AZURE_RUNNING = next(j["id"] for j in AZURE.jobs if j["status"] == "running")
AZURE_DONE = next(j["id"] for j in AZURE.jobs if j["status"] == "succeeded")


@pytest.mark.parametrize("flavour", ["azure", "azure-v1"])
async def test_write_tools_on_azure_send_the_key_header_and_api_version(serve_fake_flavoured, flavour):
    data = azure_dataset()
    with serve_fake_flavoured(data, flavour) as api:
        async with api.client(allow_writes=True) as client:
            paused = (await client.call_tool("pause_job", {"job_id": AZURE_RUNNING})).structured_content
            resumed = (await client.call_tool("resume_job", {"job_id": AZURE_RUNNING})).structured_content
            cancelled = (await client.call_tool("cancel_job", {"job_id": AZURE_RUNNING})).structured_content
        posts = [r for r in api.faults.requests if r.method == "POST"]
    assert [paused["status"], resumed["status"], cancelled["status"]] == ["paused", "queued", "cancelled"]
    assert [r.path.rsplit("/", 1)[1] for r in posts] == ["pause", "resume", "cancel"]
    for request in posts:
        assert request.headers["api-key"] == TEST_KEY and "authorization" not in request.headers
        expected = [DEFAULT_AZURE_API_VERSION] if flavour == "azure" else None
        assert request.query.get("api-version") == expected


async def test_an_azure_refusal_of_a_write_keeps_what_azure_said(serve_fake_flavoured):
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client(allow_writes=True) as client:
            text = _text(await client.call_tool("cancel_job", {"job_id": AZURE_DONE}))
    assert text.startswith(f"invalid_argument: Job {AZURE_DONE} has already finished (succeeded)"), text
    assert f'The API said: "Cannot cancel job {AZURE_DONE}: the job has already completed" (code BadRequest)' in text


async def test_a_write_refused_for_its_api_version_says_so(serve_fake_flavoured):
    """A 400 for a wrong api-version is not the job's state: the write keeps Azure's api-version advice."""
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client(allow_writes=True, api_version="2024-10") as client:
            text = _text(await client.call_tool("cancel_job", {"job_id": AZURE_RUNNING}))
    assert text.startswith("invalid_argument: Azure OpenAI refused the api-version of the request"), text
    assert "OPENAI_API_VERSION" in text and "only a job that is" not in text


# --- a write whose first answer was lost ---------------------------------------------------------------------------


class LoseFirstAnswer:
    """Pass requests to `app`, but swallow its answer to the first POST whose path contains `part` and send a 502
    instead, as a proxy does when the upstream answer is lost: the write happened, the client cannot know."""

    def __init__(self, app: ASGIApp, part: str) -> None:
        self.app, self.part, self.lost = app, part, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or self.part not in scope["path"] or self.lost:
            await self.app(scope, receive, send)
            return
        self.lost += 1

        async def swallow(_: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        body = json.dumps(
            {"error": {"message": "Bad gateway.", "type": "server_error", "param": None, "code": None}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 502,
                "headers": [(b"content-type", b"application/json"), (b"retry-after-ms", b"1")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(
    ("tool", "before", "after"),
    [
        ("cancel_job", "running", "cancelled"),
        ("pause_job", "running", "paused"),
        ("resume_job", "paused", "queued"),
    ],
)
async def test_a_retried_write_whose_first_answer_was_lost_reports_that_it_happened(tool, before, after):
    fake = FakeOpenAI(FakeData(jobs=[job(JOB, status=before)]), api_key=TEST_KEY)
    upstream = LoseFirstAnswer(fake, "/" + tool.removesuffix("_job"))
    with running_server(upstream) as base_url:
        settings = Settings(api_key=TEST_KEY, base_url=base_url, timeout=5.0, deadline=30.0, allow_writes=True)
        async with Client(create_server(settings)) as client:
            result = await client.call_tool(tool, {"job_id": JOB})
    assert fake.data.jobs[0]["status"] == after
    assert [r.method for r in fake.requests] == ["POST", "POST", "GET"]  # lost, refused retry, status read
    assert result.is_error is False, result.content[0].text
    assert result.structured_content["status"] == after
    assert "retried" in result.structured_content["message"]


async def test_a_write_to_a_job_already_in_that_state_is_still_refused(serve_fake):
    """Without a retry, "already cancelled" is the API's honest answer and stays an error."""
    with serve_fake(FakeData(jobs=[job(JOB, status="cancelled")])) as api:
        async with api.client(allow_writes=True) as client:
            text = _text(await client.call_tool("cancel_job", {"job_id": JOB}))
    assert text.startswith(f"invalid_argument: Job {JOB} is already cancelled, so there is nothing to cancel.")


# --- write tools are unreachable without the flag, over HTTP too ---------------------------------------------------

RUNNING_DEMO_JOB = DEMO_JOB_IDS["running"]


@pytest.mark.parametrize("stateless", [False, True])
async def test_write_tools_cannot_be_reached_over_http_without_the_flag(mode, stateless):
    with demo_server(stateless=stateless) as root:
        async with mcp_client(root, mode) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            with pytest.raises(MCPError, match="Unknown tool"):
                await client.call_tool("cancel_job", {"job_id": RUNNING_DEMO_JOB})
            job = (await client.call_tool("get_job", {"job_id": RUNNING_DEMO_JOB})).structured_content
        # a bare JSON-RPC call, with the headers that name the tool for the transport's own parameter check; with
        # sessions, after an initialize handshake whose session it names (else the transport refuses it unread)
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}", "Mcp-Protocol-Version": "2025-11-25"}
        async with httpx2.AsyncClient() as http:
            if not stateless:
                init = await http.post(f"{root}/mcp", json=INITIALIZE, headers=headers)
                headers["Mcp-Session-Id"] = init.headers["mcp-session-id"]
                initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                assert (await http.post(f"{root}/mcp", json=initialized, headers=headers)).status_code == 202
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "cancel_job", "arguments": {"job_id": RUNNING_DEMO_JOB}},
            }
            raw = await http.post(
                f"{root}/mcp", json=call, headers={**headers, "Mcp-Method": "tools/call", "Mcp-Name": "cancel_job"}
            )
            after = await http.post(
                f"{root}/mcp",
                headers=headers,
                json={
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {"name": "get_job", "arguments": {"job_id": RUNNING_DEMO_JOB}},
                },
            )
    assert not names & {"cancel_job", "pause_job", "resume_job"}
    assert job["status"] == "running"  # the demo job is untouched
    assert raw.status_code == 200 and '"code":-32602' in raw.text and "Unknown tool: cancel_job" in raw.text
    assert after.status_code == 200 and '"status":"running"' in after.text  # still untouched after the raw call


def test_an_azure_key_never_goes_out_as_bearer_from_the_environment():
    azure = Settings.from_env(
        {
            "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/",
            "AZURE_OPENAI_API_KEY": "k",
            "OPENAI_API_KEY": "sk-openai",
        }
    )
    assert (azure.api_key, azure.auth_header) == ("k", "api-key")
    v1 = Settings.from_env({"OPENAI_BASE_URL": "https://r.openai.azure.com/openai/v1/", "AZURE_OPENAI_API_KEY": "k"})
    assert (v1.api_key, v1.auth_header, v1.api_version) == ("k", "api-key", None)
    demo = Settings.from_env({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}, demo=True)
    assert demo.azure is False and demo.api_key is None


@pytest.mark.parametrize(
    ("host", "token"),
    [
        ("0.0.0.0", TOKEN),
        ("::", TOKEN),
        ("", TOKEN),
        ("10.1.2.3", TOKEN),
        ("mcp.internal", TOKEN),
        ("127.0.0.1", None),
        ("localhost", None),
    ],
)
async def test_dns_rebinding_protection_is_applied_whatever_address_is_bound(host, token):
    """The SDK turns the protection off for a non-loopback `host` unless told: the app built for any bind address
    still answers a foreign Host with 421 and a foreign Origin with 403 (served here on 127.0.0.1). A tokenless
    loopback server, the one a rebinding page would target, too."""
    app = create_app(Settings.from_env({}, demo=True), HttpOptions(host=host, auth_token=token))
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    body = json.dumps(INITIALIZE).encode()
    with serving(app) as root:
        foreign_host = _raw(root, "POST", "/mcp", {**auth, "Host": "evil.example:8000"}, body)[0]
        foreign_origin = _raw(root, "POST", "/mcp", {**auth, "Origin": "http://evil.example"}, body)[0]
        sse = _raw(root, "GET", "/mcp", {**auth, "Host": "evil.example"})[0]
        fine = _raw(root, "POST", "/mcp", auth, body)[0]
    assert (foreign_host, foreign_origin, sse, fine) == (421, 403, 421, 200)


async def test_a_rejected_request_cannot_forge_log_lines(captured_logs):
    """The path of a rejected request is logged; an encoded line break in it must not start a new log line."""
    with demo_server() as root:
        status, _ = _raw(root, "POST", "/mcp%0d%0aCRITICAL%20forged:%20token%20accepted", {}, b"{}")
    assert status == 401
    (line,) = [r.getMessage() for r in captured_logs.records if r.getMessage().startswith("rejected POST")]
    assert "\n" not in line and "\r" not in line and "forged" in line


@pytest.mark.parametrize("flavour", ["azure", "azure-v1"])
async def test_a_write_refused_with_403_on_azure_gives_azure_advice(serve_fake_flavoured, flavour):
    denied = Fault(
        status=403,
        body=azure_error_body("PermissionDenied", "Principal does not have access."),
        headers={"apim-request-id": "0f3c5b7e-6a1d-4c52-9a43-1f6f3c2b8e10"},
        path_contains="/cancel",
    )
    with serve_fake_flavoured(azure_dataset(), flavour) as api:
        api.faults.add(denied)
        async with api.client(allow_writes=True) as client:
            text = _text(await client.call_tool("cancel_job", {"job_id": AZURE_RUNNING}))
    assert text.startswith(f"permission_denied: The API key may not cancel job {AZURE_RUNNING} (HTTP 403)."), text
    assert "AZURE_OPENAI_ENDPOINT" in text and "OPENAI_ORG_ID" not in text and "OPENAI_PROJECT_ID" not in text


@pytest.mark.parametrize(
    ("bound", "host_header"),
    [
        ("127.0.0.2", "127.0.0.2:8000"),
        ("127.8.9.10", "127.8.9.10:8000"),
        ("::ffff:127.0.0.1", "[::ffff:127.0.0.1]:8000"),
    ],
)
async def test_a_server_bound_to_another_loopback_address_answers_its_own_host(bound, host_header):
    """Bound to a loopback address other than 127.0.0.1 (allowed without a token), the server must accept the Host
    header its clients send for that address, as it does for any other specific bound address."""
    app = create_app(Settings.from_env({}, demo=True), HttpOptions(host=bound, port=8000))
    with serving(app) as root:
        status, _ = _raw(root, "POST", "/mcp", {"Host": host_header}, json.dumps(INITIALIZE).encode())
        still = _raw(root, "POST", "/mcp", {"Host": "evil.example:8000"}, json.dumps(INITIALIZE).encode())[0]
    assert (status, still) == (200, 421)


@pytest.mark.parametrize(
    "host",
    [
        "0.0.0.0",
        "::",
        "[::]",
        "0:0:0:0:0:0:0:0",
        "::ffff:0.0.0.0",
        "::ffff:10.0.0.1",
        "127.1",
        "localhost.",
        "localhost.example.com",
        "127.0.0.1.nip.io",
        "0",
        " 0.0.0.0 ",
    ],
)
def test_blank_tokens_do_not_open_non_loopback_addresses(host):
    """A whitespace token counts as none; every spelling of "all interfaces" or of another address (and any name
    that would have to be resolved) needs a real one."""
    for env in ({}, {"MCP_AUTH_TOKEN": " \t "}, {"MCP_AUTH_TOKEN": ""}):
        options = HttpOptions.from_env(env, host=host)
        assert options.auth_token is None and bind_refusal(options) is not None


@pytest.mark.parametrize("host", ["0:0:0:0:0:0:0:1", "::ffff:7f00:1", "127.255.255.254", "LOCALHOST", "[::1]"])
def test_loopback_spellings_need_no_token(host):
    assert bind_refusal(HttpOptions(host=host)) is None


# --- the CI helper fails when a check fails ------------------------------------------------------------------------


def _helper(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(__file__).resolve().parents[1] / ".ci" / "mcp_checks.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=60)


def _inspector_output(tmp_path: Path, result: dict[str, Any]) -> str:
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"result": result}))
    return str(path)


def test_the_ci_helper_fails_on_a_bad_tools_list_or_tool_result(tmp_path):
    core = [
        {"name": name}
        for name in (
            "list_jobs",
            "get_job",
            "list_checkpoints",
            "best_checkpoint",
            "compare_jobs",
            "training_metrics",
            "list_events",
        )
    ]
    assert _helper("tools-list", _inspector_output(tmp_path, {"tools": core})).returncode == 0
    missing = _helper("tools-list", _inspector_output(tmp_path, {"tools": core[1:]}))
    writes = _helper("tools-list", _inspector_output(tmp_path, {"tools": [*core, {"name": "cancel_job"}]}))
    error = _helper("best-checkpoint", _inspector_output(tmp_path, {"isError": True, "content": []}), "ftjob-x")
    not_json = tmp_path / "bad.json"
    not_json.write_text("Error: connection refused")
    garbage = _helper("tools-list", str(not_json))
    for run, needle in [
        (missing, "lacks ['list_jobs']"),
        (writes, "write tools ['cancel_job']"),
        (error, "returned an error"),
        (garbage, "is not JSON"),
    ]:
        assert run.returncode == 1 and needle in run.stderr, run.stderr


def test_the_ci_helper_fails_on_a_conformance_warning_or_nothing_run(tmp_path):
    def scenario(checks: list[dict[str, str]]) -> subprocess.CompletedProcess[str]:
        folder = tmp_path / "server-ping-2026"
        folder.mkdir(exist_ok=True)
        (folder / "checks.json").write_text(json.dumps(checks))
        return _helper("conformance", str(tmp_path), "ping")

    assert scenario([{"id": "ping", "status": "SUCCESS"}]).returncode == 0
    assert scenario([{"id": "ping", "status": "SUCCESS"}, {"id": "x", "status": "WARNING"}]).returncode == 1
    assert scenario([{"id": "ping", "status": "SKIPPED"}]).returncode == 1
    assert _helper("conformance", str(tmp_path), "tools-list").returncode == 1  # no checks.json at all
    assert _helper("no-such-command").returncode == 1


async def test_a_too_deeply_nested_success_body_is_a_bad_response(serve_fake):
    from openai_checkpoints_mcp.fake import FakeData as _Data
    from openai_checkpoints_mcp.fake import Fault as _Fault

    with serve_fake(_Data()) as api:
        api.faults.add(_Fault(status=200, body=b"[" * 100_000, content_type="application/json"))
        async with api.client() as client:
            result = await client.call_tool("get_job", {"job_id": "ftjob-Deep00000000000000000001"})
    assert result.is_error and result.content[0].text.startswith("bad_response: ")
