"""The opt-in write tools (cancel_job, pause_job, resume_job): enabling them, one POST per write, refusals, retries
of a POST, Azure, the HTTP transport, demo mode, and the cached listing a write drops."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openai_checkpoints_mcp.cli import _call, _settings, build_parser
from openai_checkpoints_mcp.config import (
    ALLOW_WRITES_ENV,
    DEFAULT_AZURE_API_VERSION,
    Settings,
)
from openai_checkpoints_mcp.fake import (
    DEMO_JOB_IDS,
    FakeData,
    FakeOpenAI,
    Fault,
)
from openai_checkpoints_mcp.fake.azure import azure_dataset, azure_error_body
from openai_checkpoints_mcp.server import create_server
from openai_checkpoints_mcp.tools.common import DEMO_NOTICE

from .helpers import (
    BASE,
    EDGE_JOB,
    INITIALIZE,
    MCP_HEADERS,
    TEST_KEY,
    TOKEN,
    WRITE_TOOLS,
    demo_server,
    error_texts,
    job,
    mcp_client,
    serve_app,
    sweep_data,
)

pytestmark = pytest.mark.anyio


def _listings(api: Any) -> list[Any]:
    return [r for r in api.faults.requests if r.path.endswith("/fine_tuning/jobs")]


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
    assert [paused["status"], resumed["status"], cancelled["status"]] == [
        "paused",
        "queued",
        "cancelled",
    ]
    assert [r.path.rsplit("/", 1)[1] for r in posts] == ["pause", "resume", "cancel"]
    for request in posts:
        assert request.headers["api-key"] == TEST_KEY and "authorization" not in request.headers
        expected = [DEFAULT_AZURE_API_VERSION] if flavour == "azure" else None
        assert request.query.get("api-version") == expected


async def test_an_azure_refusal_of_a_write_keeps_what_azure_said(serve_fake_flavoured):
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client(allow_writes=True) as client:
            text = error_texts(await client.call_tool("cancel_job", {"job_id": AZURE_DONE}))
    assert text.startswith(f"invalid_argument: Job {AZURE_DONE} has already finished (succeeded)"), text
    assert f'The API said: "Cannot cancel job {AZURE_DONE}: the job has already completed" (code BadRequest)' in text


async def test_a_write_refused_for_its_api_version_says_so(serve_fake_flavoured):
    """A 400 for a wrong api-version is not the job's state: the write keeps Azure's api-version advice."""
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client(allow_writes=True, api_version="2024-10") as client:
            text = error_texts(await client.call_tool("cancel_job", {"job_id": AZURE_RUNNING}))
    assert text.startswith("invalid_argument: Azure OpenAI refused the api-version of the request"), text
    assert "OPENAI_API_VERSION" in text and "only a job that is" not in text


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
            {
                "error": {
                    "message": "Bad gateway.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 502,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after-ms", b"1"),
                ],
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
    fake = FakeOpenAI(FakeData(jobs=[job(EDGE_JOB, status=before)]), api_key=TEST_KEY)
    upstream = LoseFirstAnswer(fake, "/" + tool.removesuffix("_job"))
    with serve_app(upstream) as base_url:
        settings = Settings(
            api_key=TEST_KEY,
            base_url=base_url,
            timeout=5.0,
            deadline=30.0,
            allow_writes=True,
        )
        async with Client(create_server(settings)) as client:
            result = await client.call_tool(tool, {"job_id": EDGE_JOB})
    assert fake.data.jobs[0]["status"] == after
    assert [r.method for r in fake.requests] == [
        "POST",
        "POST",
        "GET",
    ]  # lost, refused retry, status read
    assert result.is_error is False, result.content[0].text
    assert result.structured_content["status"] == after
    assert "retried" in result.structured_content["message"]


async def test_a_write_to_a_job_already_in_that_state_is_still_refused(serve_fake):
    """Without a retry, "already cancelled" is the API's honest answer and stays an error."""
    with serve_fake(FakeData(jobs=[job(EDGE_JOB, status="cancelled")])) as api:
        async with api.client(allow_writes=True) as client:
            text = error_texts(await client.call_tool("cancel_job", {"job_id": EDGE_JOB}))
    assert text.startswith(f"invalid_argument: Job {EDGE_JOB} is already cancelled, so there is nothing to cancel.")


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
        headers = {
            **MCP_HEADERS,
            "Authorization": f"Bearer {TOKEN}",
            "Mcp-Protocol-Version": "2025-11-25",
        }
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
                "params": {
                    "name": "cancel_job",
                    "arguments": {"job_id": RUNNING_DEMO_JOB},
                },
            }
            raw = await http.post(
                f"{root}/mcp",
                json=call,
                headers={
                    **headers,
                    "Mcp-Method": "tools/call",
                    "Mcp-Name": "cancel_job",
                },
            )
            after = await http.post(
                f"{root}/mcp",
                headers=headers,
                json={
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {
                        "name": "get_job",
                        "arguments": {"job_id": RUNNING_DEMO_JOB},
                    },
                },
            )
    assert WRITE_TOOLS and not names & WRITE_TOOLS
    assert job["status"] == "running"  # the demo job is untouched
    assert raw.status_code == 200 and '"code":-32602' in raw.text and "Unknown tool: cancel_job" in raw.text
    assert after.status_code == 200 and '"status":"running"' in after.text  # still untouched after the raw call


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
            text = error_texts(await client.call_tool("cancel_job", {"job_id": AZURE_RUNNING}))
    assert text.startswith(f"permission_denied: The API key may not cancel job {AZURE_RUNNING} (HTTP 403)."), text
    assert "AZURE_OPENAI_ENDPOINT" in text and "OPENAI_ORG_ID" not in text and "OPENAI_PROJECT_ID" not in text


JOB = "ftjob-Wr1teT00ls000000000000001"


JOB_PATH = f"/v1/fine_tuning/jobs/{JOB}"


ACTION = {"cancel_job": "cancel", "pause_job": "pause", "resume_job": "resume"}


def _data(status: str) -> FakeData:
    return FakeData(jobs=[job(JOB, status=status)])


def _text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(block, "text", "") for block in result.content)


def _seen(requests: list[Any]) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in requests]


def test_flag_and_environment_variable_set_allow_writes(monkeypatch):
    monkeypatch.delenv(ALLOW_WRITES_ENV, raising=False)
    parse = build_parser().parse_args
    assert _settings(parse([])).allow_writes is False
    assert _settings(parse(["call", "cancel_job"])).allow_writes is False
    assert _settings(parse(["--allow-writes"])).allow_writes is True
    assert _settings(parse(["call", "cancel_job", "--allow-writes"])).allow_writes is True
    assert _settings(parse(["--allow-writes", "call", "cancel_job"])).allow_writes is True
    monkeypatch.setenv(ALLOW_WRITES_ENV, "1")
    assert _settings(parse([])).allow_writes is True
    for value, expected in [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
    ]:
        assert Settings.from_env({ALLOW_WRITES_ENV: value}).allow_writes is expected, value
    assert Settings.from_env({}).allow_writes is False


async def test_write_tools_do_not_exist_by_default(serve_fake, mode):
    with serve_fake(_data("running")) as api:
        async with api.client(mode) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            for tool in sorted(WRITE_TOOLS):
                with pytest.raises(MCPError) as raised:
                    await client.call_tool(tool, {"job_id": JOB})
                assert raised.value.error.code == -32602
                assert tool in raised.value.error.message
            instructions = client.instructions
        assert api.faults.requests == []
    assert names and not names & WRITE_TOOLS
    assert api.fake.data.jobs[0]["status"] == "running"
    assert instructions is not None and "All tools are read-only." in instructions and "cancel_job" not in instructions


async def test_allow_writes_adds_exactly_the_write_tools_with_write_annotations(
    serve_fake,
):
    with serve_fake(_data("running")) as api:
        async with api.client() as client:
            default = {tool.name for tool in (await client.list_tools()).tools}
        async with api.client(allow_writes=True) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            instructions = client.instructions
        assert api.faults.requests == []
    assert set(tools) == default | WRITE_TOOLS
    for name in WRITE_TOOLS:
        tool = tools[name]
        annotations = tool.annotations
        assert annotations is not None
        assert (
            annotations.read_only_hint,
            annotations.destructive_hint,
            annotations.idempotent_hint,
            annotations.open_world_hint,
        ) == (False, True, False, True), name
        assert tool.output_schema is not None
        assert set(tool.output_schema["properties"]) == {
            "id",
            "status",
            "model",
            "fine_tuned_model",
            "message",
            "notice",
        }
        assert list(tool.input_schema["properties"]) == ["job_id"] and tool.input_schema["required"] == ["job_id"]
        assert "for real" in tool.description and "confirm" in tool.description
    assert "Only a running job can be paused" in tools["pause_job"].description
    assert "Only a paused job can be resumed" in tools["resume_job"].description
    for name in default:  # the read tools keep their read-only annotations
        assert tools[name].annotations is not None and tools[name].annotations.read_only_hint is True
    assert instructions is not None and "cancel_job, pause_job and resume_job change a job for real" in instructions
    assert "All tools are read-only" not in instructions


async def test_the_environment_variable_enables_them(serve_fake):
    with serve_fake(_data("running")) as api:
        env = {
            "OPENAI_API_KEY": TEST_KEY,
            "OPENAI_BASE_URL": api.base_url,
            ALLOW_WRITES_ENV: "1",
        }
        server = create_server(Settings.from_env(env, timeout=5.0))
        async with Client(server) as client:
            assert {tool.name for tool in (await client.list_tools()).tools} >= WRITE_TOOLS
            result = await client.call_tool("pause_job", {"job_id": JOB})
    assert result.is_error is False and result.structured_content["status"] == "paused"


@pytest.mark.parametrize(
    ("tool", "before", "after", "said"),
    [
        ("cancel_job", "running", "cancelled", "is cancelled: training has stopped"),
        ("cancel_job", "queued", "cancelled", "cannot be undone"),
        ("cancel_job", "validating_files", "cancelled", "is cancelled"),
        ("cancel_job", "paused", "cancelled", "is cancelled"),
        (
            "pause_job",
            "running",
            "paused",
            "is paused: training has stopped. resume_job continues it",
        ),
        (
            "resume_job",
            "paused",
            "queued",
            "was resumed: it is queued and will be running again shortly",
        ),
    ],
)
async def test_each_tool_changes_the_job_with_one_post(serve_fake, mode, tool, before, after, said):
    with serve_fake(_data(before)) as api:
        async with api.client(mode, allow_writes=True) as client:
            result = await client.call_tool(tool, {"job_id": JOB})
            posts = list(api.fake.requests)
            read_back = await client.call_tool("get_job", {"job_id": JOB})
    assert result.is_error is False
    data = result.structured_content
    assert {k: v for k, v in data.items() if k != "message"} == {
        "id": JOB,
        "status": after,
        "model": BASE,
        "fine_tuned_model": None,
        "notice": None,
    }
    assert data["message"].startswith(f"Job {JOB} ") and said in data["message"]
    assert api.fake.data.jobs[0]["status"] == after
    assert read_back.structured_content["status"] == after
    assert _seen(posts) == [("POST", f"{JOB_PATH}/{ACTION[tool]}")]
    assert posts[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert posts[0].headers["x-stainless-retry-count"] == "0"


async def test_a_cancel_the_api_has_not_finished_yet_says_so(serve_fake):
    """Cancelling is asynchronous upstream: the answer may still say running."""
    still_running = job(JOB, status="running")
    with serve_fake(_data("running")) as api:
        api.faults.add(Fault(status=200, body=still_running, path_contains="/cancel"))
        async with api.client(allow_writes=True) as client:
            data = (await client.call_tool("cancel_job", {"job_id": JOB})).structured_content
    assert data["status"] == "running"
    assert "accepted the cancellation" in data["message"] and "becomes cancelled shortly" in data["message"]


@pytest.mark.parametrize(
    ("tool", "status", "needle"),
    [
        (
            "cancel_job",
            "succeeded",
            "has already finished (succeeded), so it cannot be cancelled.",
        ),
        (
            "cancel_job",
            "failed",
            "has already finished (failed), so it cannot be cancelled.",
        ),
        (
            "cancel_job",
            "cancelled",
            "is already cancelled, so there is nothing to cancel.",
        ),
        ("pause_job", "paused", "is already paused, so there is nothing to pause."),
        (
            "pause_job",
            "queued",
            "is queued, so it cannot be paused: only a running job can be paused.",
        ),
        (
            "pause_job",
            "succeeded",
            "has already finished (succeeded), so it cannot be paused.",
        ),
        ("resume_job", "running", "is already running, so there is nothing to resume."),
        (
            "resume_job",
            "validating_files",
            "is validating_files, so it cannot be resumed: only a paused job can",
        ),
        (
            "resume_job",
            "cancelled",
            "has already finished (cancelled), so it cannot be resumed.",
        ),
    ],
)
async def test_refusals_are_clear_tool_errors(serve_fake, tool, status, needle):
    with serve_fake(_data(status)) as api:
        async with api.client(allow_writes=True) as client:
            text = _text(await client.call_tool(tool, {"job_id": JOB}))
    assert text.startswith(f"invalid_argument: Job {JOB} "), text
    assert needle in text
    assert 'The API said: "Cannot ' in text and "(request id req_" in text
    assert api.fake.data.jobs[0]["status"] == status
    # the refused POST, then one read of the job's status to explain the refusal
    assert _seen(api.fake.requests) == [
        ("POST", f"{JOB_PATH}/{ACTION[tool]}"),
        ("GET", JOB_PATH),
    ]


async def test_a_refusal_is_explained_even_when_the_status_cannot_be_read(serve_fake):
    refusal = {
        "error": {
            "message": "Job is not in a cancellable state.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    with serve_fake(_data("running")) as api:
        api.faults.add(Fault(status=400, body=refusal, path_contains="/cancel"), Fault(status=503))
        async with api.client(allow_writes=True, max_retries=0) as client:
            text = _text(await client.call_tool("cancel_job", {"job_id": JOB}))
        assert _seen(api.faults.requests) == [
            ("POST", f"{JOB_PATH}/cancel"),
            ("GET", JOB_PATH),
        ]
    assert text.startswith(
        f"invalid_argument: The API refused to cancel job {JOB} (HTTP 400): only a job that is validating_files, "
        "queued, running or paused can be cancelled. Check its status with get_job."
    ), text
    assert 'The API said: "Job is not in a cancellable state".' in text


async def test_unknown_job_is_not_found(serve_fake):
    missing = "ftjob-DoesNotExist00000000000001"
    with serve_fake(_data("running")) as api:
        async with api.client(allow_writes=True) as client:
            text = _text(await client.call_tool("pause_job", {"job_id": missing}))
    assert text.startswith(f"not_found: Job {missing} was not found (HTTP 404).")
    assert "Could not find fine tune" in text
    assert _seen(api.fake.requests) == [("POST", f"/v1/fine_tuning/jobs/{missing}/pause")]


async def test_a_403_says_the_key_may_not_change_jobs_and_never_shows_the_key(serve_fake, captured_logs):
    leaky = {
        "error": {
            "message": f"key {TEST_KEY} lacks the api.fine_tuning.jobs.write scope",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    with serve_fake(_data("running")) as api:
        api.faults.add(Fault(status=403, body=leaky, path_contains="/pause"))
        async with api.client(allow_writes=True) as client:
            text = _text(await client.call_tool("pause_job", {"job_id": JOB}))
        assert len(api.faults.requests) == 1
    assert text.startswith(f"permission_denied: The API key may not pause job {JOB} (HTTP 403).")
    assert "write access" in text and "***" in text
    assert TEST_KEY not in text and TEST_KEY not in captured_logs.text
    assert api.fake.data.jobs[0]["status"] == "running"


async def test_a_write_is_retried_like_openai_python_retries_a_post(serve_fake):
    with serve_fake(_data("running")) as api:
        api.faults.add(Fault(status=500, headers={"retry-after-ms": "1"}, path_contains="/cancel"))
        async with api.client(allow_writes=True) as client:
            data = (await client.call_tool("cancel_job", {"job_id": JOB})).structured_content
        attempts = api.faults.requests
    assert data["status"] == "cancelled"
    assert _seen(attempts) == [("POST", f"{JOB_PATH}/cancel")] * 2
    assert [r.headers["x-stainless-retry-count"] for r in attempts] == ["0", "1"]
    assert _seen(api.fake.requests) == [("POST", f"{JOB_PATH}/cancel")]


async def test_a_write_that_keeps_failing_says_to_check_before_trying_again(serve_fake):
    with serve_fake(_data("running")) as api:
        api.faults.add(
            Fault(
                status=502,
                headers={"retry-after-ms": "1"},
                times=3,
                path_contains="/cancel",
            )
        )
        async with api.client(allow_writes=True) as client:
            text = _text(await client.call_tool("cancel_job", {"job_id": JOB}))
        assert _seen(api.faults.requests) == [("POST", f"{JOB_PATH}/cancel")] * 3
    assert text.startswith("upstream_unavailable: ") and "HTTP 502, 3 attempts" in text
    assert "The cancel request may have reached the API before the failure: check the job with get_job" in text


async def test_demo_mode_acts_on_the_demo_data_and_says_it_is_a_demo():
    running, paused = DEMO_JOB_IDS["running"], DEMO_JOB_IDS["paused"]
    server = create_server(Settings.from_env({}, demo=True, allow_writes=True))
    async with Client(server) as client:
        assert client.instructions is not None and client.instructions.startswith("DEMO MODE")
        paused_now = (await client.call_tool("pause_job", {"job_id": running})).structured_content
        read_back = (await client.call_tool("get_job", {"job_id": running})).structured_content
        resumed = (await client.call_tool("resume_job", {"job_id": paused})).structured_content
        cancelled = (await client.call_tool("cancel_job", {"job_id": paused})).structured_content
        again = _text(await client.call_tool("cancel_job", {"job_id": paused}))
    assert paused_now["status"] == "paused" and paused_now["notice"] == DEMO_NOTICE
    assert read_back["status"] == "paused"
    assert resumed["status"] == "queued" and resumed["notice"] == DEMO_NOTICE
    assert cancelled["status"] == "cancelled" and cancelled["notice"] == DEMO_NOTICE
    assert again.startswith(f"invalid_argument: Job {paused} is already cancelled")
    # another server starts from the pristine demo data
    async with Client(create_server(Settings.from_env({}, demo=True))) as client:
        assert (await client.call_tool("get_job", {"job_id": running})).structured_content["status"] == "running"


async def test_cli_call_runs_a_write_tool_only_with_the_flag(capsys):
    running = DEMO_JOB_IDS["running"]
    writes = Settings.from_env({}, demo=True, allow_writes=True)
    assert await _call(writes, "pause_job", [f"job_id={running}"], "WARNING") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "paused" and printed["notice"] == DEMO_NOTICE
    assert (
        await _call(
            replace(writes, allow_writes=False),
            "pause_job",
            [f"job_id={running}"],
            "WARNING",
        )
        == 2
    )
    assert "pause_job is a write tool, served only with --allow-writes" in capsys.readouterr().err


async def test_the_fake_changes_jobs_as_the_api_does():
    fake = FakeOpenAI(_data("running"), api_key=TEST_KEY)
    with serve_app(fake) as base_url:
        headers = {"authorization": f"Bearer {TEST_KEY}"}
        async with httpx2.AsyncClient(base_url=base_url, headers=headers) as http:
            wrong_method = await http.get(f"/fine_tuning/jobs/{JOB}/cancel")
            no_action = await http.post(f"/fine_tuning/jobs/{JOB}")
            unknown = await http.post("/fine_tuning/jobs/ftjob-nope/pause")
            unauthenticated = await http.post(f"/fine_tuning/jobs/{JOB}/pause", headers={"authorization": ""})
            paused = await http.post(f"/fine_tuning/jobs/{JOB}/pause")
            paused_again = await http.post(f"/fine_tuning/jobs/{JOB}/pause")
            resumed = await http.post(f"/fine_tuning/jobs/{JOB}/resume")
            cancelled = await http.post(f"/fine_tuning/jobs/{JOB}/cancel")
            cancelled_again = await http.post(f"/fine_tuning/jobs/{JOB}/cancel")
            events = (await http.get(f"/fine_tuning/jobs/{JOB}/events")).json()["data"]
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert no_action.status_code == 405 and no_action.headers["allow"] == "GET"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "fine_tune_not_found"
    assert unauthenticated.status_code == 401
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.json()["object"] == "fine_tuning.job" and paused.json()["id"] == JOB
    assert paused_again.status_code == 400
    assert paused_again.json() == {
        "error": {
            "message": f"Cannot pause job {JOB}: only running jobs can be paused (status: paused).",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert resumed.json()["status"] == "queued"
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["finished_at"] >= body["created_at"]
    assert body["estimated_finish"] is None
    assert cancelled_again.status_code == 400
    assert cancelled_again.json()["error"]["message"] == f"Cannot cancel job {JOB}: the job has already been cancelled."
    assert sorted(e["message"] for e in events) == [
        "Fine-tuning job cancelled",
        "Fine-tuning job paused",
        "Fine-tuning job resumed",
    ]
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in fake.requests][4:9] == [
        ("POST", "pause"),
        ("POST", "pause"),
        ("POST", "resume"),
        ("POST", "cancel"),
        ("POST", "cancel"),
    ]


# Merged: every write tool with status "any" (README, Cache: compare_jobs' listing is "dropped at once by any write
# tool") and a cancel that takes the job out of a status filter (the new status is seen, not the cached one).
@pytest.mark.parametrize(
    ("tool", "status", "status_filter"),
    [
        ("cancel_job", "running", "any"),
        ("pause_job", "running", "any"),
        ("resume_job", "paused", "any"),
        ("cancel_job", "running", "running"),
    ],
)
async def test_a_write_drops_the_cached_compare_jobs_listing(serve_fake, tool, status, status_filter):
    data, ids = sweep_data(lrs=(0.5, 1.0))
    data.jobs[0]["status"] = status
    target = ids[0.5]
    with serve_fake(data) as api:
        async with api.client(allow_writes=True) as client:
            args = {"suffix": "lr-sweep", "status": status_filter}
            before = (await client.call_tool("compare_jobs", args)).structured_content
            cached = (await client.call_tool("compare_jobs", args)).structured_content
            listed_before_the_write = len(_listings(api))
            written = await client.call_tool(tool, {"job_id": target})
            after = (await client.call_tool("compare_jobs", args)).structured_content
    assert not written.is_error, written.content[0].text
    assert listed_before_the_write == 1 and cached["listing_age_seconds"] is not None  # the listing was cached
    assert len(_listings(api)) == 2 and after["listing_age_seconds"] is None  # and the write dropped it
    assert data.jobs[0]["status"] != status
    if status_filter == "any":
        assert [e["status"] for e in after["leaderboard"] if e["job_id"] == target] == [data.jobs[0]["status"]]
    else:
        assert [e["job_id"] for e in before["leaderboard"]] == [target]
        assert after["jobs_compared"] == 0 and after["winner"] is None
        assert after["rationale"].startswith("No job matched (suffix='lr-sweep', status=running) among the 7 jobs read")


async def test_a_write_tool_without_the_flag_hints_at_allow_writes(serve_fake):
    """Hardening issue, item 9: ``cancel_job`` without ``--allow-writes`` was a bare "unknown tool"."""
    import subprocess

    from .helpers import console_script

    with serve_fake(FakeData(jobs=[job(EDGE_JOB)])) as api:
        async with api.client() as client:
            with pytest.raises(MCPError) as raised:
                await client.call_tool("pause_job", {"job_id": EDGE_JOB})
    assert raised.value.error.code == -32602
    assert raised.value.error.message.startswith("Unknown tool: pause_job. pause_job is a write tool")
    assert "--allow-writes" in raised.value.error.message
    argv = [console_script(), "--demo", "call", "cancel_job", f"job_id={RUNNING_DEMO_JOB}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--allow-writes" in done.stderr and "unknown tool" not in done.stderr
