"""What masking the key costs: `masked_exits.mask_result` on real answers, against the whole tool call it is part of.

Every answer the server sends goes through `mask_result` (issue 11: the key must not leak in any form). This takes
the answers of ``list_checkpoints`` and ``training_metrics`` for a job of 250 checkpoints (``bench/restart.py``'s
long job, in memory against the fake API, the cache warm) and times, as medians over ``--runs``:

- the whole ``tools/call`` through the in-memory MCP client (masking included);
- `mask_result` on that answer when it holds no secret (the usual case: one check of the whole answer);
- `mask_result` on the same answer with the key echoed in one of its strings (the walk and the exact search);
- `Redactor.mask` on the answer's JSON text alone, clean and with an echo split by newlines.

It prints each in milliseconds and as a share of the call without masking (call minus the clean check).

    python bench/masking.py [--runs 30]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import statistics
import string
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
from mcp import Client
from restart import LONG_JOB, add_long_job

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeOpenAI, demo_data
from openai_checkpoints_mcp.masked_exits import mask_result
from openai_checkpoints_mcp.redaction import Redactor
from openai_checkpoints_mcp.server import create_server

KEY = "sk-proj-" + "".join(random.Random(164).choices(string.ascii_letters + string.digits + "-_", k=156))
"""A key about as long as OpenAI's project keys (164 characters)."""


def median_ms(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def figures(client: Client, tool: str, redactor: Redactor, runs: int) -> None:
    """Print the figures of one tool's answer about the long job."""
    arguments = {"job_id": LONG_JOB}
    result = await client.call_tool(tool, arguments)  # warms the cache
    calls = []
    for _ in range(runs):
        started = time.perf_counter()
        await client.call_tool(tool, arguments)
        calls.append(time.perf_counter() - started)
    call = statistics.median(calls) * 1000
    text = json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False)
    clean = median_ms(lambda: mask_result(result, redactor), runs)
    echoed = copy.deepcopy(result)
    echoed.structured_content["notice"] = f"echo {KEY[:60]}\n{KEY[60:]}"
    leaked = median_ms(lambda: mask_result(copy.deepcopy(echoed), redactor), runs)
    copying = median_ms(lambda: copy.deepcopy(echoed), runs)
    text_clean = median_ms(lambda: redactor.mask(text), runs)
    split = text[: len(text) // 2] + KEY[:80] + "\n" + KEY[80:] + text[len(text) // 2 :]
    text_leaked = median_ms(lambda: redactor.mask(split), runs)
    baseline = call - clean

    def share(ms: float) -> str:
        return f"{ms:7.2f} ({ms / baseline:5.1%})"

    print(f"\n{tool} job_id={LONG_JOB}: {len(text):,} bytes of JSON")
    print(f"  tools/call, in memory, masking included  {call:7.2f}")
    print(f"  mask_result, no secret in it             {share(clean)}")
    print(f"  mask_result, the key echoed once          {share(max(leaked - copying, 0.0))}")
    print(f"  Redactor.mask of the JSON text, clean    {share(text_clean)}")
    print(f"  Redactor.mask of the JSON text, echoed   {share(text_leaked)}")


async def main(runs: int) -> None:
    logging.disable(logging.INFO)
    data = demo_data()
    add_long_job(data)
    transport = httpx2.ASGITransport(app=FakeOpenAI(data, api_key=None))
    settings = Settings(api_key=KEY, base_url="http://fake/v1")
    print(f"key of {len(KEY)} characters; {runs} runs each; medians in ms (share of the call without masking)")
    async with Client(create_server(settings, transport=transport)) as client:
        for tool in ("list_checkpoints", "training_metrics"):
            await figures(client, tool, settings.redactor, runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed repetitions of each figure (default 30)")
    anyio.run(main, parser.parse_args().runs)
