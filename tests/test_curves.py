"""training_metrics end to end: the result file read once (CSV or base64) and cached only when final, overfitting found,
missing, garbage or failing files as coded errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from openai_checkpoints_mcp.fake import (
    FakeData,
    FakeFile,
    Fault,
)

from .helpers import (
    CURVE_JOB,
    RESULT_FILE,
    call_once,
    checkpoint,
    curve_data,
    fake_id,
    job,
)

pytestmark = pytest.mark.anyio


DATA = Path(__file__).parent / "data"


def _overfitting_csv() -> bytes:
    """300 steps; train loss falls throughout; validation loss (every 10 steps) is lowest at step 150, then rises."""
    lines = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
    for step in range(1, 301):
        train = 2.0 * (0.99**step) + 0.05
        valid = f"{0.5 + ((step - 150) / 150) ** 2 * 0.3:.5f}" if step % 10 == 0 else ""
        accuracy = "0.8" if valid else ""
        lines.append(f"{step},{train:.5f},0.9,{valid},{accuracy}")
    return ("\n".join(lines) + "\n").encode()


async def test_training_metrics_reads_the_whole_curve_and_finds_overfitting(serve_fake):
    with serve_fake(curve_data(_overfitting_csv())) as api:
        result = await call_once(api, "training_metrics", {"job_id": CURVE_JOB, "points": 40})
        file_reads = api.upstream_requests(f"/files/{RESULT_FILE}/content")
    out = result.structured_content
    assert not result.is_error and out["available"] is True and len(file_reads) == 1
    assert out["steps"] == 300 and (out["first_step"], out["last_step"]) == (1, 300)
    assert out["renamed_columns"] == {"train_accuracy": "train_mean_token_accuracy"}
    best = out["best_validation"]
    assert (
        best["metric"],
        best["step"],
        best["retained"],
        best["nearest_retained_step"],
    ) == (
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
    with serve_fake(curve_data(csv)) as api:
        plain = (await call_once(api, "training_metrics", {"job_id": CURVE_JOB})).structured_content
    with serve_fake(curve_data(csv), base64_results=True) as api:
        encoded = (await call_once(api, "training_metrics", {"job_id": CURVE_JOB})).structured_content
    assert plain["encoding"] == "csv" and encoded["encoding"] == "base64"
    for key in (
        "steps",
        "metrics",
        "best_validation",
        "overfitting",
        "gap",
        "findings",
        "curve",
    ):
        assert plain[key] == encoded[key]


async def test_a_running_job_has_no_result_file_yet(serve_fake):
    with serve_fake(curve_data(None, status="running")) as api:
        result = await call_once(api, "training_metrics", {"job_id": CURVE_JOB})
    out = result.structured_content
    assert not result.is_error and out["available"] is False and out["curve"] is None
    assert "running" in out["reason"] and "list_events" in out["reason"]


async def test_a_garbage_result_file_is_a_bad_response_error(serve_fake):
    with serve_fake(curve_data(b"<html><body>502 Bad Gateway</body></html>")) as api:
        result = await call_once(api, "training_metrics", {"job_id": CURVE_JOB})
    assert result.is_error and result.content[0].text.startswith("bad_response: ")
    assert RESULT_FILE in result.content[0].text


async def test_the_result_file_is_read_once_then_cached(serve_fake):
    with serve_fake(curve_data(_overfitting_csv())) as api:
        async with api.client() as client:
            first = (await client.call_tool("training_metrics", {"job_id": CURVE_JOB})).structured_content
            api.faults.requests.clear()
            second = (await client.call_tool("training_metrics", {"job_id": CURVE_JOB})).structured_content
            assert api.faults.requests == [] and second["upstream_requests"] == 0
            await client.call_tool("training_metrics", {"job_id": CURVE_JOB, "refresh": True})
            assert len(api.upstream_requests("/content")) == 1
    assert first["upstream_requests"] == 3 and first["curve"] == second["curve"]


async def test_a_missing_result_file_is_not_found(serve_fake):
    with serve_fake(curve_data(None)) as api:
        result = await call_once(api, "training_metrics", {"job_id": CURVE_JOB})
    assert result.is_error and result.content[0].text.startswith("not_found: ")


async def test_an_upstream_failure_on_the_file_is_a_tool_error(serve_fake):
    with serve_fake(curve_data(_overfitting_csv())) as api:
        api.faults.add(Fault(status=500, path_contains="/content", times=3))
        result = await call_once(api, "training_metrics", {"job_id": CURVE_JOB}, max_retries=2)
    assert result.is_error and result.content[0].text.startswith("upstream_unavailable: ")


def _csv(steps: int) -> bytes:
    return ("step,train_loss\n" + "".join(f"{s},{1.0 / s:.4f}\n" for s in range(1, steps + 1))).encode()


async def test_the_result_file_of_an_unfinished_job_is_never_served_from_the_cache(
    serve_fake,
):
    job_id = fake_id("ftjob-", 77)
    body = job(job_id, status="paused")
    body["result_files"] = [RESULT_FILE]  # a paused job that already lists a (partial) result file
    meta = {
        "object": "file",
        "id": RESULT_FILE,
        "purpose": "fine-tune-results",
        "filename": "step_metrics.csv",
    }
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


def test_absurdly_large_values_do_not_break_training_metrics():
    """Values near the float limit are garbage; differences of them overflow. They count as missing."""
    from openai_checkpoints_mcp.analysis.result_file import parse_result_file

    rows = ["step,train_loss,full_valid_loss"] + [
        f"{step},{(-1) ** step * 1e308},{0.5 + step / 100 if step % 5 == 0 else ''}" for step in range(1, 41)
    ]
    table = parse_result_file(("\n".join(rows) + "\n").encode())
    assert set(table.columns["train_loss"]) == {None}
    assert table.columns["full_valid_loss"][4] == 0.55
