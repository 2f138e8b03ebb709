"""list_checkpoints and best_checkpoint end to end through the MCP client against the fake API on 127.0.0.1: every
page read, ranking and ties, custom metrics, the item cap, progress, and concurrent reads of the job and
its first page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from mcp import Client
from starlette.types import ASGIApp, Receive, Scope, Send

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import (
    FakeData,
    FakeOpenAI,
    FaultInjector,
)
from openai_checkpoints_mcp.server import create_server

from .helpers import (
    README_JOB,
    SFT_JOB,
    TEST_KEY,
    checkpoint,
    checkpoint_records,
    error_text,
    job,
    one_job,
    serve_app,
    sft_data,
)

pytestmark = pytest.mark.anyio


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
    with serve_app(gate) as base_url:
        server = create_server(Settings(api_key=TEST_KEY, base_url=base_url, timeout=5.0, deadline=30.0))
        async with Client(server) as client:
            yield client, faults, gate


async def test_the_job_and_its_first_checkpoint_page_are_read_concurrently():
    """README, Concurrency: "A job's first checkpoint page is read together with the job object"."""
    async with gated(one_job(), wait_for=2) as (client, faults, gate):
        result = await client.call_tool("best_checkpoint", {"job_id": README_JOB})
    assert result.structured_content["best"]["step_number"] == 200
    assert sorted(r.path.rsplit("/", 1)[-1] for r in faults.requests) == [
        "checkpoints",
        README_JOB,
    ]
    assert gate.peak == 2


async def test_best_checkpoint_is_not_the_final_model(serve_fake, mode):
    with serve_fake(sft_data()) as api:
        async with api.client(mode) as client:
            result = await client.call_tool("best_checkpoint", {"job_id": SFT_JOB})
    assert result.is_error is False
    data = result.structured_content
    assert data["metric"] == "full_valid_loss" and data["goal"] == "min"
    assert data["best"]["step_number"] == 240
    assert data["best"]["job_id"] == SFT_JOB
    assert data["best"]["fine_tuned_model_checkpoint"].endswith(":ckpt-step-240")
    assert data["best_is_final"] is False
    assert data["final_model"] == "ft:gpt-4o-mini-2024-07-18:acme-labs:support-bot:Bx72KpQd"
    assert [c["step_number"] for c in data["ranking"]] == [240, 360, 120]
    assert "full_valid_loss" in data["rationale"] and "step 360" in data["rationale"]
    assert data["notice"] is None


async def test_250_checkpoints_best_on_last_page_takes_three_page_requests(serve_fake):
    job_id = "ftjob-Big250Checkpoints0000000"
    # The API lists newest (highest step) first, so the lowest steps arrive on the last page.
    checkpoints = [
        checkpoint(
            job_id,
            step,
            {
                "train_loss": 1.0 + step / 1000,
                "full_valid_loss": 1.0 + abs(step - 30) / 1000,
            },
        )
        for step in range(10, 2510, 10)
    ]
    data = FakeData(jobs=[job(job_id)], checkpoints={job_id: checkpoints})
    with serve_fake(data, max_page_size=1000) as api:
        async with api.client() as client:
            listed = await client.call_tool("list_checkpoints", {"job_id": job_id})
            page_requests = api.upstream_requests("/checkpoints")
            assert len(page_requests) == 3
            assert [r.query.get("limit") for r in page_requests] == [["100"]] * 3
            assert "after" not in page_requests[0].query
            assert page_requests[1].query["after"] == [checkpoints[-100]["id"]]
            api.faults.requests.clear()
            best = await client.call_tool("best_checkpoint", {"job_id": job_id, "top_k": 5, "refresh": True})
            assert len(api.upstream_requests("/checkpoints")) == 3
            api.faults.requests.clear()
            again = await client.call_tool("best_checkpoint", {"job_id": job_id, "top_k": 5})
            assert api.upstream_requests() == []  # a finished job: served from the cache
            assert again.structured_content == best.structured_content
    assert listed.structured_content["count"] == 250
    assert listed.structured_content["pages_fetched"] == 3
    steps = [c["step_number"] for c in checkpoint_records(listed.structured_content)]
    assert steps == sorted(steps) and steps[0] == 10 and steps[-1] == 2500
    assert best.structured_content["best"]["step_number"] == 30
    assert len(best.structured_content["ranking"]) == 5
    assert best.structured_content["checkpoints_considered"] == 250


async def test_list_checkpoints_coverage_without_validation_file(serve_fake):
    job_id = "ftjob-NoValidation0000000000001"
    data = FakeData(
        jobs=[job(job_id, validation=False)],
        checkpoints={
            job_id: [
                checkpoint(job_id, s, {"train_loss": 1 / s, "train_mean_token_accuracy": 0.5}) for s in (100, 200, 300)
            ]
        },
    )
    with serve_fake(data) as api:
        async with api.client() as client:
            listed = await client.call_tool("list_checkpoints", {"job_id": job_id})
            best = await client.call_tool("best_checkpoint", {"job_id": job_id})
    coverage = listed.structured_content["coverage"]
    assert coverage["has_validation_file"] is False and coverage["method"] == "supervised"
    assert "last 3 epochs" in coverage["retention"]
    assert set(checkpoint_records(listed.structured_content)[0]["metrics"]) == {
        "train_loss",
        "train_mean_token_accuracy",
    }
    assert best.structured_content["metric"] == "train_loss"
    assert "no validation file" in best.structured_content["rationale"]
    assert "cannot detect overfitting" in best.structured_content["rationale"]
    assert best.structured_content["best_is_final"] is True


async def test_failed_job_has_no_best_and_says_why(serve_fake):
    job_id = "ftjob-Hc6Tn1Qv9YpR4wKs2ZmB7dLx"
    error = {
        "code": "invalid_n_examples",
        "message": "Training file has 6 example(s), but must have at least 10",
        "param": "training_file",
    }
    with serve_fake(FakeData(jobs=[job(job_id, status="failed", error=error)])) as api:
        async with api.client() as client:
            result = await client.call_tool("best_checkpoint", {"job_id": job_id})
    assert result.is_error is False
    data = result.structured_content
    assert data["best"] is None and data["ranking"] == [] and data["best_is_final"] is None
    assert "failed" in data["rationale"] and "Training file has 6 example(s)" in data["rationale"]


async def test_ties_break_on_accuracy_then_earlier_step(serve_fake):
    job_id = "ftjob-Ties000000000000000000001"
    cps = [
        checkpoint(
            job_id,
            100,
            {"full_valid_loss": 0.3, "full_valid_mean_token_accuracy": 0.80},
        ),
        checkpoint(
            job_id,
            200,
            {"full_valid_loss": 0.3, "full_valid_mean_token_accuracy": 0.85},
        ),
        checkpoint(
            job_id,
            300,
            {"full_valid_loss": 0.3, "full_valid_mean_token_accuracy": 0.85},
        ),
    ]
    with serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api:
        async with api.client() as client:
            result = await client.call_tool("best_checkpoint", {"job_id": job_id})
    assert [c["step_number"] for c in result.structured_content["ranking"]] == [
        200,
        300,
        100,
    ]


async def test_custom_metric_needs_goal_and_unknown_metric_lists_accepted(serve_fake):
    job_id = "ftjob-Custom00000000000000000001"
    cps = [checkpoint(job_id, s, {"train_loss": 1.0, "my_score": s / 1000}) for s in (10, 20, 30)]
    with serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api:
        async with api.client() as client:
            no_goal = await client.call_tool("best_checkpoint", {"job_id": job_id, "metric": "my_score"})
            ok = await client.call_tool(
                "best_checkpoint",
                {"job_id": job_id, "metric": "my_score", "goal": "min"},
            )
            unknown = await client.call_tool("best_checkpoint", {"job_id": job_id, "metric": "bleu"})
    assert no_goal.is_error and no_goal.content[0].text.startswith("invalid_argument: ")
    assert "goal" in no_goal.content[0].text
    assert ok.structured_content["best"]["step_number"] == 10 and ok.structured_content["goal"] == "min"
    assert unknown.is_error and "full_valid_loss" in unknown.content[0].text and "my_score" in unknown.content[0].text


def _ignoring_cursor(app):
    """Wrap an ASGI app so it never sees ``after``: a broken server that serves the first page forever."""

    async def broken(scope, receive, send):
        if scope["type"] == "http":
            query = "&".join(p for p in scope["query_string"].decode().split("&") if not p.startswith("after="))
            scope = {**scope, "query_string": query.encode()}
        await app(scope, receive, send)

    return broken


async def test_a_server_that_ignores_the_cursor_is_bad_response_not_a_loop():
    cps = [checkpoint(SFT_JOB, step, {"train_loss": 1 / step}) for step in range(1, 31)]
    fake = FakeOpenAI(
        FakeData(jobs=[job(SFT_JOB)], checkpoints={SFT_JOB: cps}),
        api_key=TEST_KEY,
        max_page_size=10,
    )
    with serve_app(_ignoring_cursor(fake)) as base_url:
        settings = Settings(api_key=TEST_KEY, base_url=base_url, page_size=10)
        async with Client(create_server(settings)) as client:
            text = error_text(await client.call_tool("list_checkpoints", {"job_id": SFT_JOB}))
    assert text.startswith("bad_response: ") and "all sent before" in text and "never end" in text
    assert len(fake.requests_to("/checkpoints")) == 2  # stopped at the first repeat


async def test_progress_is_reported_per_page(serve_fake, mode):
    job_id = "ftjob-Progress000000000000000001"
    cps = [checkpoint(job_id, step, {"train_loss": 1 / step}) for step in range(1, 251)]
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    with serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api:
        async with api.client(mode) as client:
            result = await client.call_tool("list_checkpoints", {"job_id": job_id}, progress_callback=on_progress)
    assert result.structured_content["count"] == 250
    assert [u[0] for u in updates] == [1, 2, 3]
    assert updates[-1][2] == "read 3 pages, 250 checkpoints"


async def test_item_cap_truncates_and_says_how_to_continue(serve_fake):
    job_id = "ftjob-Capped00000000000000000001"
    cps = [checkpoint(job_id, step, {"train_loss": 1 / step}) for step in range(1, 26)]
    with serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api:
        async with api.client(page_size=10, max_items=15) as client:
            first = (await client.call_tool("list_checkpoints", {"job_id": job_id})).structured_content
            rest = (
                await client.call_tool("list_checkpoints", {"job_id": job_id, "after": first["next_after"]})
            ).structured_content
            best = (await client.call_tool("best_checkpoint", {"job_id": job_id})).structured_content
    assert first["truncated"] is True and first["count"] == 15 and first["pages_fetched"] == 2
    assert [c["step_number"] for c in checkpoint_records(first)] == list(range(11, 26))
    assert rest["truncated"] is False and [c["step_number"] for c in checkpoint_records(rest)] == list(range(1, 11))
    assert best["truncated"] is True and "Only the 15 most recent checkpoints" in best["rationale"]


def long_job_data() -> tuple[FakeData, str]:
    """A succeeded job whose API kept a checkpoint every 10 steps of 2,500 (250 checkpoints with the demo's metrics:
    train and per-batch validation loss and accuracy, and the whole-set ones at the last step), built as
    bench/restart.py builds its long job."""
    from openai_checkpoints_mcp.fake.builder import JobBuilder
    from openai_checkpoints_mcp.fake.curves import LossCurve, loss_rows

    job_id = "ftjob-LongRun250Checkpoints0000"
    b = JobBuilder(job_id, 1_790_000_000, model="gpt-4o-mini-2024-07-18", suffix="long-run", seed="long job")
    curve = LossCurve(2.4, 0.28, 60.0, 0.1, valid_start=2.3, valid_floor=0.31, valid_tau=70.0, overfit_from=1500)
    rows = loss_rows(curve, steps_per_epoch=500, n_epochs=5, validation=True, seed="long job rows")
    started = b.prepare("file-LongTrain0000000000000", "file-LongValid0000000000000")
    b.train(rows, total_steps=2500, started=started, seconds_per_step=9, keep=set(range(10, 2501, 10)))
    data = FakeData()
    b.add_to(data, b.job(status="succeeded", finished_at=started + 25_000, fine_tuned_model=b.model_name()))
    return data, job_id


async def test_list_checkpoints_of_250_checkpoints_fits_in_40_kb_and_loses_nothing(serve_fake):
    # Issue "Native in every client": the answer was ~99 KB; the columnar form is a contract of at most 40 KB.
    data, job_id = long_job_data()
    with serve_fake(data) as api:
        async with api.client() as client:
            result = await client.call_tool("list_checkpoints", {"job_id": job_id})
    listed = result.structured_content
    assert listed["count"] == 250
    assert len(json.dumps(listed, separators=(",", ":")).encode()) <= 40_000
    assert len(result.content[0].text.encode()) <= 40_000 and json.loads(result.content[0].text) == listed
    raw = sorted(data.checkpoints[job_id], key=lambda c: c["step_number"])
    assert checkpoint_records(listed) == [
        {
            "id": c["id"],
            "step_number": c["step_number"],
            "fine_tuned_model_checkpoint": c["fine_tuned_model_checkpoint"],
            "created_at": c["created_at"],
            "metrics": {k: v for k, v in c["metrics"].items() if k != "step"},
        }
        for c in raw
    ]
    assert all(c["fine_tuned_model_checkpoint"].endswith(f":ckpt-step-{c['step_number']}") for c in raw)
    assert {"full_valid_loss", "valid_loss", "train_loss"} <= set(listed["columns"])
