"""compare_jobs end to end through the MCP client against the fake API on 127.0.0.1: the winner, like-with-like
ranking, per-job failures, the cache (request counts), the concurrency bound (measured at the fake), the scan limit,
progress and cancellation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client
from starlette.types import ASGIApp, Receive, Scope, Send

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import (
    FakeData,
    FakeOpenAI,
    Fault,
    FaultInjector,
)
from openai_checkpoints_mcp.server import create_server

from .helpers import (
    RESULT_FILE,
    SWEEP,
    TEST_KEY,
    Clock,
    fake_id,
    job,
    open_store,
    serve_app,
    sweep_data,
)

pytestmark = pytest.mark.anyio


async def test_compare_jobs_status_any_includes_running_jobs_and_job_ids_ignore_status(
    serve_fake,
):
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


async def test_compare_progress_strictly_increases_when_reads_overtake_the_listing():
    """MCP requires each progress value to be larger than the last; the listing's end must not repeat one."""
    data, _ = sweep_data(others=0)
    fake = FakeOpenAI(data, api_key=TEST_KEY, max_page_size=2)  # two listing pages of two sweep jobs
    updates: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total))

    with serve_app(ReadsFirst(fake, reads=2)) as base_url:
        async with Client(create_server(_settings(base_url))) as client:
            result = await client.call_tool("compare_jobs", {"suffix": "lr-sweep"}, progress_callback=on_progress)
    assert not result.is_error and result.structured_content["jobs_compared"] == 4
    values = [value for value, _ in updates]
    assert values == sorted(set(values)), updates  # strictly increasing
    assert values[-1] == 4


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


async def test_a_job_that_succeeded_since_the_cached_listing_is_compared(serve_fake):
    data, ids = sweep_data(lrs=(0.5, 1.0), winner_lr=0.5, others=0)
    running = data.jobs[0]
    running.update(
        status="running",
        finished_at=None,
        fine_tuned_model=None,
        result_files=[],
        trained_tokens=None,
    )
    with serve_fake(data) as api:
        async with api.client() as client:
            before = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
            _finish(running)  # the sweep's last job finishes a few seconds later
            after = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert [e["job_id"] for e in before["leaderboard"]] == [ids[1.0]]
    assert after["listing_age_seconds"] is not None  # the listing itself was reused...
    assert after["jobs_compared"] == 2 and after["winner"]["job_id"] == ids[0.5]  # ...but not the job's old status


async def test_a_job_that_left_the_status_since_the_cached_listing_is_not_compared(
    serve_fake,
):
    data, ids = sweep_data(lrs=(0.5, 1.0), others=0)
    running = data.jobs[0]
    running.update(
        status="running",
        finished_at=None,
        fine_tuned_model=None,
        result_files=[],
        trained_tokens=None,
    )
    args = {"suffix": "lr-sweep", "status": "running"}
    with serve_fake(data) as api:
        async with api.client() as client:
            before = (await client.call_tool("compare_jobs", args)).structured_content
            _finish(running)
            after = (await client.call_tool("compare_jobs", args)).structured_content
    assert [e["job_id"] for e in before["leaderboard"]] == [ids[0.5]]
    assert after["jobs_compared"] == 0 and after["leaderboard"] == [], after["leaderboard"]


async def test_continuing_a_cached_listing_does_not_make_its_old_pages_look_new(
    serve_fake,
):
    """A listing read in parts must expire by the age of its first page, however often it is continued."""
    jobs = [job(fake_id("ftjob-", n), created_at=1_760_000_000 + n) for n in range(6)]
    clock = Clock()
    with serve_fake(FakeData(jobs=jobs), max_page_size=2) as api:
        async with open_store(api.base_url, clock) as store:

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


async def test_a_listing_of_exactly_the_scan_limit_is_complete_not_truncated(
    serve_fake,
):
    from openai_checkpoints_mcp.tools.sweeps import COMPARE_SCAN_MAX_PAGES

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
    from openai_checkpoints_mcp.tools.sweeps import COMPARE_SCAN_MAX_PAGES

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


async def test_a_filtered_comparison_stays_within_the_bound_while_paging(serve_fake):
    """The listing's pages and the per-job reads share the bound."""
    data, _ = sweep_data(lrs=tuple(0.1 * n for n in range(1, 13)), others=0)
    async with metered(data, fake_options={"max_page_size": 3}, concurrency=2) as (
        client,
        faults,
    ):
        out = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert out["jobs_compared"] == 12 and faults.peak == 2


@pytest.mark.parametrize(
    ("overrides", "fault", "code"),
    [
        ({"api_key": "sk-wrong-key-000000000000"}, None, "auth_failed: "),
        ({"api_key": None}, None, "auth_missing: "),
        (
            {"max_retries": 0},
            Fault(status=503, path_contains="/fine_tuning/jobs"),
            "upstream_unavailable: ",
        ),
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
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 502, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


async def test_a_listing_page_failing_midway_is_an_error_not_a_partial_leaderboard():
    data, _ = sweep_data(others=4)
    fake = FakeOpenAI(data, api_key=TEST_KEY, max_page_size=3)  # the first page names sweep jobs, whose reads start
    with serve_app(FailingContinuation(fake)) as base_url:
        async with Client(create_server(_settings(base_url, max_retries=0))) as client:
            result = await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})
    assert result.is_error and result.content[0].text.startswith("upstream_unavailable: "), result.content[0].text


async def test_the_rationale_says_which_jobs_of_the_sweep_the_status_filter_left_out(
    serve_fake,
):
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


@asynccontextmanager
async def metered(
    data: FakeData,
    *,
    latency: float = 0.03,
    fake_options: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[Client, FaultInjector]]:
    """An MCP client of a server for `data` (`settings` override its settings), served behind a fault injector that
    holds each request for `latency` seconds and counts the requests in flight (`faults.in_flight`, `faults.peak`);
    `fake_options` go to `FakeOpenAI`."""
    fake = FakeOpenAI(data, api_key=TEST_KEY, **(fake_options or {}))
    faults = FaultInjector(fake, latency=latency)
    with serve_app(faults) as base_url:
        server = create_server(
            Settings(
                api_key=TEST_KEY,
                base_url=base_url,
                timeout=5.0,
                deadline=30.0,
                **settings,
            )
        )
        async with Client(server) as client:
            yield client, faults


async def test_sweep_by_suffix_finds_the_known_winner_and_its_checkpoint(serve_fake):
    data, ids = sweep_data()
    with serve_fake(data) as api:
        async with api.client() as client:
            result = await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})
    out = result.structured_content
    assert not result.is_error
    assert out["jobs_compared"] == 4 and out["jobs_scanned"] == 9 and out["failed"] == []
    assert out["metric"] == "full_valid_loss" and out["goal"] == "min"
    assert out["winner"]["job_id"] == ids[1.0]
    assert out["winner"]["best_checkpoint"]["step_number"] == 200
    assert out["winner"]["value"] == pytest.approx(0.30)
    assert out["leaderboard"][0]["hyperparameters"]["learning_rate_multiplier"] == 1.0
    assert out["winner"]["best_checkpoint"] == {
        k: out["leaderboard"][0]["best_checkpoint"][k] for k in ("id", "step_number", "fine_tuned_model_checkpoint")
    }
    assert [e["job_id"] for e in out["leaderboard"]] == [
        ids[1.0],
        ids[0.5],
        ids[2.0],
        ids[4.0],
    ]
    assert [e["rank"] for e in out["leaderboard"]] == [1, 2, 3, 4]
    assert out["rationale"].startswith(f"{ids[1.0]} (lr-sweep, lr 1.0, 3 epochs) wins")
    assert "0.325 for the runner-up" in out["rationale"]


async def test_metadata_selection_is_filtered_by_the_api(serve_fake):
    data, ids = sweep_data()
    with serve_fake(data) as api:
        async with api.client() as client:
            out = (await client.call_tool("compare_jobs", {"metadata": SWEEP})).structured_content
        listed = api.upstream_requests("/fine_tuning/jobs")
    assert out["winner"]["job_id"] == ids[1.0] and out["jobs_scanned"] == 4
    assert listed[0].query["metadata[sweep]"] == ["lr-2026-11"]


async def test_jobs_without_validation_are_ranked_separately_not_mixed(serve_fake):
    data, ids = sweep_data(lrs=(0.5, 1.0, 2.0), winner_lr=2.0, without_validation=1)  # the 2.0 job has no validation
    with serve_fake(data) as api:
        async with api.client() as client:
            out = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    board = out["leaderboard"]
    assert out["metric"] == "full_valid_loss"
    assert out["winner"]["job_id"] == ids[1.0]  # best among jobs with validation metrics, not the train-only job
    assert [(e["job_id"], e["metric"], e["rank"]) for e in board] == [
        (ids[1.0], "full_valid_loss", 1),
        (ids[0.5], "full_valid_loss", 2),
        (ids[2.0], "train_loss", 1),
    ]
    assert board[2]["has_validation_file"] is False
    assert "1 job ranked separately by train_loss" in out["rationale"]
    assert "not mixed" in out["rationale"]


async def test_a_job_that_404s_is_listed_as_failed_and_the_rest_are_compared(
    serve_fake,
):
    data, ids = sweep_data(lrs=(0.5, 1.0))
    missing = "ftjob-DoesNotExist000000000000000"
    with serve_fake(data) as api:
        async with api.client() as client:
            result = await client.call_tool("compare_jobs", {"job_ids": [ids[0.5], missing, ids[1.0]]})
    out = result.structured_content
    assert not result.is_error
    assert out["winner"]["job_id"] == ids[1.0] and out["jobs_compared"] == 2
    assert [f["job_id"] for f in out["failed"]] == [missing]
    assert out["failed"][0]["error"].startswith("not_found: ")
    assert "1 job could not be read" in out["rationale"]


async def test_every_job_failing_is_an_error_not_an_empty_leaderboard(serve_fake):
    with serve_fake(FakeData()) as api:
        async with api.client() as client:
            result = await client.call_tool("compare_jobs", {"job_ids": ["ftjob-Gone0000000000000000001"]})
    assert result.is_error and result.content[0].text.startswith("not_found: ")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({}, "say which jobs to compare"),
        ({"job_ids": ["ftjob-abc"], "suffix": "x"}, "not both"),
        ({"job_ids": ["not-a-job"]}, "job_ids.0"),
        ({"job_ids": []}, "job_ids"),
        ({"suffix": "x", "max_jobs": 0}, "max_jobs"),
        ({"suffix": "x", "metric": "auto", "goal": "min"}, "goal applies only"),
        ({"suffix": "x", "status": "done"}, "status"),
    ],
)
async def test_bad_arguments_make_no_request(serve_fake, args, needle):
    with serve_fake(FakeData()) as api:
        async with api.client() as client:
            result = await client.call_tool("compare_jobs", args)
        assert api.faults.requests == []
    assert result.is_error
    text = result.content[0].text
    assert text.startswith("invalid_argument: ") and needle in text


async def test_a_repeated_comparison_costs_zero_requests_and_refresh_reads_again(
    serve_fake,
):
    data, ids = sweep_data()
    with serve_fake(data) as api:
        async with api.client() as client:
            first = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
            made = len(api.faults.requests)
            second = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
            after_second = len(api.faults.requests)
            third = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep", "refresh": True})).structured_content
            after_third = len(api.faults.requests)
            by_id = (await client.call_tool("compare_jobs", {"job_ids": list(ids.values())})).structured_content
            after_ids = len(api.faults.requests)
    assert made == first["upstream_requests"] == 1 + 4  # one listing page, one checkpoint page per sweep job
    assert after_second == made and second["upstream_requests"] == 0
    assert second["listing_age_seconds"] is not None and first["listing_age_seconds"] is None
    assert after_third - after_second == 5 == third["upstream_requests"]
    assert after_ids == after_third and by_id["upstream_requests"] == 0  # finished jobs: objects and checkpoints cached
    for out in (second, third, by_id):
        assert out["winner"] == first["winner"]


async def test_running_jobs_are_never_served_from_the_cache(serve_fake):
    data, ids = sweep_data(lrs=(0.5, 1.0))
    data.jobs[0]["status"] = "running"
    with serve_fake(data) as api:
        async with api.client() as client:
            await client.call_tool("compare_jobs", {"job_ids": list(ids.values())})
            api.faults.requests.clear()
            await client.call_tool("compare_jobs", {"job_ids": list(ids.values())})
            paths = sorted(r.path for r in api.faults.requests)
    running = ids[0.5]
    assert paths == [
        f"/v1/fine_tuning/jobs/{running}",
        f"/v1/fine_tuning/jobs/{running}/checkpoints",
    ]


async def test_cache_size_zero_disables_the_cache(serve_fake):
    data, ids = sweep_data(lrs=(0.5, 1.0))
    with serve_fake(data) as api:
        async with api.client(cache_size=0) as client:
            await client.call_tool("best_checkpoint", {"job_id": ids[1.0]})
            api.faults.requests.clear()
            await client.call_tool("best_checkpoint", {"job_id": ids[1.0]})
    assert len(api.faults.requests) == 2


@pytest.mark.parametrize("bound", [1, 3, 8])
async def test_requests_in_flight_never_exceed_the_bound(bound):
    data, ids = sweep_data(lrs=tuple(0.1 * n for n in range(1, 21)), winner_lr=1.0, others=0)
    async with metered(data, concurrency=bound) as (client, faults):
        out = (await client.call_tool("compare_jobs", {"job_ids": list(ids.values())})).structured_content
    assert out["jobs_compared"] == 20 and len(faults.requests) == 40
    assert faults.peak == bound  # reached (so the work ran concurrently) and never exceeded


async def test_progress_reports_jobs_done_of_total(serve_fake, mode):
    data, ids = sweep_data()
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    with serve_fake(data) as api:
        async with api.client(mode) as client:
            await client.call_tool(
                "compare_jobs",
                {"job_ids": list(ids.values())},
                progress_callback=on_progress,
            )
    assert [u[0] for u in updates] == [1, 2, 3, 4]
    assert all(u[1] == 4 for u in updates)
    assert updates[-1][2] == "4 of 4 jobs read"


async def test_cancelling_the_call_stops_the_work():
    data, ids = sweep_data(lrs=tuple(0.1 * n for n in range(1, 21)), others=0)
    async with metered(data, latency=0.2, concurrency=2) as (client, faults):
        with anyio.move_on_after(0.5):
            await client.call_tool("compare_jobs", {"job_ids": list(ids.values())})
        with anyio.fail_after(5):  # what was already sent drains (the server thread may lag under load)
            while faults.in_flight:
                await anyio.sleep(0.05)
        started = len(faults.requests)
        await anyio.sleep(0.6)  # longer than two rounds of the bounded work would take
        # Nothing new was sent after the cancellation (a full run would make 40 requests).
        assert len(faults.requests) == started < 40
        # The session is still usable.
        again = await client.call_tool("get_job", {"job_id": ids[1.0]})
        assert not again.is_error


async def test_a_sweep_on_equal_footing_has_no_budget_warning(serve_fake):
    data, _ = sweep_data(lrs=(0.5, 1.0, 2.0), others=0)
    data.jobs[1]["trained_tokens"] = 1_348_756  # 5% more: within the 10% tolerance
    with serve_fake(data) as api:
        async with api.client() as client:
            out = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert out["warnings"] == [] and "footing" not in out["rationale"]


async def test_runs_of_unequal_budget_or_base_model_are_warned_about(serve_fake):
    """A winner ranked against runs that had more epochs, a larger batch, more tokens or another base model is still
    named, but the result says the footing was unequal."""
    data, ids = sweep_data(lrs=(0.5, 1.0, 2.0), others=0)
    loser = next(body for body in data.jobs if body["id"] == ids[2.0])
    for where in (loser["hyperparameters"], loser["method"]["supervised"]["hyperparameters"]):
        where.update(n_epochs=6, batch_size=16)
    loser.update(model="gpt-4.1-mini-2025-04-14", trained_tokens=1284530 * 2)
    with serve_fake(data) as api:
        async with api.client() as client:
            out = (await client.call_tool("compare_jobs", {"suffix": "lr-sweep"})).structured_content
    assert out["winner"]["job_id"] == ids[1.0]
    assert [w.split(":")[0] for w in out["warnings"]] == [
        f"The 3 supervised jobs ranked by full_valid_loss differ in {aspect}"
        for aspect in ("base model", "n_epochs", "batch_size")
    ] + ["The 3 supervised jobs ranked by full_valid_loss differ in trained_tokens by more than 10%"]
    assert f"6 ({ids[2.0]})" in out["warnings"][1] and f"2,569,060 ({ids[2.0]}) against 1,284,530" in out["warnings"][3]
    assert (
        "Not on equal footing: the jobs ranked with the winner differ in base model, n_epochs, batch_size and "
        in (out["rationale"])
    )
