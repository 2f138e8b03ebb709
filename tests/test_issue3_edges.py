"""Adversarial edges of the sweep tools (compare_jobs, training_metrics, list_events, list_jobs' filters) and of the
cache behind them, against the fake API over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from starlette.types import ASGIApp, Receive, Scope, Send

from openai_checkpoints_mcp.api.cache import ResponseCache
from openai_checkpoints_mcp.api.client import OpenAIClient, create_http_client
from openai_checkpoints_mcp.api.store import JobStore
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeData, FakeFile, FakeOpenAI, Fault, running_server
from openai_checkpoints_mcp.server import create_server

from .conftest import TEST_KEY
from .factories import checkpoint, fake_id, job
from .test_sweeps import metered, sweep_data

pytestmark = pytest.mark.anyio

RESULT_FILE = "file-7HnR3vTq9WxY2zLk5MpJcA"  # the result file id tests.factories.job gives succeeded jobs


class ReadsFirst:
    """ASGI wrapper that answers a job-listing page that continues from a cursor only once `reads` checkpoint lists
    have been answered, so the reads of the first page's jobs finish before the listing does."""

    def __init__(self, app: ASGIApp, reads: int) -> None:
        self.app = app
        self.reads = reads
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].endswith("/fine_tuning/jobs") and b"after=" in scope.get("query_string", b""):
            with anyio.fail_after(5):
                while self.answered < self.reads:
                    await anyio.sleep(0.005)
        await self.app(scope, receive, send)
        if scope["path"].endswith("/checkpoints"):
            self.answered += 1


def _settings(base_url: str, **overrides: Any) -> Settings:
    return Settings(api_key=TEST_KEY, base_url=base_url, timeout=5.0, deadline=30.0, **overrides)


def _finish(body: dict[str, Any]) -> None:
    """Make a running job of the fake succeed (as the API would show it afterwards)."""
    body.update(
        status="succeeded",
        finished_at=body["created_at"] + 3800,
        trained_tokens=1000,
        fine_tuned_model=f"ft:gpt-4o-mini-2024-07-18:acme-labs:{body['user_provided_suffix']}:Zz9",
        result_files=[RESULT_FILE],
    )


# --- progress --------------------------------------------------------------------------------------------------


async def test_compare_progress_strictly_increases_when_reads_overtake_the_listing():
    """MCP requires each progress value to be larger than the last; the listing's end must not repeat one."""
    data, _ = sweep_data(others=0)
    fake = FakeOpenAI(data, api_key=TEST_KEY, max_page_size=2)  # two listing pages of two sweep jobs
    updates: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total))

    with running_server(ReadsFirst(fake, reads=2)) as base_url:
        async with Client(create_server(_settings(base_url))) as client:
            result = await client.call_tool("compare_jobs", {"suffix": "lr-sweep"}, progress_callback=on_progress)
    assert not result.is_error and result.structured_content["jobs_compared"] == 4
    values = [value for value, _ in updates]
    assert values == sorted(set(values)), updates  # strictly increasing
    assert values[-1] == 4


# --- odd data ----------------------------------------------------------------------------------------------------


async def test_odd_hyperparameter_types_do_not_crash_the_comparison(serve_fake):
    data, ids = sweep_data(lrs=(0.5, 1.0), others=0)
    first = data.jobs[0]["method"]["supervised"]["hyperparameters"]
    first.update(n_epochs=2.5, batch_size=16.0)  # an OpenAI-compatible server sending floats
    second = data.jobs[1]["method"]["supervised"]["hyperparameters"]
    second.update(n_epochs=True, batch_size=[8])
    with serve_fake(data) as api:
        async with api.client() as client:
            result = await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})
    assert not result.is_error, result.content[0].text
    by_id = {e["job_id"]: e["hyperparameters"] for e in result.structured_content["leaderboard"]}
    assert by_id[ids[0.5]]["batch_size"] == 16 and by_id[ids[0.5]]["learning_rate_multiplier"] == 0.5
    assert by_id[ids[1.0]]["n_epochs"] is None and by_id[ids[1.0]]["batch_size"] is None


# --- the cached listing never serves a job's stale status ----------------------------------------------------------


async def test_a_job_that_succeeded_since_the_cached_listing_is_compared(serve_fake):
    data, ids = sweep_data(lrs=(0.5, 1.0), winner_lr=0.5, others=0)
    running = data.jobs[0]
    running.update(status="running", finished_at=None, fine_tuned_model=None, result_files=[], trained_tokens=None)
    with serve_fake(data) as api:
        async with api.client() as client:
            before = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
            _finish(running)  # the sweep's last job finishes a few seconds later
            after = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert [e["job_id"] for e in before["leaderboard"]] == [ids[1.0]]
    assert after["listing_age_seconds"] is not None  # the listing itself was reused...
    assert after["jobs_compared"] == 2 and after["winner"]["job_id"] == ids[0.5]  # ...but not the job's old status


async def test_a_job_that_left_the_status_since_the_cached_listing_is_not_compared(serve_fake):
    data, ids = sweep_data(lrs=(0.5, 1.0), others=0)
    running = data.jobs[0]
    running.update(status="running", finished_at=None, fine_tuned_model=None, result_files=[], trained_tokens=None)
    args = {"suffix": "lr-sweep", "status": "running"}
    with serve_fake(data) as api:
        async with api.client() as client:
            before = (await client.call_tool("compare_jobs", args)).structured_content
            _finish(running)
            after = (await client.call_tool("compare_jobs", args)).structured_content
    assert [e["job_id"] for e in before["leaderboard"]] == [ids[0.5]]
    assert after["jobs_compared"] == 0 and after["leaderboard"] == [], after["leaderboard"]


@asynccontextmanager
async def _store(base_url: str, clock: Any) -> AsyncIterator[JobStore]:
    settings = _settings(base_url)
    async with create_http_client(settings) as http:
        yield JobStore(OpenAIClient(http, settings), ResponseCache(100, job_ttl=600, listing_ttl=60, clock=clock))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_continuing_a_cached_listing_does_not_make_its_old_pages_look_new(serve_fake):
    """A listing read in parts must expire by the age of its first page, however often it is continued."""
    jobs = [job(fake_id("ftjob-", n), created_at=1_760_000_000 + n) for n in range(6)]
    clock = Clock()
    with serve_fake(FakeData(jobs=jobs), max_page_size=2) as api:
        async with _store(api.base_url, clock) as store:

            async def read(pages: int) -> list[float | None]:
                ages = []
                async for page in store.job_pages(page_size=100):
                    ages.append(page.cached_age)
                    if len(ages) == pages:
                        break
                return ages

            assert await read(1) == [None]  # the first page, read at t=1000
            clock.now += 50
            assert await read(2) == [50.0, None]  # reused, then continued
            clock.now += 50  # the first page is now 100 s old, older than the 60 s listing TTL
            api.faults.requests.clear()
            ages = await read(3)
    assert ages == [None, None, None]  # read again from the start
    assert len(api.upstream_requests("/fine_tuning/jobs")) == 3


# --- paging and has_more ---------------------------------------------------------------------------------------------


async def test_list_jobs_has_no_more_when_created_after_ends_the_page_right_after_the_last_match(serve_fake):
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    jobs = [job(fake_id("ftjob-", n), created_at=start + n * 86_400) for n in range(30)]
    with serve_fake(FakeData(jobs=jobs)) as api:
        async with api.client() as client:
            # Days 25-29 are on or after 2026-01-26: exactly 5 jobs, and the next one on the page is older.
            out = (
                await client.call_tool("list_jobs", {"created_after": "2026-01-26", "max_results": 5})
            ).structured_content
            filtered = (
                await client.call_tool(
                    "list_jobs", {"created_after": "2026-01-26", "suffix": "support-bot", "max_results": 5}
                )
            ).structured_content
    for result in (out, filtered):
        assert [j["id"] for j in result["jobs"]] == [jobs[n]["id"] for n in range(29, 24, -1)]
        assert result["has_more"] is False and result["next_after"] is None


async def test_list_events_by_level_has_no_more_when_nothing_else_on_the_last_page_matches(serve_fake):
    job_id = fake_id("ftjob-", 1)
    events = [
        {
            "object": "fine_tuning.job.event",
            "id": fake_id("ftevent-", i),
            "created_at": 1754036000 + i,
            "level": "error" if i in (7, 9) else "info",
            "message": f"event {i}",
            "data": {},
        }
        for i in range(10)
    ]
    with serve_fake(FakeData(jobs=[job(job_id)], events={job_id: events})) as api:
        async with api.client() as client:
            out = (
                await client.call_tool("list_events", {"job_id": job_id, "level": "error", "limit": 2})
            ).structured_content
    assert [e["message"] for e in out["events"]] == ["event 9", "event 7"]
    assert out["has_more"] is False and out["next_after"] is None


async def test_list_jobs_cursor_continuation_with_a_status_filter_has_no_gaps_or_repeats(serve_fake):
    statuses = ("succeeded", "failed", "cancelled", "running")
    jobs = [job(fake_id("ftjob-", n), created_at=1_760_000_000 + n, status=statuses[n % 7 % 4]) for n in range(260)]
    expected = [j["id"] for j in sorted(jobs, key=lambda j: j["created_at"], reverse=True) if j["status"] == "failed"]
    seen: list[str] = []
    with serve_fake(FakeData(jobs=jobs), max_page_size=30) as api:
        async with api.client() as client:
            after = None
            for _ in range(50):
                args: dict[str, Any] = {"status": "failed", "max_results": 7}
                if after:
                    args["after"] = after
                out = (await client.call_tool("list_jobs", args)).structured_content
                seen += [j["id"] for j in out["jobs"]]
                if not out["has_more"]:
                    break
                after = out["next_after"]
    assert seen == expected


async def test_a_listing_of_exactly_the_scan_limit_is_complete_not_truncated(serve_fake):
    from openai_checkpoints_mcp.compare import COMPARE_SCAN_MAX_PAGES

    jobs = [
        job(fake_id("ftjob-", n), created_at=1_760_000_000 + n, suffix="other") for n in range(COMPARE_SCAN_MAX_PAGES)
    ]
    jobs[0]["user_provided_suffix"] = "lr-sweep"  # the oldest job, on the last page
    with serve_fake(FakeData(jobs=jobs), max_page_size=1) as api:
        async with api.client() as client:
            out = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert out["jobs_compared"] == 1 and out["jobs_scanned"] == COMPARE_SCAN_MAX_PAGES
    assert out["truncated"] is False and "Only the newest" not in out["rationale"]


async def test_the_scan_limit_is_named_as_the_cause_not_max_jobs(serve_fake):
    from openai_checkpoints_mcp.compare import COMPARE_SCAN_MAX_PAGES

    jobs = [
        job(fake_id("ftjob-", n), created_at=1_760_000_000 + n, suffix="other")
        for n in range(COMPARE_SCAN_MAX_PAGES + 3)
    ]
    with serve_fake(FakeData(jobs=jobs), max_page_size=1) as api:
        async with api.client() as client:
            scan = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert scan["truncated"] is True and scan["jobs_compared"] == 0
    assert "raise max_jobs" not in scan["rationale"] and "Only the newest 0" not in scan["rationale"]
    assert f"Only the newest {COMPARE_SCAN_MAX_PAGES} jobs were searched" in scan["rationale"]
    data, _ = sweep_data(others=0)
    with serve_fake(data) as api:
        async with api.client() as client:
            capped = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep", "max_jobs": 2})).structured_content
    assert capped["truncated"] is True and capped["jobs_compared"] == 2
    assert "Only the newest 2 matching jobs were compared" in capped["rationale"] and "max_jobs" in capped["rationale"]


# --- the result file of an unfinished job ----------------------------------------------------------------------------


def _csv(steps: int) -> bytes:
    return ("step,train_loss\n" + "".join(f"{s},{1.0 / s:.4f}\n" for s in range(1, steps + 1))).encode()


async def test_the_result_file_of_an_unfinished_job_is_never_served_from_the_cache(serve_fake):
    job_id = fake_id("ftjob-", 77)
    body = job(job_id, status="paused")
    body["result_files"] = [RESULT_FILE]  # a paused job that already lists a (partial) result file
    meta = {"object": "file", "id": RESULT_FILE, "purpose": "fine-tune-results", "filename": "step_metrics.csv"}
    data = FakeData(
        jobs=[body],
        checkpoints={job_id: [checkpoint(job_id, 10, {"train_loss": 0.5})]},
        files={RESULT_FILE: FakeFile(meta=meta, content=_csv(10))},
    )
    with serve_fake(data) as api:
        async with api.client() as client:
            first = (await client.call_tool("training_metrics", {"job_id": job_id})).structured_content
            data.files[RESULT_FILE] = FakeFile(meta=meta, content=_csv(20))  # training went on
            second = (await client.call_tool("training_metrics", {"job_id": job_id})).structured_content
    assert (first["steps"], second["steps"]) == (10, 20)


# --- the concurrency bound with a filter ---------------------------------------------------------------------------


async def test_a_filtered_comparison_stays_within_the_bound_while_paging(serve_fake):
    """The listing's pages and the per-job reads share the bound."""
    data, _ = sweep_data(lrs=tuple(0.1 * n for n in range(1, 13)), others=0)
    async with metered(data, fake_options={"max_page_size": 3}, concurrency=2) as (client, faults):
        out = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert out["jobs_compared"] == 12 and faults.peak == 2


# --- a failing listing is an error with its code, never a generic one ------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "fault", "code"),
    [
        ({"api_key": "sk-wrong-key-000000000000"}, None, "auth_failed: "),
        ({"api_key": None}, None, "auth_missing: "),
        ({"max_retries": 0}, Fault(status=503, path_contains="/fine_tuning/jobs"), "upstream_unavailable: "),
    ],
)
async def test_a_listing_that_fails_gives_the_error_code(serve_fake, overrides, fault, code):
    data, _ = sweep_data()
    with serve_fake(data) as api:
        if fault is not None:
            api.faults.add(fault)
        async with api.client(**overrides) as client:
            result = await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})
    assert result.is_error and result.content[0].text.startswith(code), result.content[0].text
    assert TEST_KEY not in result.content[0].text


class FailingContinuation:
    """ASGI wrapper that answers 502 to every job-listing request that continues from a cursor (page 2 on)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].endswith("/fine_tuning/jobs")
            and b"after=" in scope.get("query_string", b"")
        ):
            body = b'{"error": {"message": "Bad gateway.", "type": "server_error", "param": null, "code": null}}'
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 502, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


async def test_a_listing_page_failing_midway_is_an_error_not_a_partial_leaderboard():
    data, _ = sweep_data(others=4)
    fake = FakeOpenAI(data, api_key=TEST_KEY, max_page_size=3)  # the first page names sweep jobs, whose reads start
    with running_server(FailingContinuation(fake)) as base_url:
        async with Client(create_server(_settings(base_url, max_retries=0))) as client:
            result = await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})
    assert result.is_error and result.content[0].text.startswith("upstream_unavailable: "), result.content[0].text


async def test_the_rationale_says_which_jobs_of_the_sweep_the_status_filter_left_out(serve_fake):
    data, _ = sweep_data(others=3)
    data.jobs[0].update(status="running", finished_at=None, fine_tuned_model=None, result_files=[])
    data.jobs[1].update(status="failed", finished_at=None, fine_tuned_model=None, result_files=[])
    with serve_fake(data) as api:
        async with api.client() as client:
            out = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert out["jobs_compared"] == 2
    assert (
        "2 other jobs of this selection were left out by status=succeeded (1 failed, 1 running); status='any' "
        "includes them."
    ) in out["rationale"]


def test_absurdly_large_values_do_not_break_training_metrics():
    """Values near the float limit are garbage; differences of them overflow. They count as missing."""
    from openai_checkpoints_mcp.analysis.result_file import parse_result_file

    rows = ["step,train_loss,full_valid_loss"] + [
        f"{step},{(-1) ** step * 1e308},{0.5 + step / 100 if step % 5 == 0 else ''}" for step in range(1, 41)
    ]
    table = parse_result_file(("\n".join(rows) + "\n").encode())
    assert set(table.columns["train_loss"]) == {None}
    assert table.columns["full_valid_loss"][4] == 0.55
