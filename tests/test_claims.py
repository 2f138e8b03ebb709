"""The README's promises about caching, concurrency, defaults, paging limits, dates and HTTP, each pinned by a test.

End to end through the MCP client against the fake API over HTTP on 127.0.0.1 wherever the claim is behaviour;
request counts are measured at the fake. Each test says which README sentence it backs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from starlette.types import ASGIApp, Receive, Scope, Send

from openai_checkpoints_mcp.api.cache import MAX_FILE_BYTES, ResponseCache
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, FaultInjector, running_server
from openai_checkpoints_mcp.http import HttpOptions, create_app
from openai_checkpoints_mcp.server import create_server

from .conftest import TEST_KEY
from .factories import checkpoint, fake_id, job
from .test_http import INITIALIZE, MCP_HEADERS, TOKEN, demo_server, mcp_client, serving
from .test_sweeps import sweep_data

pytestmark = pytest.mark.anyio

JOB = "ftjob-Claims000000000000000000001"
JAN_1_2026 = 1_767_225_600  # 2026-01-01T00:00:00Z


def _one_job(**fields: Any) -> FakeData:
    """One job (`fields` override the factory's) with three checkpoints."""
    body = job(JOB, **fields)
    cps = [
        checkpoint(JOB, step, {"train_loss": 1 / step, "full_valid_loss": 0.3 + abs(step - 200) / 1000})
        for step in (100, 200, 300)
    ]
    return FakeData(jobs=[body], checkpoints={JOB: cps})


def _listings(api: Any) -> list[Any]:
    return [r for r in api.faults.requests if r.path.endswith("/fine_tuning/jobs")]


# --- cache: the 5-minute settle rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(("finished_ago", "checkpoint_requests"), [(60, 2), (600, 1)])
async def test_checkpoints_read_with_the_job_are_cached_only_five_minutes_after_it_finished(
    serve_fake, finished_ago, checkpoint_requests
):
    """README, Cache: "Checkpoints read in the same instant as the job object are cached only when the job finished
    more than 5 minutes earlier"."""
    now = int(time.time())
    with serve_fake(_one_job(created_at=now - 4000, finished_at=now - finished_ago)) as api:
        async with api.client() as client:
            first = await client.call_tool("list_checkpoints", {"job_id": JOB})
            second = await client.call_tool("list_checkpoints", {"job_id": JOB})
    assert first.structured_content["checkpoints"] == second.structured_content["checkpoints"]
    assert len(first.structured_content["checkpoints"]) == 3
    assert len(api.upstream_requests("/checkpoints")) == checkpoint_requests
    assert len([r for r in api.upstream_requests() if r.path.endswith(JOB)]) == 1  # the finished job object is kept


# --- cache: what every write, refresh=true, list_jobs and list_events do ------------------------------------------


@pytest.mark.parametrize(
    ("tool", "status"),
    [
        ("cancel_job", "running"),
        ("pause_job", "running"),
        ("resume_job", "paused"),
    ],
)
async def test_every_write_tool_drops_the_cached_compare_jobs_listing(serve_fake, tool, status):
    """README, Cache: compare_jobs' listing is "dropped at once by any write tool"."""
    data, ids = sweep_data(lrs=(0.5, 1.0))
    data.jobs[0]["status"] = status
    target = ids[0.5]
    with serve_fake(data) as api:
        async with api.client(allow_writes=True) as client:
            args = {"suffix": "lr-sweep", "status": "any"}
            await client.call_tool("compare_jobs", args)
            cached = (await client.call_tool("compare_jobs", args)).structured_content
            listed_before_the_write = len(_listings(api))
            written = await client.call_tool(tool, {"job_id": target})
            after = (await client.call_tool("compare_jobs", args)).structured_content
    assert not written.is_error, written.content[0].text
    assert listed_before_the_write == 1 and cached["listing_age_seconds"] is not None  # the listing was cached
    assert len(_listings(api)) == 2 and after["listing_age_seconds"] is None  # and the write dropped it
    assert [e["status"] for e in after["leaderboard"] if e["job_id"] == target] == [data.jobs[0]["status"]]


@pytest.mark.parametrize(
    ("tool", "args", "path_end"),
    [
        ("list_jobs", {}, "/fine_tuning/jobs"),
        ("list_jobs", {"suffix": "support-bot"}, "/fine_tuning/jobs"),
        ("list_events", {"job_id": JOB}, "/events"),
        ("list_events", {"job_id": JOB, "level": "info"}, "/events"),
    ],
)
async def test_list_jobs_and_list_events_always_read_afresh(serve_fake, tool, args, path_end):
    """README, Cache: "list_jobs and list_events always read afresh" (even for a job finished long ago)."""
    data = _one_job()
    data.events[JOB] = [
        {
            "object": "fine_tuning.job.event",
            "id": fake_id("ftevent-", 1),
            "created_at": 1754039000,
            "level": "info",
            "message": "The job has successfully completed",
            "data": {},
        }
    ]
    with serve_fake(data) as api:
        async with api.client() as client:
            first = await client.call_tool(tool, args)
            second = await client.call_tool(tool, args)
    assert first.structured_content == second.structured_content
    assert len([r for r in api.faults.requests if r.path.endswith(path_end)]) == 2


async def test_refresh_true_rereads_cached_checkpoints(serve_fake):
    """README, Cache: "refresh=true on the other tools bypasses the cache" (list_checkpoints)."""
    with serve_fake(_one_job()) as api:  # finished in 2025: its checkpoints are cached at once
        async with api.client() as client:
            await client.call_tool("list_checkpoints", {"job_id": JOB})
            await client.call_tool("list_checkpoints", {"job_id": JOB})
            cached = len(api.upstream_requests("/checkpoints"))
            refreshed = await client.call_tool("list_checkpoints", {"job_id": JOB, "refresh": True})
    assert cached == 1
    assert len(api.upstream_requests("/checkpoints")) == 2 and refreshed.structured_content["count"] == 3


@pytest.mark.parametrize(
    ("status", "job_requests"),
    [
        ("failed", 1),
        ("cancelled", 1),
        ("succeeded", 1),
        ("running", 2),
        ("paused", 2),
    ],
)
async def test_failed_and_cancelled_jobs_are_cached_like_succeeded_ones(serve_fake, status, job_requests):
    """README, Cache: "Once a job is succeeded, failed or cancelled, ... the server keeps ... the job object"; nothing
    of a running or paused job is cached."""
    with serve_fake(_one_job(status=status)) as api:
        async with api.client() as client:
            first = await client.call_tool("get_job", {"job_id": JOB})
            second = await client.call_tool("get_job", {"job_id": JOB})
    assert first.structured_content == second.structured_content and first.structured_content["status"] == status
    assert len(api.upstream_requests(f"/fine_tuning/jobs/{JOB}")) == job_requests


# --- defaults ------------------------------------------------------------------------------------------------------


def test_documented_defaults():
    """README, Configuration and Cache: listing reused 60 s, job objects 600 s, 8 requests in flight, result files
    at most 64 MiB, Azure's api-version 2024-10-21."""
    settings = Settings()
    assert (settings.listing_ttl, settings.cache_ttl, settings.concurrency) == (60, 600, 8)
    assert MAX_FILE_BYTES == 64 * 1024 * 1024
    azure = Settings.from_env({"AZURE_OPENAI_ENDPOINT": "https://x.openai.azure.com", "AZURE_OPENAI_API_KEY": "k"})
    assert azure.api_version == "2024-10-21"


def test_a_result_file_over_64_mib_is_not_cached_and_one_at_the_cap_is():
    """README, Cache: "result files at most 64 MiB"."""
    cap = 64 * 1024 * 1024
    cache = ResponseCache(8, job_ttl=600, listing_ttl=60)
    cache.store_file("file-over", bytes(cap + 1))
    assert cache.file("file-over") is None and len(cache) == 0
    cache.store_file("file-at-cap", bytes(cap))
    stored = cache.file("file-at-cap")
    assert stored is not None and len(stored) == cap


# --- list_events: the level scan limit -----------------------------------------------------------------------------


async def test_list_events_with_a_level_scans_at_most_1000_events(serve_fake):
    """README, list_events: "level filters on the server, scanning up to 1,000 events; page with after"."""
    error = {
        "object": "fine_tuning.job.event",
        "id": fake_id("ftevent-", 0),
        "created_at": 1754036000,
        "level": "error",
        "message": "The oldest event: an error",
        "data": {},
    }
    infos = [
        {
            "object": "fine_tuning.job.event",
            "id": fake_id("ftevent-", i),
            "created_at": 1754036000 + i,
            "level": "info",
            "message": f"Step {i}",
            "data": {},
        }
        for i in range(1, 1002)
    ]
    data = _one_job()
    data.events[JOB] = [error, *infos]
    with serve_fake(data) as api:
        async with api.client() as client:
            out = (await client.call_tool("list_events", {"job_id": JOB, "level": "error"})).structured_content
            scanned_pages = api.upstream_requests("/events")
            rest = (
                await client.call_tool("list_events", {"job_id": JOB, "level": "error", "after": out["next_after"]})
            ).structured_content
    assert out["events"] == [] and out["scanned"] == 1000 and out["has_more"] is True
    assert len(scanned_pages) == 10 and all(r.query["limit"] == ["100"] for r in scanned_pages)
    assert [e["message"] for e in rest["events"]] == ["The oldest event: an error"] and rest["scanned"] == 2


# --- concurrency: the job and its first checkpoint page ------------------------------------------------------------


class OverlapGate:
    """ASGI wrapper that records the most requests in flight (`peak`) and holds each request until `wait_for` are in
    flight at once, or `give_up` seconds have passed: requests sent together are sure to overlap, and requests sent
    one after the other are sure not to (each is let through alone once `give_up` passes). No time is asserted."""

    def __init__(self, app: ASGIApp, *, wait_for: int, give_up: float = 2.0) -> None:
        self.app = app
        self.wait_for = wait_for
        self.give_up = give_up
        self.now = 0
        self.peak = 0
        self._reached: anyio.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._reached is None:
            self._reached = anyio.Event()  # on the server's event loop
        self.now += 1
        self.peak = max(self.peak, self.now)
        if self.now >= self.wait_for:
            self._reached.set()
        try:
            with anyio.move_on_after(self.give_up):
                await self._reached.wait()
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


@asynccontextmanager
async def gated(data: FakeData, *, wait_for: int) -> AsyncIterator[tuple[Client, FaultInjector, OverlapGate]]:
    faults = FaultInjector(FakeOpenAI(data, api_key=TEST_KEY))
    gate = OverlapGate(faults, wait_for=wait_for)
    with running_server(gate) as base_url:
        server = create_server(Settings(api_key=TEST_KEY, base_url=base_url, timeout=5.0, deadline=30.0))
        async with Client(server) as client:
            yield client, faults, gate


async def test_the_job_and_its_first_checkpoint_page_are_read_concurrently():
    """README, Concurrency: "A job's first checkpoint page is read together with the job object"."""
    async with gated(_one_job(), wait_for=2) as (client, faults, gate):
        result = await client.call_tool("best_checkpoint", {"job_id": JOB})
    assert result.structured_content["best"]["step_number"] == 200
    assert sorted(r.path.rsplit("/", 1)[-1] for r in faults.requests) == ["checkpoints", JOB]
    assert gate.peak == 2


# --- compare_jobs: status ------------------------------------------------------------------------------------------


async def test_compare_jobs_status_any_includes_running_jobs_and_job_ids_ignore_status(serve_fake):
    """README, compare_jobs: "status defaulting to succeeded; "any" for all"; with job_ids the status filter does not
    apply (it is one of the filter arguments)."""
    data, ids = sweep_data(lrs=(0.5, 1.0, 2.0))
    data.jobs[0]["status"] = "running"
    running, done = ids[0.5], ids[1.0]
    with serve_fake(data) as api:
        async with api.client() as client:
            default = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
            any_status = (
                await client.call_tool("compare_jobs", {"suffix": "lr-sweep", "status": "any"})
            ).structured_content
            by_ids = [
                (await client.call_tool("compare_jobs", {"job_ids": [running, done], **extra})).structured_content
                for extra in ({}, {"status": "succeeded"}, {"status": "failed"})
            ]
    assert default["jobs_compared"] == 2 and running not in {e["job_id"] for e in default["leaderboard"]}
    assert any_status["jobs_compared"] == 3 and running in {e["job_id"] for e in any_status["leaderboard"]}
    for out in by_ids:
        assert out["jobs_compared"] == 2 and {e["job_id"] for e in out["leaderboard"]} == {running, done}


# --- dates: no offset means UTC ------------------------------------------------------------------------------------


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """The process's local time zone set to UTC+9, so a date read as local time would be 9 hours off."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("far_from_utc")
async def test_created_after_without_an_offset_means_utc(serve_fake):
    """README, list_jobs: "Dates are ISO 8601 (2026-11-01, 2026-11-01T12:00:00Z; no offset means UTC)"."""
    before, after = fake_id("ftjob-", 1), fake_id("ftjob-", 2)
    data = FakeData(jobs=[job(before, created_at=JAN_1_2026 - 3600), job(after, created_at=JAN_1_2026 + 3600)])
    with serve_fake(data) as api:
        async with api.client() as client:
            found = {
                created_after: [
                    j["id"]
                    for j in (await client.call_tool("list_jobs", {"created_after": created_after})).structured_content[
                        "jobs"
                    ]
                ]
                for created_after in (
                    "2026-01-01T00:00:00Z",
                    "2026-01-01T00:00:00",
                    "2026-01-01",
                    "2026-01-01T09:00:00+09:00",
                )
            }
    assert found == {created_after: [after] for created_after in found}


# --- HTTP: SSE responses, and one cache for every client ----------------------------------------------------------


@pytest.mark.parametrize("stateless", [False, True])
async def test_responses_are_sse_streams_with_and_without_sessions(stateless):
    """README, Sessions or stateless: "Responses are always SSE streams (never plain JSON)"."""
    with demo_server(stateless=stateless) as root:
        async with httpx2.AsyncClient() as http:
            raw = await http.post(
                f"{root}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}
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
        serve_fake(_one_job()) as api,
        serving(create_app(api.settings, HttpOptions(auth_token=TOKEN, stateless=stateless))) as root,
    ):
        async with mcp_client(root, mode) as first:
            one = await first.call_tool("best_checkpoint", {"job_id": JOB})
        made = len(api.faults.requests)
        async with mcp_client(root, mode) as second:
            two = await second.call_tool("best_checkpoint", {"job_id": JOB})
    assert made == 2 and len(api.faults.requests) == made  # the second client's identical call made no request
    assert one.structured_content == two.structured_content
