"""Who may reach the HTTP transport: bearer tokens (whole-token comparison, near misses), Host and Origin checks
(DNS rebinding), loopback without a token, token sources, and what the logs and /healthz never show."""

from __future__ import annotations

import json
import socket
import subprocess

import httpx2
import pytest
from mcp import MCPError
from starlette.types import Receive, Scope, Send

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import (
    FakeData,
)
from openai_checkpoints_mcp.server import server_version
from openai_checkpoints_mcp.transport.auth import BearerAuth, is_loopback
from openai_checkpoints_mcp.transport.http import (
    HttpConfigError,
    HttpOptions,
    bind_refusal,
    create_app,
    host_patterns,
    origin_pattern,
    transport_security,
)

from .helpers import (
    DEMO_JOB,
    EDGE_JOB,
    INITIALIZE,
    MCP_HEADERS,
    TEST_KEY,
    TOKEN,
    clean_env,
    console_script,
    demo_server,
    job,
    mcp_client,
    serving,
)

pytestmark = pytest.mark.anyio


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
            for value in (
                f"Bearer {TOKEN}",
                f"bearer {TOKEN}",
                f"Bearer {TOKEN[:-1]}",
                f"Bearer  {TOKEN} ",
                "Bearer ",
            )
        ]
        public = (await http.get("/healthz")).status_code
    assert statuses == [204, 204, 401, 204, 401]
    assert public == 204 and seen == ["/mcp", "/mcp", "/mcp", "/healthz"]
    with pytest.raises(ValueError, match="printable ASCII"):
        BearerAuth(app, "two words")


async def test_wrong_host_gets_421_and_wrong_origin_403():
    options = HttpOptions.from_env(
        {},
        allowed_hosts=["mcp.example.com"],
        allowed_origins=["https://app.example.com"],
    )
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
    assert loopback.allowed_origins == [
        "http://127.0.0.1:*",
        "http://localhost:*",
        "http://[::1]:*",
    ]
    bound = transport_security(HttpOptions(host="10.1.2.3", port=9000, auth_token=TOKEN))
    assert "10.1.2.3:9000" in bound.allowed_hosts and "http://10.1.2.3:9000" in bound.allowed_origins
    v6 = transport_security(HttpOptions(host="2001:db8::5", port=9000, auth_token=TOKEN))
    assert "[2001:db8::5]:9000" in v6.allowed_hosts
    wildcard = transport_security(HttpOptions(host="0.0.0.0", auth_token=TOKEN, allowed_hosts=("mcp.example.com",)))
    assert wildcard.enable_dns_rebinding_protection is True
    assert wildcard.allowed_hosts == [
        "127.0.0.1:*",
        "localhost:*",
        "[::1]:*",
        "mcp.example.com",
    ]


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
    for bad in (
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com/path",
        "https://",
    ):
        with pytest.raises(HttpConfigError, match="scheme://host"):
            origin_pattern(bad)


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "mcp.example.com", "128.0.0.1"],
)
def test_other_hosts_need_a_token(host):
    assert not is_loopback(host)
    message = bind_refusal(HttpOptions(host=host))
    assert message is not None and "\n" not in message
    assert "MCP_AUTH_TOKEN" in message and "--auth-token-file" in message
    assert bind_refusal(HttpOptions(host=host, auth_token=TOKEN)) is None


def test_the_cli_refuses_to_listen_on_all_interfaces_without_a_token():
    run = subprocess.run(
        [
            console_script(),
            "--demo",
            "--transport",
            "streamable-http",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
        ],
        env=clean_env(),
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


def test_an_endless_token_file_is_refused_after_4_kb_with_one_line(tmp_path):
    """Hardening issue, item 7: ``--auth-token-file /dev/zero`` read 3.6 GB before failing."""
    argv = [console_script(), "--demo", "--transport", "streamable-http", "--auth-token-file", "/dev/zero"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env=clean_env())
    assert done.returncode == 2
    assert done.stderr == "error: the token file /dev/zero is longer than 4096 bytes; put only the bearer token in it\n"
    (tmp_path / "long").write_text("a" * 4097)
    with pytest.raises(HttpConfigError, match="longer than 4096 bytes"):
        HttpOptions.from_env({}, auth_token_file=str(tmp_path / "long"))
    (tmp_path / "at-limit").write_text("a" * 4096)
    assert HttpOptions.from_env({}, auth_token_file=str(tmp_path / "at-limit")).auth_token == "a" * 4096


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
    env = {
        "OPENAI_CHECKPOINTS_MCP_STATELESS": "1",
        "OPENAI_CHECKPOINTS_MCP_ALLOWED_HOSTS": "a.example, b.example:9",
    }
    options = HttpOptions.from_env(env, allowed_hosts=["c.example:1"])
    assert options.stateless is True
    assert options.allowed_hosts == (
        "a.example",
        "a.example:*",
        "b.example:9",
        "c.example:1",
    )
    assert HttpOptions.from_env(env, stateless=False).stateless is False


def _raw(
    root: str,
    method: str,
    target: str,
    headers: dict[str, str | None],
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One HTTP/1.1 request written by hand (so the request target is sent exactly as given); status and body."""
    status, _, answer = _raw_response(root, method, target, headers, body)
    return status, answer


def _raw_response(
    root: str,
    method: str,
    target: str,
    headers: dict[str, str | None],
    body: bytes = b"",
) -> tuple[int, bytes, bytes]:
    """`_raw`, with the response's header block too: status, headers, body."""
    host, port = root.removeprefix("http://").rsplit(":", 1)
    sent = {
        "Host": f"127.0.0.1:{port}",
        **MCP_HEADERS,
        "Content-Length": str(len(body)),
        "Connection": "close",
    }
    sent.update(headers)
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items() if v is not None)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    head, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), b"\r\n" + head, payload


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
        assert status == 200 and json.loads(body) == {
            "status": "ok",
            "version": server_version(),
        }
    assert post[0] in (401, 405) and b"version" not in post[1]


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


async def test_no_key_or_token_in_the_logs_of_an_http_server_at_debug(serve_fake, captured_logs):
    with (
        serve_fake(FakeData(jobs=[job(EDGE_JOB)])) as api,
        serving(create_app(api.settings, HttpOptions(auth_token=TOKEN))) as root,
    ):
        async with mcp_client(root) as client:
            await client.call_tool("get_job", {"job_id": EDGE_JOB})
        async with httpx2.AsyncClient() as http:
            await http.post(
                f"{root}/mcp",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Authorization": "Bearer nope"},
            )
    assert "rejected POST /mcp" in captured_logs.text  # the logs were captured
    assert TOKEN not in captured_logs.text and TEST_KEY not in captured_logs.text


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
        still = _raw(
            root,
            "POST",
            "/mcp",
            {"Host": "evil.example:8000"},
            json.dumps(INITIALIZE).encode(),
        )[0]
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


# Merged: the loopback hosts of the original HTTP tests and the spellings added for issue 4.
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.8.9.10",
        "127.255.255.254",
        "localhost",
        "LOCALHOST",
        "::1",
        "[::1]",
        "0:0:0:0:0:0:0:1",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
    ],
)
def test_loopback_hosts_need_no_token(host):
    assert is_loopback(host)
    assert bind_refusal(HttpOptions(host=host)) is None


# Merged: wrong or missing tokens, and the near misses of issue 4 (sent byte for byte, so tabs and NULs go out as
# written); every method of /mcp is refused the same way.
@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, 401),
        ("Bearer wrong-token", 401),
        (f"Basic {TOKEN}", 401),
        ("Bearer", 401),
        (f"Bearer {TOKEN}x", 401),
        (f"Bearer {TOKEN} extra", 401),
        (f"Bearer\t{TOKEN}", 401),
        (f"Token {TOKEN}", 401),
        (TOKEN, 401),
        (f"Bearer {TOKEN.upper()}", 401),
        ("Bearer " + TOKEN[:8], 401),
        (f"Bearer {TOKEN}\x00", 400),  # the HTTP server refuses a header with a NUL outright, before our app
    ],
)
async def test_requests_without_the_right_token_are_refused(authorization, expected, captured_logs):
    body = json.dumps(INITIALIZE).encode()
    with demo_server() as root:
        answers = [
            _raw_response(root, method, "/mcp", {"Authorization": authorization}, body if method == "POST" else b"")
            for method in ("POST", "GET", "DELETE")
        ]
    for status, head, answer in answers:
        assert status == expected, (status, answer)
        assert b"protocolVersion" not in answer and TOKEN.encode() not in answer
        if expected == 401:
            assert b"\r\nwww-authenticate: bearer" in head.lower()
            assert json.loads(answer)["error"] == "invalid_token"
    assert TOKEN not in captured_logs.text
    if expected == 401:
        assert "rejected POST /mcp" in captured_logs.text
