"""What the API sends is data, never direction: ids from its answers are checked and escaped before they become a
path, and spec-valid answers are read as they mean (a result file as a JSON string, an id repeated on a final page, a
zero timestamp, validation metrics without a validation file, a write answered with a final status), while an answer
about another job than the one asked for is refused. Each through the MCP client, against the fake API over HTTP or a
hostile API in process."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from starlette.types import Receive, Scope, Send

from openai_checkpoints_mcp.api.client import OpenAIClient
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.errors import CheckpointsError, ErrorCode
from openai_checkpoints_mcp.fake import FakeData, Fault
from openai_checkpoints_mcp.server import create_server

from .helpers import (
    CURVE_JOB,
    README_JOB,
    TEST_KEY,
    call_once,
    checkpoint,
    curve_data,
    error_text,
    job,
    one_job,
)

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "data"
CSV = (DATA / "step_metrics.csv").read_bytes()


# --- a hostile API, in process ------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: str


@dataclass
class HostileApi:
    """An ASGI app answering GET/POST by exact path (``/v1/...``) with a JSON body, 404 for anything else, and
    recording every request's decoded path and query as it arrived."""

    answers: dict[str, Any]
    requests: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.requests.append(Recorded(scope["method"], scope["path"], scope.get("query_string", b"").decode()))
        body = self.answers.get(scope["path"])
        status = 200 if body is not None else 404
        payload = json.dumps(body if body is not None else {"error": {"message": "no such path"}}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


@asynccontextmanager
async def hostile_client(api: HostileApi, **settings: Any) -> AsyncIterator[Client]:
    """An MCP client (in memory) of our server whose upstream is `api`, in process."""
    config = Settings(api_key=TEST_KEY, base_url="http://api.test/v1", timeout=5.0, deadline=30.0, **settings)
    server = create_server(config, transport=httpx2.ASGITransport(app=api))
    async with Client(server, raise_exceptions=True) as client:
        yield client


def listing(*items: dict[str, Any], has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": list(items), "has_more": has_more}


STEERING_JOB_ID = "ftjob-x/../../../../admin/delete?all=1#"
"""A listed job id that, put into a path unescaped, makes ``GET /admin/delete?all=1``."""


# --- defect 4: ids from answers steer no request ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args"),
    [("compare_jobs", {"suffix": "steer"}), ("list_jobs", {"suffix": "steer"}), ("list_fine_tuned_models", {})],
)
async def test_a_listed_job_id_that_would_move_the_path_is_refused_and_never_requested(tool, args):
    hostile = job(STEERING_JOB_ID, suffix="steer")
    api = HostileApi(
        {
            "/v1/fine_tuning/jobs": listing(hostile),
            "/v1/models": listing({"id": f"{hostile['fine_tuned_model']}", "object": "model", "owned_by": "o"}),
        }
    )
    async with hostile_client(api) as client:
        text = error_text(await client.call_tool(tool, args))
    assert text.startswith("bad_response: ")
    assert "'ftjob-x/../../../" in text and "not a fine-tuning job id" in text
    assert len(text) < 600
    assert all(path in ("/v1/fine_tuning/jobs", "/v1/models") for path in api.paths()), api.requests
    assert not any("admin" in r.path or "delete" in r.query for r in api.requests)


async def test_a_result_file_id_that_would_move_the_path_is_refused_and_never_requested():
    good = "ftjob-Steer0000000000000000000001"
    body = job(good, result_files=["../../fine_tuning/jobs/ftjob-victim/cancel"])
    cps = [checkpoint(good, 100, {"train_loss": 0.5})]
    api = HostileApi({f"/v1/fine_tuning/jobs/{good}": body, f"/v1/fine_tuning/jobs/{good}/checkpoints": listing(*cps)})
    async with hostile_client(api) as client:
        text = error_text(await client.call_tool("training_metrics", {"job_id": good}))
        with pytest.raises(MCPError) as raised:
            await client.read_resource(f"openai-ft://jobs/{good}/metrics.csv")
    assert text.startswith("bad_response: ") and "not a file id" in text
    assert "'../../fine_tuning/jobs/ftjob-victim/cancel'" in text
    assert raised.value.error.message.startswith("bad_response: ") and "not a file id" in raised.value.error.message
    assert not any("victim" in path or path.startswith("/v1/files") for path in api.paths()), api.requests


async def test_the_client_refuses_a_job_id_that_is_no_job_id_before_any_request():
    """Defence in depth below the tools (e.g. an id from a listing cached by an earlier version)."""
    api = HostileApi({})
    settings = Settings(api_key=TEST_KEY, base_url="http://api.test/v1", timeout=5.0)
    client = OpenAIClient(
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=api), base_url=settings.base_url), settings
    )
    try:
        for call in (
            lambda: client.get_job(STEERING_JOB_ID),
            lambda: client.list_checkpoints("ftjob-a/../../files"),
            lambda: client.list_events_page("ftjob-a%2F..", limit=1),
            lambda: client.cancel_job("ftjob-../x"),
            lambda: client.get_file_content("file-a/../../admin"),
        ):
            with pytest.raises(CheckpointsError) as caught:
                await call()
            assert caught.value.code is ErrorCode.BAD_RESPONSE
    finally:
        await client.aclose()
    assert api.requests == []


# --- defect 8a: a result file as a JSON string ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (json.dumps(CSV.decode()).encode(), "json"),
        (json.dumps(base64.b64encode(CSV).decode()).encode(), "json+base64"),
    ],
)
async def test_a_result_file_served_as_a_json_string_is_read_as_the_csv_it_holds(serve_fake, body, encoding):
    with serve_fake(curve_data(CSV)) as api:
        plain = (await call_once(api, "training_metrics", {"job_id": CURVE_JOB})).structured_content
    with serve_fake(curve_data(CSV)) as api:
        api.faults.add(Fault(status=200, body=body, content_type="application/json", path_contains="/files/"))
        result = await call_once(api, "training_metrics", {"job_id": CURVE_JOB})
    assert not result.is_error, result
    served = result.structured_content
    assert served["available"] is True and served["encoding"] == encoding
    for key in ("steps", "metrics", "best_validation", "overfitting", "curve"):
        assert served[key] == plain[key]


async def test_a_json_string_that_holds_no_csv_is_still_a_bad_response(serve_fake):
    with serve_fake(curve_data(CSV)) as api:
        api.faults.add(
            Fault(status=200, body=b'"just some text"', content_type="application/json", path_contains="/files/")
        )
        text = error_text(await call_once(api, "training_metrics", {"job_id": CURVE_JOB}))
    assert text.startswith("bad_response: ") and "JSON string" in text


# --- defect 8b: an id repeated on a final page is no endless paging ---------------------------------------------------


async def test_a_checkpoint_repeated_on_the_final_page_is_shown_once(serve_fake, captured_logs):
    data = one_job()
    cps = data.checkpoints[README_JOB]
    page = listing(cps[2], cps[1], cps[0], cps[1])
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=page, path_contains="/checkpoints"))
        result = await call_once(api, "list_checkpoints", {"job_id": README_JOB})
    assert not result.is_error, result
    out = result.structured_content
    assert out["count"] == 3 and [row[1] for row in out["rows"]] == [100, 200, 300]
    warnings = [r.getMessage() for r in captured_logs.records if r.levelname == "WARNING"]
    assert warnings == [
        f"the API sent 1 item again while listing checkpoints of job {README_JOB} (over 1 page); each was kept once"
    ]


async def test_a_job_repeated_in_the_listing_is_compared_and_listed_once(serve_fake):
    ids = [f"ftjob-Rep{n:028d}" for n in range(3)]
    data = FakeData(
        jobs=[job(i, suffix="rep", created_at=1_760_000_000 - n) for n, i in enumerate(ids)],
        checkpoints={i: [checkpoint(i, 100, {"full_valid_loss": 0.3 + n / 10}, n=n)] for n, i in enumerate(ids)},
    )
    page = listing(*data.jobs, data.jobs[0])
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=page, path_contains="/fine_tuning/jobs", times=1))
        listed = await call_once(api, "list_jobs", {})
        api.faults.add(Fault(status=200, body=page, path_contains="/fine_tuning/jobs", times=1))
        compared = await call_once(api, "compare_jobs", {"suffix": "rep", "refresh": True})
    assert not listed.is_error and not compared.is_error, (listed, compared)
    assert [j["id"] for j in listed.structured_content["jobs"]] == ids
    assert [e["job_id"] for e in compared.structured_content["leaderboard"]] == ids
    assert compared.structured_content["jobs_compared"] == 3


async def test_a_listing_that_repeats_a_whole_page_is_still_stopped(serve_fake):
    data = one_job()
    page = listing(*data.checkpoints[README_JOB], has_more=True)
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=page, path_contains="/checkpoints", times=5))
        text = error_text(await call_once(api, "list_checkpoints", {"job_id": README_JOB}))
        assert len(api.upstream_requests("/checkpoints")) == 2
    assert text.startswith("bad_response: ") and "never end" in text


# --- defect 8c: an answer about another job is refused ----------------------------------------------------------------


async def test_an_api_that_answers_with_another_job_is_a_bad_response(serve_fake):
    asked = [f"ftjob-Asked{n:026d}" for n in range(3)]
    data = FakeData(jobs=[job(i) for i in asked], checkpoints={i: [] for i in asked})
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=job("ftjob-abc123"), path_contains="/fine_tuning/jobs/", times=100))
        async with api.client() as client:
            one = error_text(await client.call_tool("get_job", {"job_id": asked[0]}))
            compared = await client.call_tool("compare_jobs", {"job_ids": asked})
    assert one.startswith("bad_response: ") and "'ftjob-abc123'" in one and asked[0] in one
    text = error_text(compared)  # every job failed: the first failure is the error
    assert text.startswith("bad_response: ") and "'ftjob-abc123'" in text


async def test_checkpoints_that_belong_to_another_job_are_a_bad_response(serve_fake):
    data = one_job()
    other = [checkpoint("ftjob-abc123", 100, {"train_loss": 0.5})]
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=listing(*other), path_contains="/checkpoints"))
        text = error_text(await call_once(api, "list_checkpoints", {"job_id": README_JOB}))
    assert text.startswith("bad_response: ") and "belongs to job 'ftjob-abc123'" in text


@pytest.mark.parametrize("action", ["cancel", "pause", "resume"])
async def test_a_write_answered_with_another_job_is_a_bad_response(serve_fake, action):
    data = one_job(status="running")
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=job("ftjob-abc123", status="cancelled"), path_contains=f"/{action}"))
        text = error_text(await call_once(api, f"{action}_job", {"job_id": README_JOB}, allow_writes=True))
    assert text.startswith("bad_response: ") and "'ftjob-abc123'" in text
    assert "may have taken effect" in text and "get_job" in text


# --- defect 8d: a zero timestamp is unknown, not 1970 -----------------------------------------------------------------


async def test_zero_and_negative_timestamps_are_null(serve_fake):
    data = one_job(status="running", estimated_finish=0, created_at=0)
    data.jobs[0]["finished_at"] = -1
    with serve_fake(data) as api:
        async with api.client() as client:
            detail = (await client.call_tool("get_job", {"job_id": README_JOB})).structured_content
            listed = (await client.call_tool("list_jobs", {})).structured_content
    assert detail["estimated_finish"] is None and detail["finished_at"] is None and detail["created_at"] is None
    assert detail["duration_seconds"] is None
    assert listed["jobs"][0]["created_at"] is None
    assert "1970" not in json.dumps(detail) + json.dumps(listed)


async def test_a_zero_created_at_does_not_end_a_listing_filtered_by_date(serve_fake):
    # Newest first, a job whose created_at reads 1970 would look older than created_after, so every later job too.
    ids = ["ftjob-Newer000000000000000000001", "ftjob-Zero0000000000000000000001", "ftjob-Newer000000000000000000002"]
    data = FakeData(jobs=[job(ids[0]), job(ids[1], created_at=0), job(ids[2], created_at=1_754_000_000)])
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=listing(*data.jobs), path_contains="/fine_tuning/jobs"))
        listed = (await call_once(api, "list_jobs", {"created_after": "2025-01-01"})).structured_content
    assert [j["id"] for j in listed["jobs"]] == ids


# --- defect 8e: validation metrics without a validation file ----------------------------------------------------------


async def test_validation_metrics_without_a_validation_file_are_not_denied(serve_fake):
    with serve_fake(one_job(validation=False)) as api:
        async with api.client() as client:
            listed = (await client.call_tool("list_checkpoints", {"job_id": README_JOB})).structured_content
            best = (await client.call_tool("best_checkpoint", {"job_id": README_JOB})).structured_content
    note = listed["coverage"]["note"]
    assert listed["coverage"]["has_validation_file"] is False
    assert "there are no valid_" not in note and "full_valid_loss" in note and "no validation file" in note
    assert best["metric"] == "full_valid_loss"
    assert "no validation file" not in best["rationale"]


# --- defect 8f: a write answered with a final status ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "answered", "never"),
    [
        ("pause", "succeeded", "becomes paused"),
        ("pause", "cancelled", "becomes paused"),
        ("cancel", "failed", "becomes cancelled"),
        ("cancel", "succeeded", "becomes cancelled"),
        ("resume", "cancelled", "goes back to queued"),
        ("resume", "failed", "goes back to queued"),
    ],
)
async def test_a_write_answered_with_a_final_status_says_that_status(serve_fake, action, answered, never):
    data = one_job(status="running" if action != "resume" else "paused")
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=job(README_JOB, status=answered), path_contains=f"/{action}"))
        result = await call_once(api, f"{action}_job", {"job_id": README_JOB}, allow_writes=True)
    assert not result.is_error, result
    out = result.structured_content
    assert out["status"] == answered
    assert never not in out["message"] and "accepted" not in out["message"]
    assert f"with status {answered}" in out["message"] and "has finished" in out["message"]


async def test_a_write_answered_with_an_unknown_status_says_to_check(serve_fake):
    with serve_fake(one_job(status="running")) as api:
        api.faults.add(Fault(status=200, body=job(README_JOB, status="archived"), path_contains="/pause"))
        out = (await call_once(api, "pause_job", {"job_id": README_JOB}, allow_writes=True)).structured_content
    assert "becomes paused" not in out["message"] and "'archived'" in out["message"] and "get_job" in out["message"]
