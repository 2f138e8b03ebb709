"""What the context pays: the bytes of ``tools/list`` per toolset, and of each tool's answer on the demo data.

An assistant's context holds the whole ``tools/list`` answer of every server it is connected to, and every result
it is sent. This prints both, as the wire carries them (the JSON-RPC ``result`` of ``tools/list`` and of each
``tools/call``, compact JSON, UTF-8), through the real MCP client against an in-memory server:

- ``tools/list`` for each toolset alone, for the default (the read tools), and for ``all`` with ``--allow-writes``;
- each read tool's answer to one typical question on the demo data (``--demo``), and ``list_checkpoints`` of a job
  with 250 checkpoints (``bench/restart.py``'s long job), split into its text block and its ``structuredContent``.

    python bench/context.py [--markdown]

``--markdown`` prints the answers' table as docs/tools.md shows it.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from typing import Any

import anyio
import httpx2
from mcp import Client
from restart import LONG_JOB, add_long_job

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeOpenAI, demo_data
from openai_checkpoints_mcp.fake.demo import DEMO_JOB_IDS
from openai_checkpoints_mcp.server import create_server
from openai_checkpoints_mcp.tools.toolsets import TOOLSETS

SFT = DEMO_JOB_IDS["support_bot"]
QUESTIONS: list[tuple[str, dict[str, Any]]] = [
    ("list_jobs", {}),
    ("get_job", {"job_id": SFT}),
    ("list_checkpoints", {"job_id": SFT}),
    ("best_checkpoint", {"job_id": SFT}),
    ("compare_jobs", {"suffix": "lr-sweep"}),
    ("training_metrics", {"job_id": SFT}),
    ("plot_training_curve", {"job_id": SFT}),
    ("list_events", {"job_id": SFT}),
    ("list_fine_tuned_models", {}),
]
"""One typical question per read tool, on the demo data."""


def size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON (how the wire carries a JSON-RPC result)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def wire(result: Any) -> Any:
    return json.loads(result.model_dump_json(by_alias=True, exclude_none=True))


async def tools_list_bytes(settings: Settings) -> tuple[int, int]:
    """Bytes of the ``tools/list`` result, and how many tools it lists."""
    async with Client(create_server(settings)) as client:
        listed = await client.list_tools()
    return size(wire(listed)), len(listed.tools)


async def answer_bytes(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[int, int, int]:
    """Bytes of the whole ``tools/call`` result, of its content blocks and of its structuredContent."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise SystemExit(f"{tool}: {result.content}")
    body = wire(result)
    return size(body), size(body.get("content", [])), size(body.get("structuredContent"))


async def main(markdown: bool) -> None:
    logging.disable(logging.INFO)  # the HTTP client's request lines would interleave with the figures
    print("tools/list, bytes (compact JSON):")
    base = Settings()
    rows = [(name, replace(base, toolsets=(name,))) for name in TOOLSETS if name != "writes"]
    rows.append(("writes (--allow-writes)", replace(base, toolsets=("writes",), allow_writes=True)))
    rows.append(("default (every read tool)", base))
    rows.append(("all (--allow-writes)", replace(base, toolsets=("all",), allow_writes=True)))
    for label, settings in rows:
        total, count = await tools_list_bytes(settings)
        print(f"  {label:28} {count:2} tools  {total:7,} B")

    print("\nanswers on the demo data, bytes (whole result / content blocks / structuredContent):")
    answers = []
    async with Client(create_server(Settings.from_env({}, demo=True))) as client:
        for tool, arguments in QUESTIONS:
            answers.append((tool, arguments, *await answer_bytes(client, tool, arguments)))
    data = demo_data()
    add_long_job(data)
    transport = httpx2.ASGITransport(app=FakeOpenAI(data, api_key=None))
    async with Client(create_server(Settings(api_key="sk-bench", base_url="http://fake/v1"), transport=transport)) as c:
        answers.append(
            ("list_checkpoints", {"job_id": LONG_JOB}, *await answer_bytes(c, "list_checkpoints", {"job_id": LONG_JOB}))
        )
    for tool, arguments, total, content, structured in answers:
        shown = " ".join(f"{k}={v}" for k, v in arguments.items())
        print(f"  {tool:24} {shown:42} {total:7,} {content:7,} {structured:7,}")
    if markdown:
        print("\n| tool | question | content blocks | structuredContent | whole result |\n|---|---|---:|---:|---:|")
        for tool, arguments, total, content, structured in answers:
            shown = ", ".join(f"`{k}={v}`" for k, v in arguments.items()) or "no arguments"
            print(f"| `{tool}` | {shown} | {content:,} | {structured:,} | {total:,} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="also print the answers' table in Markdown")
    anyio.run(main, parser.parse_args().markdown)
