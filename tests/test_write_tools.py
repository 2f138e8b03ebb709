"""The opt-in write tools (cancel_job, pause_job, resume_job): absent unless enabled; when enabled, each one through
the real MCP client -> our server -> httpx2 over real HTTP -> the fake API, which changes the job it holds."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError

from openai_checkpoints_mcp.cli import _call, _settings, build_parser
from openai_checkpoints_mcp.config import ALLOW_WRITES_ENV, Settings
from openai_checkpoints_mcp.fake import DEMO_JOB_IDS, FakeData, FakeOpenAI, Fault, running_server
from openai_checkpoints_mcp.outputs import DEMO_NOTICE
from openai_checkpoints_mcp.server import create_server

from .conftest import TEST_KEY
from .factories import BASE, job
from .test_e2e_tools import BAD_JOB_IDS

pytestmark = pytest.mark.anyio

WRITE_TOOLS = {"cancel_job", "pause_job", "resume_job"}
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


# --- settings -------------------------------------------------------------------------------------------------------


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


# --- absent by default, present when enabled ------------------------------------------------------------------------


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


async def test_allow_writes_adds_exactly_the_write_tools_with_write_annotations(serve_fake):
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
        env = {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": api.base_url, ALLOW_WRITES_ENV: "1"}
        server = create_server(Settings.from_env(env, timeout=5.0))
        async with Client(server) as client:
            assert {tool.name for tool in (await client.list_tools()).tools} >= WRITE_TOOLS
            result = await client.call_tool("pause_job", {"job_id": JOB})
    assert result.is_error is False and result.structured_content["status"] == "paused"


# --- each tool against the fake -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "before", "after", "said"),
    [
        ("cancel_job", "running", "cancelled", "is cancelled: training has stopped"),
        ("cancel_job", "queued", "cancelled", "cannot be undone"),
        ("cancel_job", "validating_files", "cancelled", "is cancelled"),
        ("cancel_job", "paused", "cancelled", "is cancelled"),
        ("pause_job", "running", "paused", "is paused: training has stopped. resume_job continues it"),
        ("resume_job", "paused", "queued", "was resumed: it is queued and will be running again shortly"),
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
        ("cancel_job", "succeeded", "has already finished (succeeded), so it cannot be cancelled."),
        ("cancel_job", "failed", "has already finished (failed), so it cannot be cancelled."),
        ("cancel_job", "cancelled", "is already cancelled, so there is nothing to cancel."),
        ("pause_job", "paused", "is already paused, so there is nothing to pause."),
        ("pause_job", "queued", "is queued, so it cannot be paused: only a running job can be paused."),
        ("pause_job", "succeeded", "has already finished (succeeded), so it cannot be paused."),
        ("resume_job", "running", "is already running, so there is nothing to resume."),
        ("resume_job", "validating_files", "is validating_files, so it cannot be resumed: only a paused job can"),
        ("resume_job", "cancelled", "has already finished (cancelled), so it cannot be resumed."),
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
    assert _seen(api.fake.requests) == [("POST", f"{JOB_PATH}/{ACTION[tool]}"), ("GET", JOB_PATH)]


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
        assert _seen(api.faults.requests) == [("POST", f"{JOB_PATH}/cancel"), ("GET", JOB_PATH)]
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
        api.faults.add(Fault(status=502, headers={"retry-after-ms": "1"}, times=3, path_contains="/cancel"))
        async with api.client(allow_writes=True) as client:
            text = _text(await client.call_tool("cancel_job", {"job_id": JOB}))
        assert _seen(api.faults.requests) == [("POST", f"{JOB_PATH}/cancel")] * 3
    assert text.startswith("upstream_unavailable: ") and "HTTP 502, 3 attempts" in text
    assert "The cancel request may have reached the API before the failure: check the job with get_job" in text


@pytest.mark.parametrize("tool", sorted(WRITE_TOOLS))
async def test_bad_job_ids_reach_nothing_upstream(serve_fake, tool):
    with serve_fake(_data("running")) as api:
        async with api.client(allow_writes=True) as client:
            for bad in BAD_JOB_IDS:
                text = _text(await client.call_tool(tool, {"job_id": bad}))
                assert text.startswith("invalid_argument: job_id must be 'ftjob-'"), text
            assert _text(await client.call_tool(tool, {})).startswith("invalid_argument: job_id is required")
            extra = _text(await client.call_tool(tool, {"job_id": JOB, "force": True}))
            assert extra.startswith("invalid_argument: force is not an argument of"), extra  # never ignored
        assert api.faults.requests == []
    assert api.fake.data.jobs[0]["status"] == "running"


# --- demo mode and the command line ---------------------------------------------------------------------------------


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
    assert await _call(replace(writes, allow_writes=False), "pause_job", [f"job_id={running}"], "WARNING") == 2
    assert "unknown tool 'pause_job'" in capsys.readouterr().err


# --- the fake's POST routes themselves ------------------------------------------------------------------------------


async def test_the_fake_changes_jobs_as_the_api_does():
    fake = FakeOpenAI(_data("running"), api_key=TEST_KEY)
    with running_server(fake) as base_url:
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
