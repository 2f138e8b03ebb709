"""Reading a large sweep under the API's rate limit: throughput, 429s and retries, adaptive bound against fixed.

The organisation is `sweep.py`'s (150 jobs); ``compare_jobs`` reads 100 of them by id (a job object and a checkpoint
page each: 200 requests) through the real MCP client, on a fresh server per run with the cache off, against the fake
API served on 127.0.0.1 with ``--latency-ms`` added to every request and ``FakeOpenAI(rate_limit=R)`` answering 429
(``retry-after-ms``, ``x-ratelimit-*``) beyond R requests in any second. For each rate it prints, for the server as
it is (``adaptive``: the AIMD bound and the pause after a 429) and with both turned off (``fixed``: always
``--concurrency`` in flight, each 429 retried on its own): the wall time, the successful requests per second
against the limiter's rate, the 429s, the ratio of 429s to requests, and the most in flight at the fake.

    python bench/archive_rate.py [--runs 3] [--latency-ms 50] [--rates 25,50,100] [--concurrency N]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import Client
from sweep import BENCH_KEY, build_org

from openai_checkpoints_mcp.api import client as client_module
from openai_checkpoints_mcp.api.adaptive import AdaptiveLimit
from openai_checkpoints_mcp.config import DEFAULT_CONCURRENCY, Settings
from openai_checkpoints_mcp.fake import FakeOpenAI, FaultInjector, running_server
from openai_checkpoints_mcp.server import create_server

JOBS = 100


class _FixedLimit(AdaptiveLimit):
    """A bound that never moves (the server before the adaptive bound)."""

    def observe(self, token: int, status: int | None, headers: Any) -> None:
        return None


@contextmanager
def fixed_bound() -> Iterator[None]:
    """The server with the bound fixed at ``--concurrency`` and no pause after a 429."""
    original_limit = client_module.AdaptiveLimit
    original_send = client_module.OpenAIClient._send

    async def send(self: Any, *args: Any, waited: bool) -> Any:
        self._resume_at = 0.0
        return await original_send(self, *args, waited=True)

    client_module.AdaptiveLimit = _FixedLimit  # type: ignore[misc]
    client_module.OpenAIClient._send = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        client_module.AdaptiveLimit = original_limit  # type: ignore[misc]
        client_module.OpenAIClient._send = original_send  # type: ignore[method-assign]


@dataclass
class Outcome:
    seconds: float
    requests: int
    throttled: int
    peak: int
    failed: int


async def one_run(job_ids: list[str], rate: float, latency: float, concurrency: int | None) -> Outcome:
    org = build_org()
    fake = FakeOpenAI(org.data, api_key=BENCH_KEY, rate_limit=rate)
    faults = FaultInjector(fake, latency=latency)
    overrides: dict[str, Any] = {} if concurrency is None else {"concurrency": concurrency}
    with running_server(faults) as base_url:
        settings = Settings(
            api_key=BENCH_KEY, base_url=base_url, cache_size=0, deadline=300.0, max_retries=10, **overrides
        )
        async with Client(create_server(settings)) as client:
            started = time.perf_counter()
            result = await client.call_tool("compare_jobs", {"job_ids": job_ids})
            seconds = time.perf_counter() - started
    content = result.structured_content or {}
    failed = len(content.get("failed") or []) if not result.is_error else len(job_ids)
    return Outcome(seconds, len(faults.requests), fake.throttled, faults.peak, failed)


async def bench(args: argparse.Namespace) -> None:
    job_ids = [job["id"] for job in build_org().data.jobs[:JOBS]]
    latency = args.latency_ms / 1000
    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    print(
        f"compare_jobs over {JOBS} jobs ({2 * JOBS} reads), +{args.latency_ms:g} ms per request, "
        f"--concurrency {concurrency}, medians of {args.runs} runs"
    )
    print(f"{'rate/s':>7} {'bound':>8} {'time s':>7} {'ok/s':>7} {'ok/rate':>7} {'429s':>5} {'429/req':>7} {'peak':>5}")
    for rate in args.rates:
        for name in ("adaptive", "fixed"):
            outcomes = []
            for _ in range(args.runs):
                if name == "fixed":
                    with fixed_bound():
                        outcomes.append(await one_run(job_ids, rate, latency, args.concurrency))
                else:
                    outcomes.append(await one_run(job_ids, rate, latency, args.concurrency))
            seconds = statistics.median(o.seconds for o in outcomes)
            ok = statistics.median((o.requests - o.throttled) / o.seconds for o in outcomes)
            throttled = statistics.median(o.throttled for o in outcomes)
            ratio = statistics.median(o.throttled / o.requests for o in outcomes)
            peak = max(o.peak for o in outcomes)
            failed = sum(o.failed for o in outcomes)
            print(
                f"{rate:>7g} {name:>8} {seconds:>7.2f} {ok:>7.1f} {ok / rate:>7.2f} {throttled:>5g} {ratio:>7.3f} "
                f"{peak:>5}" + (f"  ({failed} jobs failed)" if failed else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--rates", type=lambda text: [float(x) for x in text.split(",")], default=[25.0, 50.0, 100.0])
    parser.add_argument("--concurrency", type=int, default=None, help=f"default: the server's ({DEFAULT_CONCURRENCY})")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    anyio.run(bench, args)


if __name__ == "__main__":
    sys.exit(main())
