"""Archiving a whole organisation: ``openai-checkpoints-mcp archive`` against the critical path, its requests, peak
memory and file size, then a second run (resuming: finished jobs are not read again).

The organisation: ``--jobs`` fine-tuning jobs (2,000 by default; seeded, so identical on every run), newest first,
built as ``sweep.py`` builds its jobs (mostly succeeded, some failed or cancelled, a few running among the newest;
per finished job its last 3 epoch checkpoints, about 35 events and a result CSV of 200-400 steps). The fake API
serves it on 127.0.0.1 with ``--latency-ms`` added to every request; requests are counted where they arrive, at the
fake.

The archive runs as the installed command would, in a subprocess (``openai_checkpoints_mcp archive``, with
``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``), so its peak resident memory (``VmHWM`` as it exits) and CPU time are its
own; its wall time runs from the spawn to its exit (start-up included, and printed on its own). The critical path
is what no client can beat with ``--concurrency`` requests in flight: the job list pages one after another, plus
every per-job request (checkpoint pages, event pages, result files) and the models list spread over
``--concurrency`` slots, each costing the latency.

    python bench/archive.py [--jobs 2000] [--latency-ms 50] [--concurrency N]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _venv import BenchError
from sweep import BENCH_KEY, MODELS, NOW, OTHER_SUFFIXES, TEAMS, Fake, add_job

from openai_checkpoints_mcp.config import DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE
from openai_checkpoints_mcp.fake import FakeData, RecordedRequest
from openai_checkpoints_mcp.fake.builder import random_id
from openai_checkpoints_mcp.fake.curves import LossCurve

SEED = "bench archive 2026-12"


def build_org(n_jobs: int) -> FakeData:
    """`n_jobs` supervised jobs, newest first; sweeps of 8 share their training and validation files."""
    rng = random.Random(SEED)
    ids = random.Random(f"{SEED} job ids")
    data = FakeData()
    created_at = NOW - 900
    files: tuple[str, str | None] = ("", None)
    for position in range(n_jobs):
        created_at -= rng.randrange(60, 3600)
        if position % 8 == 0:
            files = (random_id(rng, "file-", 22), random_id(rng, "file-", 22) if rng.random() < 0.8 else None)
        if position < 10:
            status = rng.choice(("running", "running", "queued", "validating_files", "succeeded"))
        else:
            status = rng.choices(("succeeded", "failed", "cancelled"), weights=(80, 12, 8))[0]
        n_epochs = rng.choice((2, 3, 3, 4))
        floor = rng.uniform(0.25, 0.6)
        curve = LossCurve(
            rng.uniform(1.8, 2.6),
            floor - 0.05,
            rng.uniform(20, 80),
            0.2,
            valid_start=2.2,
            valid_floor=floor,
            valid_tau=rng.uniform(25, 90),
        )
        add_job(
            data,
            random_id(ids, "ftjob-"),
            created_at,
            status=status,
            model=rng.choice(MODELS),
            suffix=rng.choice(OTHER_SUFFIXES),
            curve=curve,
            lr=rng.choice((0.5, 1.0, 1.8, 2.0)),
            n_epochs=n_epochs,
            batch_size=rng.choice((4, 8, 16)),
            files=files,
            metadata={"team": rng.choice(TEAMS)} if rng.random() < 0.7 else None,
            stop_at=rng.randrange(30, 100 * n_epochs) if status in ("running", "cancelled") else None,
        )
    return data


@dataclass(frozen=True)
class CriticalPath:
    listing_pages: int
    per_job_requests: int
    """Checkpoint pages, event pages and result files of every job, and the models list."""

    def seconds(self, latency: float, concurrency: int) -> float:
        return self.listing_pages * latency + self.per_job_requests * latency / concurrency


def critical_path(data: FakeData, page_size: int = DEFAULT_PAGE_SIZE) -> CriticalPath:
    def pages(items: int) -> int:
        return max(1, math.ceil(items / page_size))

    per_job = sum(
        pages(len(data.checkpoints.get(job["id"], [])))
        + pages(len(data.events.get(job["id"], [])))
        + len(job["result_files"])
        for job in data.jobs
    )
    return CriticalPath(listing_pages=pages(len(data.jobs)), per_job_requests=per_job + 1)


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float
    """User and system time of the archiving process."""
    exit_status: int
    peak_rss_mb: float
    receipt: str
    requests: list[RecordedRequest]


PEAK_RSS = """
import atexit, runpy, sys

peak_file, sys.argv = sys.argv[1], ["openai-checkpoints-mcp", *sys.argv[2:]]


def write_peak():
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(peak_file, "w") as out:
        out.write(str(kib))


atexit.register(write_peak)
runpy.run_module("openai_checkpoints_mcp", run_name="__main__")
"""
"""``python -c`` this, then the peak file, then the command's arguments: the command, which writes its own peak
resident memory (``VmHWM``, in KiB) to the peak file as it exits. A child's ``ru_maxrss`` would not do: Linux
carries the parent's resident size at the fork into it, and this benchmark's parent holds the whole organisation."""


def run_archive(fake: Fake, path: Path, concurrency: int) -> Run:
    """The archive command in a subprocess against the fake; its wall time, CPU time and own peak resident memory."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "OPENAI_API_KEY": BENCH_KEY,
        "OPENAI_BASE_URL": fake.base_url,
    }
    fake.faults.requests.clear()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        peak_file = Path(tmp) / "peak"
        arguments = ["archive", str(path), "--concurrency", str(concurrency)]
        command = [sys.executable, "-c", PEAK_RSS, str(peak_file), *arguments]
        if not Path("/proc/self/status").exists():  # not Linux: ru_maxrss, with the parent's share in it
            command = [sys.executable, "-m", "openai_checkpoints_mcp", *arguments]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        receipt, errors = out.read(), err.read()
        if process.returncode not in (0, 1):
            raise BenchError(f"the archive command failed (exit {process.returncode}):\n{errors[-2000:]}")
        if peak_file.exists():
            peak = int(peak_file.read_text()) / 1024
        else:
            peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, process.returncode, peak, receipt.strip(), list(fake.faults.requests))


def start_up_seconds(runs: int = 3) -> float:
    """The median wall time of ``python -m openai_checkpoints_mcp archive --help``: what every run pays before its
    first request (the interpreter and the imports)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "openai_checkpoints_mcp", "archive", "--help"], capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def kinds(requests: list[RecordedRequest]) -> str:
    """``20 list + 2000 ckpt + 2000 events + 1600 file + 1 models = 5621``."""
    counts: dict[str, int] = {}
    for r in requests:
        if r.path.endswith("/fine_tuning/jobs"):
            kind = "list"
        elif r.path.endswith("/checkpoints"):
            kind = "ckpt"
        elif r.path.endswith("/events"):
            kind = "events"
        elif "/files/" in r.path:
            kind = "file"
        elif r.path.endswith("/models"):
            kind = "models"
        else:
            kind = "job"
        counts[kind] = counts.get(kind, 0) + 1
    parts = " + ".join(f"{n} {kind}" for kind, n in counts.items())
    return f"{parts} = {len(requests)}"


OFFLINE_RUNS = 7
"""Each offline question is asked this many times after a warm-up; the median is printed."""


def offline_timings(archive_path: Path, data: FakeData, fake: Fake, latency_ms: float) -> list[str]:
    """Questions answered from the archive (``--archive FILE``: no network), in one in-process MCP session as a
    client would ask them; the same list_jobs asked of the live fake (+latency, capped at 1,000 scanned jobs) is
    the baseline. Medians of `OFFLINE_RUNS`, after a warm-up."""
    import anyio
    from mcp import Client

    from openai_checkpoints_mcp.config import Settings
    from openai_checkpoints_mcp.server import create_server

    succeeded = [job["id"] for job in data.jobs if job.get("status") == "succeeded"]
    suffix = OTHER_SUFFIXES[0]
    questions = {
        "list_jobs status=failed (the newest 20)": ("list_jobs", {"status": "failed"}),
        "list_jobs created_before=2020 (none: all searched)": (
            "list_jobs",
            {"created_before": "2020-01-01T00:00:00Z"},
        ),
        "list_jobs status=failed max_results=1000": ("list_jobs", {"status": "failed", "max_results": 1000}),
        f"list_jobs suffix={suffix} model=gpt-4o-mini": (
            "list_jobs",
            {"suffix": suffix, "model": "gpt-4o-mini", "max_results": 1000},
        ),
        "compare_jobs of 200 job ids": ("compare_jobs", {"job_ids": succeeded[:200]}),
        f"compare_jobs suffix={suffix} max_jobs=200": (
            "compare_jobs",
            {"suffix": suffix, "status": "any", "max_jobs": 200},
        ),
    }

    async def ask(client: Client, tool: str, arguments: dict[str, object]) -> tuple[float, object]:
        started = time.perf_counter()
        result = await client.call_tool(tool, arguments)
        elapsed = time.perf_counter() - started
        if result.is_error:
            raise BenchError(f"{tool} {arguments} failed offline: {result.content}")
        return elapsed, result.structured_content

    async def measure() -> list[str]:
        out = []
        async with Client(create_server(Settings(archive=str(archive_path)))) as client:
            for label, (tool, arguments) in questions.items():
                await ask(client, tool, arguments)
                times = [(await ask(client, tool, arguments))[0] for _ in range(OFFLINE_RUNS)]
                _, content = await ask(client, tool, arguments)
                assert isinstance(content, dict)
                found = content.get("jobs_compared", len(content.get("jobs", ())))
                out.append(f"offline {label:50} {statistics.median(times) * 1000:8.1f} ms   ({found} jobs)")
        settings = Settings(api_key=BENCH_KEY, base_url=fake.base_url, max_retries=0)
        async with Client(create_server(settings)) as live:
            tool, arguments = questions["list_jobs status=failed max_results=1000"]
            elapsed, content = await ask(live, tool, arguments)
            assert isinstance(content, dict)
            out.append(
                f"live    {'list_jobs status=failed max_results=1000':50} {elapsed * 1000:8.1f} ms   "
                f"({len(content['jobs'])} jobs of the {content['scanned']:,} newest scanned; +{latency_ms:g} ms "
                "per request)"
            )
        return out

    return anyio.run(measure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs in the organisation (default 2,000)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every request (default 50)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="the command's --concurrency")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    latency = args.latency_ms / 1000

    started = time.perf_counter()
    data = build_org(args.jobs)
    critical = critical_path(data)
    floor = critical.seconds(latency, args.concurrency)
    print(
        f"organisation: {len(data.jobs):,} jobs, {sum(len(c) for c in data.checkpoints.values()):,} checkpoints, "
        f"{sum(len(e) for e in data.events.values()):,} events, {len(data.files):,} result files "
        f"(built in {time.perf_counter() - started:.1f} s); +{args.latency_ms:g} ms per request, "
        f"--concurrency {args.concurrency}; load average {os.getloadavg()[0]:.2f}"
    )
    fake = Fake(data, latency)
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp, fake.serving():
        archive_path = Path(tmp) / "archive.sqlite3"
        lines: list[str] = []

        start_up = start_up_seconds()
        first = run_archive(fake, archive_path, args.concurrency)
        size = archive_path.stat().st_size
        lines += [
            f"archive (cold)      {first.seconds:8.2f} s   exit {first.exit_status}   "
            f"peak RSS {first.peak_rss_mb:6.1f} MB   file {size / 2**20:6.1f} MB   CPU {first.cpu_seconds:.2f} s",
            f"  start-up          {start_up:8.2f} s   (python -m openai_checkpoints_mcp archive --help)",
            f"  critical path     {floor:8.2f} s   ({critical.listing_pages} list pages x {args.latency_ms:g} ms + "
            f"{critical.per_job_requests:,} per-job requests x {args.latency_ms:g} ms / {args.concurrency})",
            f"  time / critical   {first.seconds / floor:8.2f}   (without start-up: "
            f"{(first.seconds - start_up) / floor:.2f})",
            f"  requests          {kinds(first.requests)}",
        ]
        second = run_archive(fake, archive_path, args.concurrency)
        lines += [
            f"archive (again)     {second.seconds:8.2f} s   exit {second.exit_status}   "
            f"peak RSS {second.peak_rss_mb:6.1f} MB   (finished jobs skipped)   CPU {second.cpu_seconds:.2f} s",
            f"  requests          {kinds(second.requests)}",
        ]

        lines += offline_timings(archive_path, data, fake, args.latency_ms)

    print("\n".join(lines))
    print("\nthe first run's receipt:\n" + first.receipt)
    return 0 if first.exit_status == 0 and second.exit_status == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
