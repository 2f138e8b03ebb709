"""Every text of a tool result is bounded (`result_bounds.MAX_TEXT`): an upstream that sends megabytes in a job's error
message, metadata, suffix or an event's message gets them cut, and the cut said, in the structured content and in
the JSON text block alike, through the real MCP client against the fake over HTTP."""

from __future__ import annotations

import json

import pytest

from openai_checkpoints_mcp.fake import FakeData
from openai_checkpoints_mcp.result_bounds import MAX_TEXT, bounded_value, cut_text

from .helpers import job

pytestmark = pytest.mark.anyio

JOB_ID = "ftjob-HugeTexts000000000001"
HUGE = 300_000


def test_cut_text_keeps_short_texts_and_says_what_it_cut():
    assert cut_text("short") == "short"
    cut = cut_text("x" * (MAX_TEXT + 1234))
    assert cut.startswith("x" * MAX_TEXT) and cut.endswith("[cut: 1,234 more characters]")
    untouched = {"a": ["b", {"c": 1}]}
    assert bounded_value(untouched) is untouched


async def test_huge_upstream_texts_are_cut_in_the_result_and_its_text(serve_fake, mode):
    data = FakeData()
    data.jobs.append(
        job(
            JOB_ID,
            status="failed",
            error={"code": "invalid_training_file", "message": "E" * HUGE, "param": None},
            metadata={"k" * 60: "v" * 500},
            suffix="s" * 40,
        )
    )
    data.events[JOB_ID] = [
        {
            "object": "fine_tuning.job.event",
            "id": f"ftevent-{n:024d}",
            "created_at": 1754035300 + n,
            "level": "info",
            "message": "M" * HUGE,
            "type": "message",
        }
        for n in range(3)
    ]
    with serve_fake(data) as api:
        async with api.client(mode) as client:
            detail = await client.call_tool("get_job", {"job_id": JOB_ID})
            events = await client.call_tool("list_events", {"job_id": JOB_ID})
    for result in (detail, events):
        assert not result.is_error, result.content[0].text
        assert json.loads(result.content[0].text) == result.structured_content
        assert len(result.content[0].text) < 4 * (MAX_TEXT + 100)
    message = detail.structured_content["error"]["message"]
    assert message.startswith("E" * 100) and message.endswith(f"[cut: {HUGE - MAX_TEXT:,} more characters]")
    assert detail.structured_content["metadata"] == {"k" * 60: "v" * 500}  # within the bound: as sent
    texts = [e["message"] for e in events.structured_content["events"]]
    assert texts and all(t.endswith(f"[cut: {HUGE - MAX_TEXT:,} more characters]") for t in texts)
