"""list_events end to end: newest first, metrics in the data, paging, and the level filter's scan limit."""

from __future__ import annotations

from typing import Any

import pytest

from openai_checkpoints_mcp.fake import (
    FakeData,
)

from .helpers import (
    CURVE_JOB,
    README_JOB,
    curve_data,
    fake_id,
    job,
    one_job,
)

pytestmark = pytest.mark.anyio


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
    data = one_job()
    data.events[README_JOB] = [error, *infos]
    with serve_fake(data) as api:
        async with api.client() as client:
            out = (await client.call_tool("list_events", {"job_id": README_JOB, "level": "error"})).structured_content
            scanned_pages = api.upstream_requests("/events")
            rest = (
                await client.call_tool(
                    "list_events",
                    {
                        "job_id": README_JOB,
                        "level": "error",
                        "after": out["next_after"],
                    },
                )
            ).structured_content
    assert out["events"] == [] and out["scanned"] == 1000 and out["has_more"] is True
    assert len(scanned_pages) == 10 and all(r.query["limit"] == ["100"] for r in scanned_pages)
    assert [e["message"] for e in rest["events"]] == ["The oldest event: an error"] and rest["scanned"] == 2


def _events(n: int) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        level = "error" if i == 3 else ("warn" if i % 7 == 0 else "info")
        data = (
            {
                "step": i,
                "train_loss": 1.0 / (i + 1),
                "total_steps": n,
                "nested": {"x": 1},
            }
            if i % 2
            else {}
        )
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
    data = curve_data(None)
    data.events[CURVE_JOB] = _events(30)
    with serve_fake(data) as api:
        async with api.client() as client:
            first = (await client.call_tool("list_events", {"job_id": CURVE_JOB, "limit": 10})).structured_content
            older = (
                await client.call_tool(
                    "list_events",
                    {"job_id": CURVE_JOB, "limit": 10, "after": first["next_after"]},
                )
            ).structured_content
            errors = (await client.call_tool("list_events", {"job_id": CURVE_JOB, "level": "error"})).structured_content
    assert [e["message"] for e in first["events"]] == [f"Step {i}/30" for i in range(29, 19, -1)]
    assert first["has_more"] is True and older["events"][0]["message"] == "Step 19/30"
    assert first["events"][0]["metrics"] == {
        "step": 29,
        "train_loss": pytest.approx(1 / 30),
        "total_steps": 30,
    }
    assert first["events"][1]["metrics"] is None
    assert first["events"][0]["created_at"].endswith("Z")
    assert [e["message"] for e in errors["events"]] == ["Step 3/30"] and errors["scanned"] == 30


async def test_list_events_by_level_has_no_more_when_nothing_else_on_the_last_page_matches(
    serve_fake,
):
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
