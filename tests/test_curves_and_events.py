"""training_metrics, list_events and list_jobs' filters end to end through the MCP client against the fake API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openai_checkpoints_mcp.fake import FakeData, FakeFile, Fault

from .factories import checkpoint, fake_id, job

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "data"
RESULT_FILE = "file-7HnR3vTq9WxY2zLk5MpJcA"  # the result file id tests.factories.job gives succeeded jobs
JOB = "ftjob-Curve0000000000000000000001"


def _file(content: bytes) -> FakeFile:
    meta = {
        "object": "file",
        "id": RESULT_FILE,
        "purpose": "fine-tune-results",
        "filename": "step_metrics.csv",
        "bytes": len(content),
        "created_at": 1754040000,
        "status": "processed",
    }
    return FakeFile(meta=meta, content=content)


def _overfitting_csv() -> bytes:
    """300 steps; train loss falls throughout; validation loss (every 10 steps) is lowest at step 150, then rises."""
    lines = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
    for step in range(1, 301):
        train = 2.0 * (0.99**step) + 0.05
        valid = f"{0.5 + ((step - 150) / 150) ** 2 * 0.3:.5f}" if step % 10 == 0 else ""
        accuracy = "0.8" if valid else ""
        lines.append(f"{step},{train:.5f},0.9,{valid},{accuracy}")
    return ("\n".join(lines) + "\n").encode()


def _data(content: bytes | None, *, status: str = "succeeded") -> FakeData:
    body = job(JOB, status=status)
    cps = [checkpoint(JOB, step, {"train_loss": 0.3, "full_valid_loss": 0.6}) for step in (100, 200, 300)]
    data = FakeData(jobs=[body], checkpoints={JOB: cps})
    if content is not None:
        data.files[RESULT_FILE] = _file(content)
    return data


async def _call(api: Any, tool: str, args: dict[str, Any], **overrides: Any) -> Any:
    async with api.client(**overrides) as client:
        return await client.call_tool(tool, args)


async def test_training_metrics_reads_the_whole_curve_and_finds_overfitting(serve_fake):
    with serve_fake(_data(_overfitting_csv())) as api:
        result = await _call(api, "training_metrics", {"job_id": JOB, "points": 40})
        file_reads = api.upstream_requests(f"/files/{RESULT_FILE}/content")
    out = result.structured_content
    assert not result.is_error and out["available"] is True and len(file_reads) == 1
    assert out["steps"] == 300 and (out["first_step"], out["last_step"]) == (1, 300)
    assert out["renamed_columns"] == {"train_accuracy": "train_mean_token_accuracy"}
    best = out["best_validation"]
    assert (best["metric"], best["step"], best["retained"], best["nearest_retained_step"]) == (
        "valid_loss",
        150,
        False,
        200,
    )  # as far from 100 as from 200: a tie goes to the later step
    assert out["overfitting"]["detected"] is True
    assert out["overfitting"]["validation_change"] > 0 > out["overfitting"]["train_change"]
    assert any("step 150" in f and "not kept" in f for f in out["findings"])
    curve = out["curve"]
    assert curve["columns"][0] == "step" and len(curve["rows"]) <= 40
    steps = [row[0] for row in curve["rows"]]
    assert steps[0] == 1 and steps[-1] == 300 and {100, 150, 200}.issubset(steps)  # kept steps and the best one
    assert [c["step_number"] for c in out["retained_checkpoints"]] == [100, 200, 300]


async def test_training_metrics_reads_a_base64_body_the_same_way(serve_fake):
    csv = (DATA / "step_metrics.csv").read_bytes()
    with serve_fake(_data(csv)) as api:
        plain = (await _call(api, "training_metrics", {"job_id": JOB})).structured_content
    with serve_fake(_data(csv), base64_results=True) as api:
        encoded = (await _call(api, "training_metrics", {"job_id": JOB})).structured_content
    assert plain["encoding"] == "csv" and encoded["encoding"] == "base64"
    for key in ("steps", "metrics", "best_validation", "overfitting", "gap", "findings", "curve"):
        assert plain[key] == encoded[key]


async def test_a_running_job_has_no_result_file_yet(serve_fake):
    with serve_fake(_data(None, status="running")) as api:
        result = await _call(api, "training_metrics", {"job_id": JOB})
    out = result.structured_content
    assert not result.is_error and out["available"] is False and out["curve"] is None
    assert "running" in out["reason"] and "list_events" in out["reason"]


async def test_a_garbage_result_file_is_a_bad_response_error(serve_fake):
    with serve_fake(_data(b"<html><body>502 Bad Gateway</body></html>")) as api:
        result = await _call(api, "training_metrics", {"job_id": JOB})
    assert result.is_error and result.content[0].text.startswith("bad_response: ")
    assert RESULT_FILE in result.content[0].text


async def test_the_result_file_is_read_once_then_cached(serve_fake):
    with serve_fake(_data(_overfitting_csv())) as api:
        async with api.client() as client:
            first = (await client.call_tool("training_metrics", {"job_id": JOB})).structured_content
            api.faults.requests.clear()
            second = (await client.call_tool("training_metrics", {"job_id": JOB})).structured_content
            assert api.faults.requests == [] and second["upstream_requests"] == 0
            await client.call_tool("training_metrics", {"job_id": JOB, "refresh": True})
            assert len(api.upstream_requests("/content")) == 1
    assert first["upstream_requests"] == 3 and first["curve"] == second["curve"]


async def test_a_missing_result_file_is_not_found(serve_fake):
    with serve_fake(_data(None)) as api:
        result = await _call(api, "training_metrics", {"job_id": JOB})
    assert result.is_error and result.content[0].text.startswith("not_found: ")


def _events(n: int) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        level = "error" if i == 3 else ("warn" if i % 7 == 0 else "info")
        data = {"step": i, "train_loss": 1.0 / (i + 1), "total_steps": n, "nested": {"x": 1}} if i % 2 else {}
        events.append(
            {
                "object": "fine_tuning.job.event",
                "id": fake_id("ftevent-", i),
                "created_at": 1754036000 + i,
                "level": level,
                "message": f"Step {i}/{n}",
                "type": "metrics" if data else "message",
                "data": data,
            }
        )
    return events


async def test_list_events_newest_first_with_metrics_and_paging(serve_fake):
    data = _data(None)
    data.events[JOB] = _events(30)
    with serve_fake(data) as api:
        async with api.client() as client:
            first = (await client.call_tool("list_events", {"job_id": JOB, "limit": 10})).structured_content
            older = (
                await client.call_tool("list_events", {"job_id": JOB, "limit": 10, "after": first["next_after"]})
            ).structured_content
            errors = (await client.call_tool("list_events", {"job_id": JOB, "level": "error"})).structured_content
    assert [e["message"] for e in first["events"]] == [f"Step {i}/30" for i in range(29, 19, -1)]
    assert first["has_more"] is True and older["events"][0]["message"] == "Step 19/30"
    assert first["events"][0]["metrics"] == {"step": 29, "train_loss": pytest.approx(1 / 30), "total_steps": 30}
    assert first["events"][1]["metrics"] is None
    assert first["events"][0]["created_at"].endswith("Z")
    assert [e["message"] for e in errors["events"]] == ["Step 3/30"] and errors["scanned"] == 30


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
        ({"created_after": "2026-02-01", "created_before": "2026-01-01"}, "must be earlier than"),
        ({"max_results": 0}, "max_results"),
    ],
)
async def test_list_jobs_bad_filters_make_no_request(serve_fake, args, needle):
    with serve_fake(FakeData()) as api:
        result = await _call(api, "list_jobs", args)
        assert api.faults.requests == []
    assert result.is_error and result.content[0].text.startswith("invalid_argument: ")
    assert needle in result.content[0].text


async def test_an_upstream_failure_on_the_file_is_a_tool_error(serve_fake):
    with serve_fake(_data(_overfitting_csv())) as api:
        api.faults.add(Fault(status=500, path_contains="/content", times=3))
        result = await _call(api, "training_metrics", {"job_id": JOB}, max_retries=2)
    assert result.is_error and result.content[0].text.startswith("upstream_unavailable: ")


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
        ("ft:gpt-4o-mini-2024-07-18:acme::Ab12", "ft:gpt-4o-mini-2024-07-18:acme::Ab12", True),
    ],
)
def test_the_model_filter_matches_a_family_not_a_longer_name(wanted, model, matches):
    from openai_checkpoints_mcp.queries import base_model_matches

    assert base_model_matches(wanted, model) is matches
