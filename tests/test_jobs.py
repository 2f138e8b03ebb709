"""list_jobs and get_job end to end through the MCP client against the fake API on 127.0.0.1: filters, paging and
cursor continuation, dates (no offset means UTC), odd but valid job objects, not found."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from openai_checkpoints_mcp.fake import (
    FakeData,
)

from .helpers import (
    SFT_JOB,
    call_once,
    checkpoint,
    checkpoint_records,
    error_text,
    fake_id,
    job,
    sft_data,
)

pytestmark = pytest.mark.anyio


JAN_1_2026 = 1_767_225_600  # 2026-01-01T00:00:00Z


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
    data = FakeData(
        jobs=[
            job(before, created_at=JAN_1_2026 - 3600),
            job(after, created_at=JAN_1_2026 + 3600),
        ]
    )
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


async def test_list_jobs_filters_and_stops_paging_at_created_after(serve_fake):
    day = 86_400
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    jobs = [
        job(
            fake_id("ftjob-", n),
            created_at=start + n * day,
            suffix="a" if n % 2 else "b",
            model="gpt-4.1-mini-2025-04-14" if n % 3 == 0 else "gpt-4o-mini-2024-07-18",
        )
        for n in range(250)
    ]
    with serve_fake(FakeData(jobs=jobs)) as api:
        async with api.client() as client:
            recent = (
                await client.call_tool("list_jobs", {"created_after": "2026-08-29", "max_results": 1000})
            ).structured_content
            pages_for_recent = len(api.upstream_requests("/fine_tuning/jobs"))
            api.faults.requests.clear()
            picked = (
                await client.call_tool(
                    "list_jobs",
                    {
                        "suffix": "a",
                        "model": "GPT-4.1-mini",
                        "created_before": "2026-01-11T00:00:00Z",
                        "max_results": 5,
                    },
                )
            ).structured_content
    # 2026-08-29 is day 240: jobs 240-249 are newer; paging stops at the first older job, on the first page.
    assert [j["id"] for j in recent["jobs"]] == [jobs[n]["id"] for n in range(249, 239, -1)]
    assert recent["has_more"] is False and pages_for_recent == 1
    assert [j["id"] for j in picked["jobs"]] == [jobs[n]["id"] for n in (9, 3)]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"created_after": "last tuesday"}, "created_after must be an ISO 8601 date"),
        (
            {"created_after": "2026-02-01", "created_before": "2026-01-01"},
            "must be earlier than",
        ),
        ({"max_results": 0}, "max_results"),
    ],
)
async def test_list_jobs_bad_filters_make_no_request(serve_fake, args, needle):
    with serve_fake(FakeData()) as api:
        result = await call_once(api, "list_jobs", args)
        assert api.faults.requests == []
    assert result.is_error and result.content[0].text.startswith("invalid_argument: ")
    assert needle in result.content[0].text


@pytest.mark.parametrize(
    ("wanted", "model", "matches"),
    [
        ("gpt-4o", "gpt-4o-2024-08-06", True),
        ("gpt-4o", "gpt-4o-mini-2024-07-18", False),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", True),
        ("gpt-4o-mini-2024", "gpt-4o-mini-2024-07-18", True),
        ("GPT-4.1-Mini-2025-04-14", "gpt-4.1-mini-2025-04-14", True),
        ("gpt-4", "gpt-4o-2024-08-06", False),
        ("gpt-4o-mini", None, False),
        (
            "ft:gpt-4o-mini-2024-07-18:acme::Ab12",
            "ft:gpt-4o-mini-2024-07-18:acme::Ab12",
            True,
        ),
    ],
)
def test_the_model_filter_matches_a_family_not_a_longer_name(wanted, model, matches):
    from openai_checkpoints_mcp.tools.arguments import base_model_matches

    assert base_model_matches(wanted, model) is matches


async def test_list_jobs_and_get_job_normalise_quirks(serve_fake):
    dpo = job(
        "ftjob-Zp3Kq8WmN2rT6yVb1XcL5sGh",
        status="running",
        method="dpo",
        validation=False,
        created_at=1754121600,
        error={"code": None, "message": None, "param": None},
        metadata={"team": "support"},
    )
    dpo["method"]["dpo"]["hyperparameters"]["beta"] = 0.1
    failed = job(
        "ftjob-Hc6Tn1Qv9YpR4wKs2ZmB7dLx",
        status="failed",
        created_at=1753948800,
        suffix=None,
        error={
            "code": "invalid_n_examples",
            "message": "Too few\nexamples",
            "param": "training_file",
        },
    )
    paused = job(
        "ftjob-Paused000000000000000001",
        status="paused",
        created_at=1754000000,
        error={},
    )
    with serve_fake(FakeData(jobs=[failed, dpo, job(SFT_JOB), paused])) as api:
        async with api.client() as client:
            listed = await client.call_tool("list_jobs", {"max_results": 2})
            rest = await client.call_tool(
                "list_jobs",
                {"max_results": 2, "after": listed.structured_content["next_after"]},
            )
            failed_only = await client.call_tool("list_jobs", {"status": "failed"})
            by_team = await client.call_tool("list_jobs", {"metadata": {"team": "support"}})
            detail = await client.call_tool("get_job", {"job_id": dpo["id"]})
    first = listed.structured_content
    assert [j["id"] for j in first["jobs"]] == [dpo["id"], SFT_JOB]
    assert first["has_more"] is True and first["next_after"] == SFT_JOB
    assert first["jobs"][0]["method"] == "dpo" and first["jobs"][0]["error"] is None
    assert first["jobs"][0]["created_at"] == "2025-08-02T08:00:00Z"
    assert [j["id"] for j in rest.structured_content["jobs"]] == [
        paused["id"],
        failed["id"],
    ]
    assert rest.structured_content["jobs"][0]["status"] == "paused"
    assert rest.structured_content["has_more"] is False and rest.structured_content["next_after"] is None
    assert [j["id"] for j in failed_only.structured_content["jobs"]] == [failed["id"]]
    assert failed_only.structured_content["jobs"][0]["error"] == "invalid_n_examples: Too few examples"
    assert [j["id"] for j in by_team.structured_content["jobs"]] == [dpo["id"]]
    d = detail.structured_content
    assert d["method"] == "dpo" and d["hyperparameters"]["beta"] == 0.1 and d["error"] is None
    assert d["finished_at"] is None and d["metadata"] == {"team": "support"}


async def test_not_found(serve_fake, mode):
    with serve_fake(sft_data()) as api:
        async with api.client(mode) as client:
            text = error_text(await client.call_tool("best_checkpoint", {"job_id": "ftjob-doesnotexist000000000000"}))
    assert text.startswith("not_found: ")
    assert "Could not find fine tune: ftjob-doesnotexist000000000000" in text
    assert "request id req_" in text


async def test_status_filter_scans_pages_and_continues_where_it_stopped(serve_fake):
    jobs = [job(fake_id("ftjob-", n), created_at=1750000000 + n, status="succeeded") for n in range(1200)]
    jobs[5]["status"] = "failed"  # among the oldest: beyond the first 1,000 scanned
    jobs[1150]["status"] = "failed"  # among the newest
    jobs[1149]["status"] = "failed"
    with serve_fake(FakeData(jobs=jobs)) as api:
        async with api.client() as client:
            first = (await client.call_tool("list_jobs", {"status": "failed", "max_results": 1})).structured_content
            second = (
                await client.call_tool("list_jobs", {"status": "failed", "after": first["next_after"]})
            ).structured_content
            assert len(api.upstream_requests("/jobs")) == 1 + 10
            third = (
                await client.call_tool("list_jobs", {"status": "failed", "after": second["next_after"]})
            ).structured_content
    assert [j["id"] for j in first["jobs"]] == [jobs[1150]["id"]] and first["has_more"] is True
    assert first["scanned"] == 50 and first["next_after"] == jobs[1150]["id"]
    assert [j["id"] for j in second["jobs"]] == [jobs[1149]["id"]]
    assert second["scanned"] == 1000 and second["has_more"] is True
    assert second["next_after"] == jobs[1150 - 1000]["id"]
    assert [j["id"] for j in third["jobs"]] == [jobs[5]["id"]] and third["has_more"] is False


async def test_odd_but_valid_api_data_never_crashes_a_tool(serve_fake):
    """Quirks seen in the wild and plain junk in optional fields: every tool still answers sensibly."""
    job_id = "ftjob-Odd000000000000000000000001"
    odd_job = job(
        job_id,
        status="paused",
        error={},
        hyperparameters=None,
        method="supervised",
        metadata=None,
        created_at=10**20,
        finished_at="soon",
        trained_tokens=1.5,
        integrations={"wandb": 1},
        result_files=None,
        usage_metrics=None,
        shared_with_openai=False,
        eval_id="eval_1",
    )
    odd_job["method"] = "not-a-dict"
    cps = [
        checkpoint(
            job_id,
            100,
            {"full_valid_loss": "NaN", "train_loss": True, "scores": {"a": 1}},
        ),
        checkpoint(job_id, 200, {"full_valid_loss": 10**400, "train_loss": None}),
        checkpoint(
            job_id,
            300,
            {"full_valid_loss": 0.5, "full_valid_mean_reward": 0.7, "extra": 3},
        ),
        {
            "object": "fine_tuning.job.checkpoint",
            "id": "ftckpt_NoStepNoMetrics0000000000",
            "created_at": None,
            "metrics": None,
            "step_number": None,
        },
    ]
    with serve_fake(FakeData(jobs=[odd_job], checkpoints={job_id: cps})) as api:
        async with api.client() as client:
            results = {
                tool: await client.call_tool(tool, args)
                for tool, args in [
                    ("list_jobs", {}),
                    ("get_job", {"job_id": job_id}),
                    ("list_checkpoints", {"job_id": job_id}),
                    ("best_checkpoint", {"job_id": job_id}),
                ]
            }
    assert not any(r.is_error for r in results.values()), {k: r.content for k, r in results.items()}
    detail = results["get_job"].structured_content
    assert detail["status"] == "paused" and detail["method"] == "supervised" and detail["finished_at"] is None
    assert detail["created_at"] is None and detail["trained_tokens"] is None and detail["result_files"] == []
    listed = results["list_checkpoints"].structured_content
    assert [c["step_number"] for c in checkpoint_records(listed)] == [100, 200, 300, None]
    assert checkpoint_records(listed)[0]["metrics"] == {}
    assert checkpoint_records(listed)[2]["metrics"] == {
        "full_valid_loss": 0.5,
        "full_valid_mean_reward": 0.7,
        "extra": 3,
    }
    best = results["best_checkpoint"].structured_content
    assert best["metric"] == "full_valid_loss" and best["best"]["step_number"] == 300
    assert {e["step_number"] for e in best["excluded"]} == {100, 200, None}


async def test_list_jobs_has_no_more_when_created_after_ends_the_page_right_after_the_last_match(
    serve_fake,
):
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
                    "list_jobs",
                    {
                        "created_after": "2026-01-26",
                        "suffix": "support-bot",
                        "max_results": 5,
                    },
                )
            ).structured_content
    for result in (out, filtered):
        assert [j["id"] for j in result["jobs"]] == [jobs[n]["id"] for n in range(29, 24, -1)]
        assert result["has_more"] is False and result["next_after"] is None


async def test_list_jobs_cursor_continuation_with_a_status_filter_has_no_gaps_or_repeats(
    serve_fake,
):
    statuses = ("succeeded", "failed", "cancelled", "running")
    jobs = [
        job(
            fake_id("ftjob-", n),
            created_at=1_760_000_000 + n,
            status=statuses[n % 7 % 4],
        )
        for n in range(260)
    ]
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
