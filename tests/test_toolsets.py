"""Toolsets (``--toolsets``, ``OPENAI_CHECKPOINTS_MCP_TOOLSETS``): only the named families are served, listed and
mentioned in the instructions; prompts whose tools are not served are not offered; unknown names and contradictions
with ``--allow-writes`` are refused with one line and exit status 2.

Issue "Native in every client", part "Toolsets, and what the context pays".
"""

from __future__ import annotations

import os
import re
import subprocess

import anyio
import pytest
from mcp import Client, StdioServerParameters

from openai_checkpoints_mcp.config import TOOLSETS_ENV, Settings
from openai_checkpoints_mcp.fake import DEMO_JOB_IDS
from openai_checkpoints_mcp.server import create_server, tool_table
from openai_checkpoints_mcp.tools.toolsets import NAMES, TOOLSETS, ToolsetError

from .helpers import READ_TOOLS, WRITE_TOOLS, console_script

pytestmark = pytest.mark.anyio

EVERY_TOOL = {spec.name for spec in tool_table()}
TOOL_NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def mentioned_tools(text: str) -> set[str]:
    return set(TOOL_NAME.findall(text)) & EVERY_TOOL


async def served(settings: Settings) -> tuple[set[str], str, set[str]]:
    """The tools listed, the instructions and the prompts listed, through the MCP client."""
    async with Client(create_server(settings)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        return tools, client.instructions or "", prompts


def test_every_tool_is_in_exactly_one_toolset():
    placed = [tool for toolset in TOOLSETS.values() for tool in toolset.tools]
    assert sorted(placed) == sorted(EVERY_TOOL)  # a new tool needs its toolset in tools/toolsets.py


@pytest.mark.parametrize("name", [n for n in TOOLSETS if n != "writes"])
async def test_one_toolset_serves_only_its_tools_and_instructions_name_only_them(name):
    tools, instructions, _ = await served(Settings.from_env({}, demo=True, toolsets=name))
    assert tools == set(TOOLSETS[name].tools)
    assert mentioned_tools(instructions) == tools
    assert "All tools are read-only." in instructions


async def test_two_toolsets_and_the_prompts_whose_tools_they_serve():
    tools, instructions, prompts = await served(Settings.from_env({}, demo=True, toolsets="checkpoints,curves"))
    assert tools == {"list_checkpoints", "best_checkpoint", "training_metrics", "plot_training_curve"}
    assert mentioned_tools(instructions) == tools
    assert prompts == {"choose_checkpoint"}  # review_sweep needs compare_jobs, before_shutdown list_fine_tuned_models


async def test_without_toolsets_every_read_tool_and_prompt_is_served():
    tools, instructions, prompts = await served(Settings.from_env({}, demo=True))
    assert tools == set(READ_TOOLS) and mentioned_tools(instructions) == tools
    assert prompts == {"choose_checkpoint", "review_sweep", "before_shutdown"}
    assert await served(Settings.from_env({}, demo=True, toolsets="all")) == (tools, instructions, prompts)


async def test_writes_need_allow_writes_and_then_are_served():
    tools, instructions, _ = await served(Settings.from_env({}, demo=True, toolsets="jobs,writes", allow_writes=True))
    assert tools == {"list_jobs", "get_job", *WRITE_TOOLS}
    assert mentioned_tools(instructions) == tools and "Writes are enabled" in instructions
    every, _, _ = await served(Settings.from_env({}, demo=True, toolsets="all", allow_writes=True))
    assert every == EVERY_TOOL
    with pytest.raises(ToolsetError, match="needs --allow-writes"):
        Settings.from_env({}, toolsets="writes")
    with pytest.raises(ToolsetError, match="serves no write tool"):
        Settings.from_env({}, toolsets="jobs", allow_writes=True)


async def test_the_environment_variable_chooses_and_the_flag_wins():
    tools, _, _ = await served(Settings.from_env({TOOLSETS_ENV: "events"}, demo=True))
    assert tools == {"list_events"}
    tools, _, _ = await served(Settings.from_env({TOOLSETS_ENV: "events"}, demo=True, toolsets="models"))
    assert tools == {"list_fine_tuned_models"}


def run_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script(), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_call_serves_only_the_named_toolsets():
    job = f"job_id={DEMO_JOB_IDS['support_bot']}"
    done = run_cli("--demo", "--toolsets", "checkpoints", "call", "best_checkpoint", job)
    assert done.returncode == 0, done.stderr
    refused = run_cli("--demo", "call", "get_job", job, env={TOOLSETS_ENV: "checkpoints"})
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: unknown tool 'get_job'; tools: best_checkpoint, list_checkpoints"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--toolsets", "jobs,bogus"],
            f"error: --toolsets: unknown toolset 'bogus'; the toolsets are {', '.join(NAMES)}",
        ),
        (["--toolsets", ""], "the toolsets are"),
        (["--toolsets", "writes"], "error: --toolsets writes needs --allow-writes"),
        (["--toolsets", "jobs", "--allow-writes"], "error: --allow-writes with --toolsets jobs serves no write tool"),
    ],
)
def test_unknown_toolsets_and_contradictions_are_refused_in_one_line(argv, message):
    done = run_cli("--demo", *argv, "call", "list_jobs")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


async def test_toolsets_over_stdio():
    params = StdioServerParameters(command=console_script(), args=["--demo", "--toolsets", "sweeps,models"])
    with anyio.fail_after(60):
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            instructions = client.instructions or ""
            prompts = {p.name for p in (await client.list_prompts()).prompts}
    assert tools == {"compare_jobs", "list_fine_tuned_models"}
    assert mentioned_tools(instructions) == tools
    assert prompts == set()  # each prompt also calls a tool of another family
