"""Argument validation: bad ids and arguments are refused with a precise message before any request; an unknown tool
is a protocol error."""

from __future__ import annotations

import subprocess

import pytest
from mcp import MCPError

from openai_checkpoints_mcp.fake import FakeData

from .helpers import (
    BAD_JOB_IDS,
    JOB_ID_TOOLS,
    SFT_JOB,
    console_script,
    error_text,
    job,
    sft_data,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("tool", "args", "needle"),
    [
        ("list_jobs", {"max_results": 0}, "max_results"),
        (
            "list_jobs",
            {"limit": 2},
            "limit is not an argument of list_jobs; it takes: status, model",
        ),
        ("list_jobs", {"max_results": 1001}, "max_results"),
        ("list_jobs", {"status": "done"}, "status"),
        ("list_jobs", {"after": "ftjob-x/y"}, "after"),
        ("list_jobs", {"metadata": {"a[b]": "c"}}, "metadata"),
        ("list_jobs", {"metadata": {f"k{i}": "v" for i in range(17)}}, "at most 16"),
        (
            "list_jobs",
            {"metadata": {"team": "x" * 513}},
            "metadata value for 'team' is not accepted (513 characters)",
        ),
        (
            "list_jobs",
            {"metadata": {"a[b]": "c"}},
            "metadata key 'a[b]' is not accepted",
        ),
        ("best_checkpoint", {"job_id": SFT_JOB, "top_k": 0}, "top_k"),
        ("best_checkpoint", {"job_id": SFT_JOB, "top_k": 51}, "top_k"),
        ("best_checkpoint", {"job_id": SFT_JOB, "goal": "up"}, "goal"),
        ("best_checkpoint", {"job_id": SFT_JOB, "goal": "min"}, "goal applies only"),
        (
            "best_checkpoint",
            {"job_id": SFT_JOB, "metric": "full_valid_loss", "goal": "max"},
            "full_valid_loss is better when lower",
        ),
        ("best_checkpoint", {"job_id": SFT_JOB, "metric": "a b"}, "metric"),
        ("list_checkpoints", {"job_id": SFT_JOB, "after": "../x"}, "after"),
    ],
)
async def test_bad_arguments_are_precise_and_make_no_request(serve_fake, tool, args, needle):
    with serve_fake(sft_data()) as api:
        async with api.client() as client:
            text = error_text(await client.call_tool(tool, args))
        assert api.faults.requests == []
    assert text.startswith("invalid_argument: ") and needle in text


@pytest.mark.parametrize(
    ("args", "told"),
    [
        ({"top_k": True}, 'top_k must be a whole number (a JSON integer such as 3; not true, "3" or 3.5); got true'),
        ({"top_k": 2.0}, "top_k must be a whole number"),
        ({"refresh": "yes"}, 'refresh must be true or false (a JSON boolean; not "yes", "true" or 1); got \'yes\''),
        ({"refresh": 1}, "refresh must be true or false"),
    ],
)
async def test_booleans_and_integers_are_strict(serve_fake, args, told):
    """Hardening issue, item 7: ``top_k: true`` was taken as 1 and ``refresh: "yes"`` as true."""
    with serve_fake(sft_data()) as api:
        async with api.client() as client:
            text = error_text(await client.call_tool("best_checkpoint", {"job_id": SFT_JOB, **args}))
            listed = {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}
        assert api.faults.requests == []
    assert text.startswith("invalid_argument: ") and told in text
    assert listed["best_checkpoint"]["properties"]["top_k"]["type"] == "integer"  # the schema is unchanged


async def test_a_bad_value_is_shown_as_json(serve_fake):
    """Hardening issue, item 9: "got None" is Python; the client sent JSON ``null``."""
    with serve_fake(sft_data()) as api:
        async with api.client() as client:
            text = error_text(await client.call_tool("best_checkpoint", {"job_id": None}))
    assert text.startswith("invalid_argument: ") and "got null" in text and "None" not in text


async def test_unknown_tool_is_a_protocol_error(serve_fake):
    with serve_fake(sft_data()) as api:
        async with api.client() as client:
            with pytest.raises(MCPError) as raised:
                await client.call_tool("delete_everything", {})
    assert raised.value.error.code == -32602


async def test_an_unknown_tool_name_of_100_kb_is_not_echoed_in_full(serve_fake):
    """Hardening issue, item 7: the unknown-tool error repeated a 100 KB name whole."""
    name = "x" * 100_000
    with serve_fake(sft_data()) as api:
        async with api.client() as client:
            with pytest.raises(MCPError) as raised:
                await client.call_tool(name, {})
    message = raised.value.error.message
    assert raised.value.error.code == -32602 and len(message) < 200
    assert message == f"Unknown tool: {'x' * 64}… (99936 more characters)"
    done = subprocess.run([console_script(), "--demo", "call", name], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and len(done.stderr) < 1000 and "(99936 more characters)" in done.stderr


# Merged: the read tools' and the write tools' copies of this test (the write tools' also sent an unknown argument
# and checked the job was left alone); every tool now gets all three checks.
@pytest.mark.parametrize(
    "tool",
    JOB_ID_TOOLS,
)
async def test_bad_job_ids_reach_nothing_upstream(serve_fake, tool):
    data = FakeData(jobs=[job(SFT_JOB, status="running")])
    with serve_fake(data) as api:
        async with api.client(allow_writes=True) as client:
            for bad in BAD_JOB_IDS:
                text = error_text(await client.call_tool(tool, {"job_id": bad}))
                assert text.startswith("invalid_argument: job_id must be 'ftjob-'"), text
            missing = error_text(await client.call_tool(tool, {}))
            assert missing.startswith("invalid_argument: job_id is required")
            extra = error_text(await client.call_tool(tool, {"job_id": SFT_JOB, "force": True}))
            assert extra.startswith("invalid_argument: force is not an argument of"), extra  # never ignored
        assert api.faults.requests == []
    assert data.jobs[0]["status"] == "running"
