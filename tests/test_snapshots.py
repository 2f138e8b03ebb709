"""Tool-schema snapshots: the tool set and each tool's name, description, input and output schema match the committed
snapshots (tests/snapshots/*.json); annotations of read and write tools."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.server import create_server

from .helpers import READ_TOOLS
from .helpers import WRITE_TOOLS as WRITE_TOOLS_OF_TABLE

pytestmark = pytest.mark.anyio


SNAPSHOTS = Path(__file__).parent / "snapshots"


EXPECTED_TOOLS = set(READ_TOOLS)
"""Served by every server: the read-only tools of the registration table."""
WRITE_TOOLS = set(WRITE_TOOLS_OF_TABLE)
"""Registered only with --allow-writes; snapshotted from a server started with it."""


def updating_snapshots(env: Mapping[str, str] = os.environ) -> bool:
    """Whether to rewrite the snapshots (``UPDATE_SNAPSHOTS=1``); fails the test when that is asked for under CI."""
    if env.get("UPDATE_SNAPSHOTS") != "1":
        return False
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(
            "UPDATE_SNAPSHOTS=1 under CI would compare every snapshot with itself; update the snapshots "
            "locally, review the diff and commit them."
        )
    return True


async def _tools(*, allow_writes: bool = False) -> dict[str, dict]:
    server = create_server(Settings(allow_writes=allow_writes))
    return {
        tool.name: json.loads(tool.model_dump_json(by_alias=True, exclude_none=True))
        for tool in await server.list_tools()
    }


async def test_the_tool_set_is_exactly_the_snapshotted_one():
    assert len(EXPECTED_TOOLS) == 10 and len(WRITE_TOOLS) == 3  # a tool added or dropped is a reviewed change
    tools = await _tools()
    assert set(tools) == EXPECTED_TOOLS
    assert set(await _tools(allow_writes=True)) == EXPECTED_TOOLS | WRITE_TOOLS
    assert {p.stem for p in SNAPSHOTS.glob("*.json")} == EXPECTED_TOOLS | WRITE_TOOLS


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS | WRITE_TOOLS))
async def test_tool_matches_its_snapshot(name):
    tool = (await _tools(allow_writes=True))[name]
    path = SNAPSHOTS / f"{name}.json"
    rendered = json.dumps(tool, indent=2, sort_keys=True) + "\n"
    if updating_snapshots():
        path.write_text(rendered)
    assert path.exists(), f"no snapshot for {name}: run with UPDATE_SNAPSHOTS=1 and review the file"
    assert json.loads(path.read_text()) == tool, (
        f"{name} changed what the model sees; review, then UPDATE_SNAPSHOTS=1 python -m pytest {__file__}"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"CI": "true"}, False),
        ({"UPDATE_SNAPSHOTS": "0", "CI": "true"}, False),
        ({"UPDATE_SNAPSHOTS": "1"}, True),
        ({"UPDATE_SNAPSHOTS": "1", "CI": ""}, True),
        ({"UPDATE_SNAPSHOTS": "1", "CI": "false"}, True),
    ],
)
def test_snapshots_are_rewritten_only_when_asked_and_not_under_ci(env, expected):
    assert updating_snapshots(env) is expected


@pytest.mark.parametrize("ci", ["true", "1", "True"])
def test_updating_snapshots_under_ci_fails(ci):
    with pytest.raises(pytest.fail.Exception, match="under CI"):
        updating_snapshots({"UPDATE_SNAPSHOTS": "1", "CI": ci})


async def test_every_tool_is_read_only_typed_and_documented():
    for name, tool in (await _tools()).items():
        assert tool["annotations"] == {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
            "openWorldHint": True,
        }, name
        assert tool.get("outputSchema", {}).get("type") == "object", name
        assert len(tool["description"]) > 100, name
        for argument, schema in tool["inputSchema"].get("properties", {}).items():
            assert schema.get("description"), f"{name}.{argument} has no description"


async def test_every_write_tool_is_destructive_typed_and_documented():
    tools = await _tools(allow_writes=True)
    for name in WRITE_TOOLS:
        tool = tools[name]
        assert tool["annotations"] == {
            "readOnlyHint": False,
            "destructiveHint": True,
            "idempotentHint": False,
            "openWorldHint": True,
        }, name
        assert tool.get("outputSchema", {}).get("type") == "object", name
        assert "for real" in tool["description"] and "confirm" in tool["description"], name
        for argument, schema in tool["inputSchema"].get("properties", {}).items():
            assert schema.get("description"), f"{name}.{argument} has no description"
