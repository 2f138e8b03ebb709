"""compare_jobs end to end through the MCP client against the fake API on 127.0.0.1: the winner, like-with-like
ranking, per-job failures, the cache (request counts), the concurrency bound (measured at the fake), progress and
cancellation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, FaultInjector, running_server
from openai_checkpoints_mcp.server import create_server

from .conftest import TEST_KEY
from .factories import checkpoint, fake_id, job

pytestmark = pytest.mark.anyio

SWEEP = {"sweep": "lr-2026-11"}


def sweep_data(
    *,
    lrs: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0),
    winner_lr: float = 1.0,
    others: int = 5,
    without_validation: int = 0,
) -> tuple[FakeData, dict[float, str]]:
    """A sweep over learning rates (3 checkpoints each; the job at `winner_lr` has the lowest full_valid_loss, at
    its middle checkpoint), plus `others` unrelated jobs interleaved. The last `without_validation` sweep jobs have
    no validation file (only train metrics)."""
    data = FakeData()
    ids: dict[float, str] = {}
    created = 1_760_000_000
    for n, lr in enumerate(lrs):
        job_id = fake_id("ftjob-", 100 + n)
        ids[lr] = job_id
        has_validation = n < len(lrs) - without_validation
        body = job(
            job_id, created_at=created + 10 * n, suffix="lr-sweep", metadata=dict(SWEEP), validation=has_validation
        )
        body["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"] = lr
        body["hyperparameters"]["learning_rate_multiplier"] = lr
        data.jobs.append(body)
        base = 0.30 + abs(lr - winner_lr) * 0.05
        cps = []
        for k, step in enumerate((100, 200, 300)):
            metrics: dict[str, Any] = {"train_loss": 0.5 - 0.1 * k - lr * 0.01}
            if has_validation:
                metrics["full_valid_loss"] = base + (0.02 if k != 1 else 0.0)
                metrics["valid_loss"] = base + 0.01
            cps.append(checkpoint(job_id, step, metrics, n=1000 + 10 * n + k))
        data.checkpoints[job_id] = cps
    for n in range(others):
        other = fake_id("ftjob-", 500 + n)
        data.jobs.append(job(other, created_at=created + 10 * n + 5, suffix="other"))
        data.checkpoints[other] = [checkpoint(other, 50, {"full_valid_loss": 0.01}, n=5000 + n)]
    return data, ids


@asynccontextmanager
async def metered(
    data: FakeData, *, latency: float = 0.03, fake_options: dict[str, Any] | None = None, **settings: Any
) -> AsyncIterator[tuple[Client, FaultInjector]]:
    """An MCP client of a server for `data` (`settings` override its settings), served behind a fault injector that
    holds each request for `latency` seconds and counts the requests in flight (`faults.in_flight`, `faults.peak`);
    `fake_options` go to `FakeOpenAI`."""
    fake = FakeOpenAI(data, api_key=TEST_KEY, **(fake_options or {}))
    faults = FaultInjector(fake, latency=latency)
    with running_server(faults) as base_url:
        server = create_server(Settings(api_key=TEST_KEY, base_url=base_url, timeout=5.0, deadline=30.0, **settings))
        async with Client(server) as client:
            yield client, faults


def _jobs_listed(faults: FaultInjector) -> list[Any]:
    return [r for r in faults.requests if r.path.endswith("/fine_tuning/jobs")]


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
    assert [e["job_id"] for e in out["leaderboard"]] == [ids[1.0], ids[0.5], ids[2.0], ids[4.0]]
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


async def test_a_job_that_404s_is_listed_as_failed_and_the_rest_are_compared(serve_fake):
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


async def test_a_repeated_comparison_costs_zero_requests_and_refresh_reads_again(serve_fake):
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
    assert paths == [f"/v1/fine_tuning/jobs/{running}", f"/v1/fine_tuning/jobs/{running}/checkpoints"]


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
            await client.call_tool("compare_jobs", {"job_ids": list(ids.values())}, progress_callback=on_progress)
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


async def test_a_write_drops_the_cached_listing_so_the_new_status_is_seen(serve_fake):
    data, ids = sweep_data(lrs=(0.5, 1.0))
    data.jobs[0]["status"] = "running"
    running = ids[0.5]
    with serve_fake(data) as api:
        async with api.client(allow_writes=True) as client:
            args = {"suffix": "lr-sweep", "status": "running"}
            before = (await client.call_tool("compare_jobs", args)).structured_content
            await client.call_tool("cancel_job", {"job_id": running})
            api.faults.requests.clear()
            after = (await client.call_tool("compare_jobs", args)).structured_content
            relisted = [r for r in api.faults.requests if r.path.endswith("/fine_tuning/jobs")]
    assert [e["job_id"] for e in before["leaderboard"]] == [running]
    assert len(relisted) == 1 and after["listing_age_seconds"] is None
    assert after["jobs_compared"] == 0 and after["winner"] is None
    assert after["rationale"].startswith("No job matched (suffix='lr-sweep', status=running) among the 7 jobs read")
