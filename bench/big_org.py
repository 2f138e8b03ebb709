"""A big organisation: ``list_jobs`` through every page with a filter, and ``compare_jobs`` over 200 jobs, against
the critical path: requests, time, and the server's peak resident memory (goal: under 200 MB).

The organisation: ``--jobs`` fine-tuning jobs (10,000 by default), built as ``archive.py`` builds its organisation
(seeded, newest first, mostly succeeded; 3 checkpoints per finished job). Only jobs and checkpoints are served: these
two tools read nothing else. The fake API serves them on 127.0.0.1 with ``--latency-ms`` added to every request;
requests are counted where they arrive, at the fake.

Our server runs as a client launches it, a stdio subprocess (``python -m openai_checkpoints_mcp`` with
``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``, a fresh cache directory), one process per part so that each part's peak
resident memory (``VmHWM`` as the process exits) is its own; the real MCP client talks to it over stdio.

* **list_jobs**: ``status=failed, max_results=1000``, then ``after=next_after`` until ``has_more`` is false; the
  status is a filter the API cannot apply, so every page of the listing is read. Its critical path is every
  listing page one after another (each needs the cursor of the one before).
* **compare_jobs over 200 jobs**: the live API is compared 100 jobs at most per call, so 200 succeeded job ids go
  in two calls of 100 (one call of 200 is refused before any request, which is checked). The critical path of a
  call is its requests spread over ``--concurrency`` slots, and never less than one job read after another (the job,
  then its checkpoints).

    python bench/big_org.py [--jobs 10000] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from _venv import BenchError
from archive import PEAK_RSS, build_org, kinds
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from sweep import BENCH_KEY, Fake, structured

from openai_checkpoints_mcp.config import CACHE_DIR_ENV, DEFAULT_CONCURRENCY
from openai_checkpoints_mcp.fake import FakeData, RecordedRequest
from openai_checkpoints_mcp.tools.jobs import JOBS_PAGE_SIZE
from openai_checkpoints_mcp.tools.sweeps import COMPARE_MAX_JOBS

PEAK_GOAL_MB = 200
COMPARED = 200


class ServiceClock:
    """Wraps the fake's ASGI app (inside the injector's latency) and adds up the time it takes to answer: the fake
    runs in this process, so its share of the wall time is said apart from ours."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.seconds += time.perf_counter() - started


@dataclass
class Part:
    name: str
    calls: int = 0
    seconds: float = 0.0
    critical: float = 0.0
    critical_note: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    fake_seconds: float = 0.0
    """The fake's own time answering (in this process, not ours; requests in flight at once overlap)."""
    peak_mb: float = 0.0
    checks: list[str] = field(default_factory=list)


@asynccontextmanager
async def server(fake: Fake, peak_file: Path, cache_dir: str) -> AsyncIterator[Client]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "OPENAI_API_KEY": BENCH_KEY,
        "OPENAI_BASE_URL": fake.base_url,
        CACHE_DIR_ENV: cache_dir,
    }
    params = StdioServerParameters(command=sys.executable, args=["-c", PEAK_RSS, str(peak_file)], env=env)
    with open(os.devnull, "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            yield client


async def timed_call(client: Client, part: Part, fake: Fake, tool: str, arguments: dict[str, Any]) -> Any:
    fake.faults.requests.clear()
    clock = fake.faults.app
    assert isinstance(clock, ServiceClock)
    served_before = clock.seconds
    started = time.perf_counter()
    result = await client.call_tool(tool, arguments)
    part.seconds += time.perf_counter() - started
    part.fake_seconds += clock.seconds - served_before
    part.calls += 1
    part.requests += fake.faults.requests
    return result


async def list_every_page(fake: Fake, data: FakeData, latency: float, cache_dir: str) -> Part:
    part = Part("list_jobs status=failed, every page")
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        async with server(fake, peak_file, cache_dir) as client:
            found: list[str] = []
            after: str | None = None
            while True:
                arguments: dict[str, Any] = {"status": "failed", "max_results": 1000}
                if after:
                    arguments["after"] = after
                content = structured(await timed_call(client, part, fake, "list_jobs", arguments), "list_jobs")
                found += [job["id"] for job in content["jobs"]]
                if not content["has_more"]:
                    break
                after = content["next_after"]
        part.peak_mb = int(peak_file.read_text()) / 1024
    expected = [job["id"] for job in sorted(data.jobs, key=lambda j: (j["created_at"], j["id"]), reverse=True)]
    expected_failed = [job_id for job_id in expected if _status(data, job_id) == "failed"]
    if found != expected_failed:
        raise BenchError(f"list_jobs found {len(found)} failed jobs, the organisation has {len(expected_failed)}")
    part.checks.append(f"{len(found):,} failed jobs found, each once, newest first (as in the organisation)")
    pages = math.ceil(len(data.jobs) / JOBS_PAGE_SIZE)
    part.critical = pages * latency
    part.critical_note = f"{pages} listing pages one after another x {latency * 1000:g} ms"
    return part


async def compare_200(fake: Fake, data: FakeData, latency: float, concurrency: int, cache_dir: str) -> Part:
    part = Part(f"compare_jobs over {COMPARED} jobs ({COMPARED // COMPARE_MAX_JOBS} calls of {COMPARE_MAX_JOBS})")
    succeeded = [job["id"] for job in data.jobs if job.get("status") == "succeeded"][:COMPARED]
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        async with server(fake, peak_file, cache_dir) as client:
            fake.faults.requests.clear()
            refused = await client.call_tool("compare_jobs", {"job_ids": succeeded})
            text = " ".join(getattr(block, "text", "") for block in refused.content)
            if not refused.is_error or not text.startswith("invalid_argument") or fake.faults.requests:
                raise BenchError(f"compare_jobs of {COMPARED} ids was not refused before any request: {text[:300]}")
            part.checks.append(f"one call of {COMPARED} ids refused as invalid_argument, 0 requests")
            compared = 0
            for start in range(0, COMPARED, COMPARE_MAX_JOBS):
                chunk = succeeded[start : start + COMPARE_MAX_JOBS]
                result = await timed_call(client, part, fake, "compare_jobs", {"job_ids": chunk})
                content = structured(result, "compare_jobs")
                if content["failed"]:
                    raise BenchError(f"compare_jobs could not read {len(content['failed'])} jobs")
                compared += content["jobs_compared"]
        part.peak_mb = int(peak_file.read_text()) / 1024
    if compared != COMPARED:
        raise BenchError(f"compare_jobs compared {compared} jobs, not {COMPARED}")
    part.checks.append(f"{compared} jobs compared, none failed")
    per_call = len(part.requests) / part.calls
    slots = max(2, math.ceil(per_call / concurrency))
    part.critical = part.calls * slots * latency
    part.critical_note = (
        f"{part.calls} calls x max(2 in sequence, {per_call:.0f} requests / {concurrency} slots) "
        f"x {latency * 1000:g} ms"
    )
    return part


def _status(data: FakeData, job_id: str) -> str:
    return next(str(job["status"]) for job in data.jobs if job["id"] == job_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the organisation (default 10,000)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to every request (default 20)")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    concurrency = DEFAULT_CONCURRENCY

    started = time.perf_counter()
    data = build_org(args.jobs)
    data.events.clear()  # neither tool reads events or result files
    data.files.clear()
    statuses = {job["id"]: job["status"] for job in data.jobs}
    print(
        f"organisation: {len(data.jobs):,} jobs ({sum(s == 'failed' for s in statuses.values()):,} failed, "
        f"{sum(s == 'succeeded' for s in statuses.values()):,} succeeded), "
        f"{sum(len(c) for c in data.checkpoints.values()):,} checkpoints (built in {time.perf_counter() - started:.1f}"
        f" s); +{args.latency_ms:g} ms per request, concurrency {concurrency}; load average {os.getloadavg()[0]:.2f}"
    )
    fake = Fake(data, latency)
    fake.faults.app = ServiceClock(fake.faults.app)
    with fake.serving(), tempfile.TemporaryDirectory(prefix="bench-big-org-") as cache_dir:

        async def run() -> list[Part]:
            return [
                await list_every_page(fake, data, latency, cache_dir + "/list"),
                await compare_200(fake, data, latency, concurrency, cache_dir + "/compare"),
            ]

        parts = anyio.run(run)

    for part in parts:
        print(f"\n{part.name}")
        print(f"  calls             {part.calls}")
        print(f"  requests          {kinds(part.requests)}")
        print(f"  time              {part.seconds:8.2f} s")
        print(f"  critical path     {part.critical:8.2f} s   ({part.critical_note})")
        print(f"  time / critical   {part.seconds / part.critical:8.2f}")
        print(
            f"  the fake's share  {part.fake_seconds:8.2f} s   (answering, in the benchmark's process; overlapping "
            "when concurrent)"
        )
        print(
            f"  without it        {(part.seconds - part.fake_seconds) / part.critical:8.2f} x critical   (exact for "
            "requests in sequence: the listing)"
        )
        verdict = "within" if part.peak_mb < PEAK_GOAL_MB else "OVER"
        print(f"  peak RSS          {part.peak_mb:8.1f} MB ({verdict} the {PEAK_GOAL_MB} MB goal; the server process)")
        for check in part.checks:
            print(f"  checked           {check}")
    return 0 if all(part.peak_mb < PEAK_GOAL_MB for part in parts) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
