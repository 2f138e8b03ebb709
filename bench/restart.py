"""A new session asks again: the same questions in a first and then a second, new stdio server process.

An MCP client such as Claude Desktop starts the server anew for each session, so what a session can reuse of the
last one is what the persistent cache kept. The organisation is `sweep.py`'s (150 jobs), plus one finished job
with 250 checkpoints (3 pages of 100) and a 2,500-step result file; the fake API serves it on 127.0.0.1 with
``--latency-ms`` added to every request, and every request is counted where it arrives, at the fake.

Each run uses a new, empty cache directory. In it, a first server process (``python -m openai_checkpoints_mcp``,
spawned by the real MCP stdio client with the key and base URL in its environment, as a client launches it) is
asked the questions one after another, as an assistant asks them; it exits; then a second, new process is asked
the same questions. For each process: its requests at the fake, the wall time of the questions (from the first
``tools/call`` sent to the last answer), the part of it the Python MCP client spent validating each result against
the tool's output schema (jsonschema, in this process: a cost of this client, not of the server), and, for
information, its start-up (spawn to the ``initialize`` answer), which is the same for both. Not timed: listing the
tools and the client compiling its validators for the output schemas, which it does once per session.

The answers of the two processes must agree (the request count each result reports aside); exit status 1 if they
do not or a call fails, 0 otherwise, goals met or not.

    python bench/restart.py [--runs 5] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
from _venv import BenchError
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from sweep import BENCH_KEY, NOW, SEED, build_org

from openai_checkpoints_mcp.config import CACHE_DIR_ENV
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, FaultInjector, running_server
from openai_checkpoints_mcp.fake.builder import JobBuilder
from openai_checkpoints_mcp.fake.curves import SFT_COLUMNS, LossCurve, loss_rows, result_csv

LONG_JOB = "ftjob-LongRun250Checkpoints0000"
LONG_STEPS_PER_EPOCH, LONG_EPOCHS, LONG_EVERY = 500, 5, 10  # a checkpoint every 10 steps: 250 of them
Question = tuple[str, dict[str, Any]]


def add_long_job(data: FakeData) -> None:
    """A succeeded job whose API kept a checkpoint every 10 steps (250), with its 2,500-step result file."""
    b = JobBuilder(LONG_JOB, NOW - 90_000, model="gpt-4o-mini-2024-07-18", suffix="long-run", seed=f"{SEED} long")
    curve = LossCurve(
        2.4, 0.28, 60.0, 0.1, valid_start=2.3, valid_floor=0.31, valid_tau=70.0, overfit_from=1500, overfit_rate=4e-8
    )
    rows = loss_rows(
        curve, steps_per_epoch=LONG_STEPS_PER_EPOCH, n_epochs=LONG_EPOCHS, validation=True, seed=f"{SEED} long rows"
    )
    total = LONG_STEPS_PER_EPOCH * LONG_EPOCHS
    started = b.prepare("file-LongTrain0000000000000", "file-LongValid0000000000000")
    keep = set(range(LONG_EVERY, total + 1, LONG_EVERY))
    last = b.train(rows, total_steps=total, started=started, seconds_per_step=9, keep=keep)
    model, file_id, finished = b.finish(last, result_csv(rows, SFT_COLUMNS))
    hyper = {"n_epochs": LONG_EPOCHS, "batch_size": 8, "learning_rate_multiplier": 1.0}
    job = b.job(
        status="succeeded",
        training_file="file-LongTrain0000000000000",
        validation_file="file-LongValid0000000000000",
        hyperparameters=hyper,
        method={"type": "supervised", "supervised": {"hyperparameters": dict(hyper)}},
        finished_at=finished,
        fine_tuned_model=model,
        result_files=[file_id],
        trained_tokens=total * 8 * 431,
    )
    b.add_to(data, job)
    assert len(data.checkpoints[LONG_JOB]) == total // LONG_EVERY


def questions(data: FakeData, sweep_ids: list[str]) -> list[Question]:
    """What a user asks in a session about finished jobs: the long job, three runs of the sweep, a failed and a
    cancelled job."""
    by_status = {job["status"]: job["id"] for job in reversed(data.jobs)}
    asked: list[Question] = [
        ("best_checkpoint", {"job_id": LONG_JOB}),
        ("list_checkpoints", {"job_id": LONG_JOB}),
        ("training_metrics", {"job_id": LONG_JOB}),
        ("get_job", {"job_id": LONG_JOB}),
    ]
    for job_id in sweep_ids[:3]:
        asked += [
            ("get_job", {"job_id": job_id}),
            ("best_checkpoint", {"job_id": job_id}),
            ("training_metrics", {"job_id": job_id}),
        ]
    asked += [
        ("list_checkpoints", {"job_id": sweep_ids[0]}),
        ("get_job", {"job_id": by_status["failed"]}),
        ("get_job", {"job_id": by_status["cancelled"]}),
        ("best_checkpoint", {"job_id": by_status["cancelled"]}),
    ]
    return asked


@dataclass
class Process:
    """One server process: its start-up, the wall time of the questions and the client's share of it in validating
    the results, its requests at the fake, its answers."""

    startup: float
    seconds: float
    validation: float
    requests: int
    answers: list[dict[str, Any]]
    compile_seconds: float


def answer(result: Any, question: Question) -> dict[str, Any]:
    if result.is_error or not isinstance(result.structured_content, dict):
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise BenchError(f"{question[0]}({json.dumps(question[1])}) failed: {text[:500]}")
    content = dict(result.structured_content)
    content.pop("upstream_requests", None)  # the one field the cache changes
    return content


def time_validation(client: Client) -> list[float]:
    """Seconds the client's session spends validating each result against its tool's output schema, from now on."""
    session = client.session
    validate = session.validate_tool_result
    spent: list[float] = []

    async def timed(name: str, result: Any) -> None:
        started = time.perf_counter()
        try:
            await validate(name, result)
        finally:
            spent.append(time.perf_counter() - started)

    session.validate_tool_result = timed  # type: ignore[method-assign]
    return spent


async def one_process(faults: FaultInjector, base_url: str, cache_dir: Path, asked: list[Question]) -> Process:
    """Spawn a stdio server on `cache_dir`, list its tools, ask `asked` in turn, and let it exit."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "OPENAI_API_KEY": BENCH_KEY,
        "OPENAI_BASE_URL": base_url,
        CACHE_DIR_ENV: str(cache_dir),
    }
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "openai_checkpoints_mcp", "--log-level", "WARNING"], env=env
    )
    with tempfile.TemporaryFile("w+") as errlog:
        try:
            spawned = time.perf_counter()
            async with Client(stdio_client(params, errlog=errlog)) as client:
                startup = time.perf_counter() - spawned
                tools = {tool.name: tool for tool in (await client.list_tools()).tools}
                compile_validator = getattr(client.session, "_output_schema_validator", None)  # private, may go
                started = time.perf_counter()
                for name in {tool for tool, _ in asked}:
                    schema = tools[name].output_schema
                    if compile_validator is not None and schema is not None:
                        compile_validator(name, schema)
                compile_seconds = time.perf_counter() - started
                validation = time_validation(client)
                faults.requests.clear()
                started = time.perf_counter()
                results = [await client.call_tool(tool, arguments) for tool, arguments in asked]
                seconds = time.perf_counter() - started
                requests = len(faults.requests)
            answers = [answer(result, question) for result, question in zip(results, asked, strict=True)]
        except BenchError:
            raise
        except Exception as exc:
            errlog.seek(0)
            raise BenchError(f"the server process failed: {exc!r}\n{errlog.read()[-2000:]}") from None
        errlog.seek(0)
        warnings = [line for line in errlog.read().splitlines() if " WARNING " in line or " ERROR " in line]
    if warnings:
        raise BenchError("the server logged:\n" + "\n".join(warnings))
    return Process(startup, seconds, sum(validation), requests, answers, compile_seconds)


async def bench(args: argparse.Namespace) -> int:
    org = build_org()
    add_long_job(org.data)
    asked = questions(org.data, org.sweep_ids)
    faults = FaultInjector(FakeOpenAI(org.data, api_key=BENCH_KEY), latency=args.latency_ms / 1000)
    firsts: list[Process] = []
    seconds: list[Process] = []
    agree = True
    with running_server(faults) as base_url:
        for run in range(args.runs + 1):  # the first pair is a warm-up, not counted
            with tempfile.TemporaryDirectory(prefix="restart-bench-") as scratch:
                cache_dir = Path(scratch, "cache")
                first = await one_process(faults, base_url, cache_dir, asked)
                second = await one_process(faults, base_url, cache_dir, asked)
            agree = agree and first.answers == second.answers
            if run:
                firsts.append(first)
                seconds.append(second)

    def ms(values: list[float]) -> str:
        return f"{1000 * statistics.median(values):5.0f} ms ({1000 * min(values):.0f}-{1000 * max(values):.0f})"

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"restart: {len(asked)} questions about finished jobs (one with 250 checkpoints), in a first and then a "
        f"second new stdio server process on one cache directory, +{args.latency_ms:g} ms per request; medians "
        f"of {args.runs} runs (min-max), after one warm-up pair"
    )
    print(f"  mcp {version('mcp')}; load average {load} on {os.cpu_count()} cores")
    print(
        f"  {'':<15} {'requests':>8}   {'questions (wall)':<21}  {'of which validation':<21}  "
        "start-up (spawn -> initialize)"
    )
    for label, runs in (("first process", firsts), ("second process", seconds)):
        requests = statistics.median(p.requests for p in runs)
        print(
            f"  {label:<15} {requests:8g}   {ms([p.seconds for p in runs]):<21}  "
            f"{ms([p.validation for p in runs]):<21}  {ms([p.startup for p in runs])}"
        )
    print(
        "  (validation: the Python MCP client checking each result against the tool's output schema; not timed: it "
        f"compiling those validators, once per session: median "
        f"{1000 * statistics.median(p.compile_seconds for p in firsts + seconds):.0f} ms)"
    )
    ratio = statistics.median(p.seconds for p in firsts) / statistics.median(p.seconds for p in seconds)
    net = statistics.median(p.seconds - p.validation for p in firsts) / statistics.median(
        p.seconds - p.validation for p in seconds
    )
    most = max(p.requests for p in seconds)
    print("goals:")
    print(f"  second-process requests (most over the runs): {most}   goal 0  ({'met' if most == 0 else 'NOT met'})")
    print(f"  first / second, questions (medians): {ratio:.1f}   goal >= 10  ({'met' if ratio >= 10 else 'NOT met'})")
    print(f"  first / second, questions without the client's validation: {net:.1f}   (information)")
    if not agree:
        print("error: the second process answered differently from the first", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="first-and-second process pairs (default 5)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every request (default 50)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    try:
        status = anyio.run(bench, args, backend="asyncio")
    except BenchError as exc:
        sys.exit(f"error: {exc}")
    sys.exit(status)


if __name__ == "__main__":
    main()
