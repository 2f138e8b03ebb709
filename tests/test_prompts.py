"""The prompts (choose_checkpoint, review_sweep, before_shutdown) through the real MCP client in both eras, and over
streamable HTTP: listed from the table with their arguments, each a script naming tools the server serves; bad
arguments and an unknown prompt are -32602 with nothing upstream and no traceback in the log."""

from __future__ import annotations

import logging
import re

import pytest
from mcp import MCPError
from mcp.types import INVALID_PARAMS

from openai_checkpoints_mcp.tools.prompts import PROMPTS

from .helpers import BAD_JOB_IDS, DEMO_JOB, READ_TOOLS, demo_server, mcp_client, sft_data

pytestmark = pytest.mark.anyio

JOB = "ftjob-Qm7vR2kTz9LpXa4NcW8bHd3E"

GETS = [
    ("choose_checkpoint", {"job_id": JOB}, [JOB, "best_checkpoint", "training_metrics"]),
    ("review_sweep", {"suffix": "lr-sweep"}, ['suffix="lr-sweep"', "compare_jobs", "training_metrics"]),
    ("review_sweep", {"metadata": "sweep=lr-2026-11"}, ['metadata={"sweep": "lr-2026-11"}', "compare_jobs"]),
    ("before_shutdown", {}, ["list_fine_tuned_models", "days_left", "`openai-checkpoints-mcp archive FILE`"]),
]


def no_tracebacks(logs: pytest.LogCaptureFixture) -> None:
    assert not [r for r in logs.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in logs.text
    assert not [r for r in logs.records if r.levelno >= logging.ERROR]


async def test_prompts_are_listed_from_the_table_with_their_arguments(serve_fake, mode):
    with serve_fake(sft_data()) as api:
        async with api.client(mode) as client:
            prompts = (await client.list_prompts()).prompts
        assert api.faults.requests == []
    assert [p.name for p in prompts] == [spec.name for spec in PROMPTS]
    arguments = {p.name: [(a.name, a.required) for a in p.arguments or []] for p in prompts}
    assert arguments == {
        "choose_checkpoint": [("job_id", True)],
        "review_sweep": [("suffix", False), ("metadata", False)],
        "before_shutdown": [],
    }
    assert all(p.title and p.description for p in prompts)
    assert all(a.description for p in prompts for a in p.arguments or [])


@pytest.mark.parametrize(("name", "arguments", "expected"), GETS, ids=[f"{g[0]}-{list(g[1])}" for g in GETS])
async def test_each_prompt_is_a_script_of_served_tools(serve_fake, mode, name, arguments, expected):
    with serve_fake(sft_data()) as api:
        async with api.client(mode) as client:
            result = await client.get_prompt(name, arguments)
        assert api.faults.requests == []  # a prompt reads nothing
    (message,) = result.messages
    assert message.role == "user" and message.content.type == "text"
    text = message.content.text
    for part in expected:
        assert part in text, part
    called = set(re.findall(r"\bCall (\w+)", text))
    assert called and called <= READ_TOOLS
    assert "notice" in text and result.description


async def test_an_unknown_prompt_is_invalid_params_listing_the_prompts(serve_fake, mode, captured_logs):
    with serve_fake(sft_data()) as api:
        async with api.client(mode) as client:
            with pytest.raises(MCPError) as raised:
                await client.get_prompt("choose_model", {"job_id": JOB})
            await client.get_prompt("before_shutdown")  # the session goes on
    error = raised.value.error
    assert error.code == INVALID_PARAMS
    assert error.message == "Unknown prompt: choose_model. The prompts are: choose_checkpoint, review_sweep, " + (
        "before_shutdown."
    )
    no_tracebacks(captured_logs)


async def test_an_unknown_prompt_of_100_kb_is_not_echoed_in_full(serve_fake, mode):
    """As an unknown tool's name: a 100 KB prompt name came back whole in the error."""
    with serve_fake(sft_data()) as api:
        async with api.client(mode) as client:
            with pytest.raises(MCPError) as raised:
                await client.get_prompt("x" * 100_000)
    message = raised.value.error.message
    assert message.startswith("Unknown prompt: " + "x" * 64 + "… (99936 more characters). The prompts are: ")
    assert len(message) < 300


BAD_ARGUMENTS = [
    ("choose_checkpoint", {}, "invalid_argument: job_id is required by the prompt choose_checkpoint."),
    ("choose_checkpoint", {"job_id": JOB, "metric": "x"}, "invalid_argument: metric is not an argument of"),
    ("review_sweep", {}, "invalid_argument: review_sweep takes suffix or metadata"),
    ("review_sweep", {"suffix": "a", "metadata": "b=c"}, "invalid_argument: review_sweep takes suffix or metadata"),
    ("review_sweep", {"metadata": "no-equals-sign"}, "invalid_argument: metadata must be key=value"),
    ("review_sweep", {"metadata": "a[b]=c"}, "invalid_argument: metadata must be key=value"),
    ("review_sweep", {"suffix": ""}, "invalid_argument: suffix"),
    ("before_shutdown", {"days": "30"}, "invalid_argument: days is not an argument of the prompt before_shutdown; "),
] + [("choose_checkpoint", {"job_id": bad}, "invalid_argument: job_id must be 'ftjob-'") for bad in BAD_JOB_IDS]


@pytest.mark.parametrize(("name", "arguments", "start"), BAD_ARGUMENTS)
async def test_bad_prompt_arguments_are_invalid_params(serve_fake, captured_logs, name, arguments, start):
    with serve_fake(sft_data()) as api:
        for mode in ("auto", "legacy"):
            async with api.client(mode) as client:
                with pytest.raises(MCPError) as raised:
                    await client.get_prompt(name, arguments)
            assert raised.value.error.code == INVALID_PARAMS
            assert raised.value.error.message.startswith(start), raised.value.error.message
        assert api.faults.requests == []
    no_tracebacks(captured_logs)


async def test_prompts_over_streamable_http(mode):
    with demo_server() as root:
        async with mcp_client(root, mode) as client:
            names = [p.name for p in (await client.list_prompts()).prompts]
            result = await client.get_prompt("choose_checkpoint", {"job_id": DEMO_JOB})
            with pytest.raises(MCPError) as raised:
                await client.get_prompt("nope")
    assert names == [spec.name for spec in PROMPTS]
    assert DEMO_JOB in result.messages[0].content.text
    assert raised.value.error.code == INVALID_PARAMS
