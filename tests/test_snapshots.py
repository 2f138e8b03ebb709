"""What the model sees of each tool (name, title, description, input and output schema, annotations) is
pinned in tests/snapshots/<tool>.json, so any change to it is a reviewed diff.

After a deliberate change: ``UPDATE_SNAPSHOTS=1 python -m pytest tests/test_snapshots.py`` and commit the files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.server import create_server

pytestmark = pytest.mark.anyio

SNAPSHOTS = Path(__file__).parent / "snapshots"
EXPECTED_TOOLS = {
    "list_jobs", "get_job", "list_checkpoints", "best_checkpoint", "compare_jobs", "training_metrics", "list_events",
}
WRITE_TOOLS = {"cancel_job", "pause_job", "resume_job"}
"""Registered only with --allow-writes; snapshotted from a server started with it."""


async def _tools(*, allow_writes: bool = False) -> dict[str, dict]:
    server = create_server(Settings(allow_writes=allow_writes))
    return {
        tool.name: json.loads(tool.model_dump_json(by_alias=True, exclude_none=True))
        for tool in await server.list_tools()
    }


async def test_the_tool_set_is_exactly_the_snapshotted_one():
    tools = await _tools()
    assert set(tools) == EXPECTED_TOOLS
    assert set(await _tools(allow_writes=True)) == EXPECTED_TOOLS | WRITE_TOOLS
    assert {p.stem for p in SNAPSHOTS.glob("*.json")} == EXPECTED_TOOLS | WRITE_TOOLS


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS | WRITE_TOOLS))
async def test_tool_matches_its_snapshot(name):
    tool = (await _tools(allow_writes=True))[name]
    path = SNAPSHOTS / f"{name}.json"
    rendered = json.dumps(tool, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(rendered)
    assert path.exists(), f"no snapshot for {name}: run with UPDATE_SNAPSHOTS=1 and review the file"
    assert json.loads(path.read_text()) == tool, (
        f"{name} changed what the model sees; review, then UPDATE_SNAPSHOTS=1 python -m pytest {__file__}"
    )


async def test_every_tool_is_read_only_typed_and_documented():
    for name, tool in (await _tools()).items():
        assert tool["annotations"] == {
            "readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": True,
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
            "readOnlyHint": False, "destructiveHint": True, "idempotentHint": False, "openWorldHint": True,
        }, name
        assert tool.get("outputSchema", {}).get("type") == "object", name
        assert "for real" in tool["description"] and "confirm" in tool["description"], name
        for argument, schema in tool["inputSchema"].get("properties", {}).items():
            assert schema.get("description"), f"{name}.{argument} has no description"
