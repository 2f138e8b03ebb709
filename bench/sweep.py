"""Comparing a learning-rate sweep: ``compare_jobs`` against a sequential ``openai`` SDK loop and the critical path.

The organisation: 150 fine-tuning jobs (seeded, so identical on every run), newest first, of which 12 form a sweep
(suffix ``sweep-lr``, metadata ``sweep=lr-2026-11``, a 4 x 3 grid of learning-rate multiplier and epochs, 3
checkpoints each, one known winner whose best checkpoint is not its final model), interleaved with other jobs among
the 100 newest. The fake API serves it on 127.0.0.1 with ``--latency-ms`` added to every request; every request is
counted where it arrives, at the fake.

What is timed (medians over ``--runs``, interleaved so that drift in machine load hits all alike, after one untimed
round):

* ours: ``compare_jobs(suffix="sweep-lr")`` through the real MCP client (in memory) on a fresh server each run, so
  with a cold cache; the clock covers the one ``tools/call``. Also ``metadata={"sweep": "lr-2026-11"}``, which the
  API filters server-side.
* the SDK loop: the official ``openai`` package (installed only for this benchmark into ``bench/.venv-openai/``, run
  as a subprocess of that venv's python): auto-paging ``jobs.list(limit=100)``, keep the suffix's succeeded jobs, then
  for each in turn ``jobs.checkpoints.list(job_id, limit=100)``, and the min ``full_valid_loss`` per job and overall.
* the critical path, measured with a raw ``httpx2.AsyncClient``: the job list pages in sequence (``limit=100``), then
  every selected job's checkpoint request in one concurrent round. For information, a pipelined variant requests each
  page's matches as soon as the page arrives, overlapping them with the next list page.

Then, on one server, ``compare_jobs`` twice: the upstream requests of the second call (counted at the fake). Bytes:
the compact JSON of the structured results per checkpoint against the raw API JSON per checkpoint.

Exit status 0 whether the goals are met or not (the figures are information); 1 if a call errors or the answers of
ours, the SDK loop and the critical path disagree.

    python bench/sweep.py [--runs 5] [--latency-ms 50] [--concurrency N] [--sdk-python PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
from _venv import BenchError, imports, venv_python
from mcp import Client

from openai_checkpoints_mcp.config import DEFAULT_CONCURRENCY, Settings
from openai_checkpoints_mcp.fake import (
    FakeData,
    FakeOpenAI,
    FaultInjector,
    RecordedRequest,
    running_server,
)
from openai_checkpoints_mcp.fake.builder import JobBuilder, random_id
from openai_checkpoints_mcp.fake.curves import SFT_COLUMNS, LossCurve, loss_rows, result_csv
from openai_checkpoints_mcp.server import create_server

SDK_VENV = Path(__file__).resolve().parent / ".venv-openai"
BENCH_KEY = "sk-bench-sweep-0123456789abcdef"  # the fake's key; never printed
TOOL = "compare_jobs"

# ---------------------------------------------------------------------------------------------------------------
# The organisation

SEED = "bench sweep 2026-11"
NOW = 1_795_176_000  # 2026-11-20T12:00:00Z
N_JOBS = 150
SWEEP_WINDOW = 100  # the sweep sits among this many newest jobs
SUFFIX = "sweep-lr"
SWEEP_METADATA = {"sweep": "lr-2026-11"}
BY_SUFFIX: dict[str, Any] = {"suffix": SUFFIX}
BY_METADATA: dict[str, Any] = {"metadata": SWEEP_METADATA}
LEARNING_RATES = (0.25, 0.5, 1.0, 2.0)
EPOCHS = (3, 4, 5)
WINNER = (1.0, 4)  # (learning_rate_multiplier, n_epochs) of the run that wins
STEPS_PER_EPOCH = 100
GPT_4O_MINI = "gpt-4o-mini-2024-07-18"
MODELS = (GPT_4O_MINI, GPT_4O_MINI, "gpt-4.1-mini-2025-04-14", "gpt-4o-2024-08-06")
OTHER_SUFFIXES = (
    "support-bot",
    "support-bot-v8",
    "contracts-ner",
    "ticket-triage",
    "sql-gen",
    "summarizer",
    "extract-invoices",
    "tone",
    None,
)
TEAMS = ("support", "legal", "docs", "data", "growth")


@dataclass(frozen=True)
class Org:
    """The data and the answer it was built to have."""

    data: FakeData
    sweep_ids: list[str]  # newest first
    winner_job: str
    winner_checkpoint: str
    winner_step: int
    winner_value: float
    sweep_checkpoints: int


def _hyper(lr: float, n_epochs: int, batch_size: int) -> dict[str, Any]:
    return {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": lr}


def add_job(
    data: FakeData,
    job_id: str,
    created_at: int,
    *,
    status: str,
    model: str,
    suffix: str | None,
    curve: LossCurve,
    lr: float,
    n_epochs: int,
    batch_size: int,
    files: tuple[str, str | None],
    metadata: dict[str, str] | None,
    stop_at: int | None = None,
) -> None:
    """One supervised job in any status, with the events, checkpoints and result file that status implies."""
    b = JobBuilder(job_id, created_at, model=model, suffix=suffix, seed=f"{SEED} ids {job_id}")
    training_file, validation_file = files
    hyper = _hyper(lr, n_epochs, batch_size)
    fields: dict[str, Any] = {
        "status": status,
        "training_file": training_file,
        "validation_file": validation_file,
        "hyperparameters": hyper,
        "method": {"type": "supervised", "supervised": {"hyperparameters": dict(hyper)}},
        "metadata": metadata,
    }
    if status in ("validating_files", "queued"):
        b.event(created_at, f"Created fine-tuning job: {job_id}")
        b.add_to(data, b.job(**fields))
        return
    if status == "failed":
        b.event(created_at, f"Created fine-tuning job: {job_id}")
        error = {
            "code": "invalid_training_file",
            "param": "training_file",
            "message": "The job failed due to an invalid training file. Line 12: missing 'messages'.",
        }
        b.event(
            created_at + 40,
            error["message"],
            level="error",
            data={"error_code": error["code"], "error_param": error["param"]},
        )
        b.add_to(data, b.job(**fields, finished_at=created_at + 40, error=error))
        return
    total = STEPS_PER_EPOCH * n_epochs
    rows = loss_rows(
        curve,
        steps_per_epoch=STEPS_PER_EPOCH,
        n_epochs=n_epochs,
        validation=validation_file is not None,
        seed=f"{SEED} rows {job_id}",
    )
    if stop_at is not None:
        rows = rows[:stop_at]
    epoch_ends = {STEPS_PER_EPOCH * e for e in range(1, n_epochs + 1)}
    keep = {s for s in epoch_ends if s > STEPS_PER_EPOCH * (n_epochs - 3)} if status == "succeeded" else epoch_ends
    started = b.prepare(training_file, validation_file)
    last = b.train(rows, total_steps=total, started=started, seconds_per_step=9, keep=keep)
    if status == "succeeded":
        model_name, file_id, finished = b.finish(last, result_csv(rows, SFT_COLUMNS))
        fields |= {
            "finished_at": finished,
            "fine_tuned_model": model_name,
            "result_files": [file_id],
            "trained_tokens": total * batch_size * 431,
        }
    elif status == "running":
        fields |= {"estimated_finish": NOW + (total - len(rows)) * 9 + 600}
    else:  # cancelled
        b.event(last + 15, "Fine-tuning job cancelled")
        fields["finished_at"] = last + 15
    b.add_to(data, b.job(**fields))


def _sweep_curve(lr: float, n_epochs: int, rng: random.Random) -> LossCurve:
    """Higher rates learn faster; 2.0 overfits. The winner gets the lowest floor; the others a little jitter."""
    floor = {0.25: 0.40, 0.5: 0.35, 1.0: 0.318, 2.0: 0.33}[lr] + rng.uniform(-0.004, 0.004)
    if (lr, n_epochs) == WINNER:
        floor = 0.30
    tau = {0.25: 90.0, 0.5: 60.0, 1.0: 38.0, 2.0: 20.0}[lr]
    overfit_from, overfit_rate = {0.25: (0, 0.0), 0.5: (0, 0.0), 1.0: (300, 2e-6), 2.0: (150, 3e-6)}[lr]
    return LossCurve(
        2.4,
        floor - 0.04,
        tau * 0.9,
        0.15,
        valid_start=2.3,
        valid_floor=floor,
        valid_tau=tau,
        overfit_from=overfit_from,
        overfit_rate=overfit_rate,
    )


def build_org() -> Org:
    """150 jobs, newest first, with the 12-run sweep interleaved among the 100 newest."""
    rng = random.Random(SEED)
    ids = random.Random(f"{SEED} job ids")
    data = FakeData()
    sweep_positions = set(rng.sample(range(2, SWEEP_WINDOW), len(LEARNING_RATES) * len(EPOCHS)))
    grid = [(lr, n) for lr in LEARNING_RATES for n in EPOCHS]
    rng.shuffle(grid)
    older_sweep = set(rng.sample(range(SWEEP_WINDOW + 5, N_JOBS), 6))  # an earlier batch-size sweep
    sweep_files = (random_id(rng, "file-", 22), random_id(rng, "file-", 22))
    created_at = NOW - 900
    sweep_ids: list[str] = []
    for position in range(N_JOBS):
        created_at -= rng.randrange(300, 3 * 3600)
        job_id = random_id(ids, "ftjob-")
        if position in sweep_positions:
            lr, n_epochs = grid.pop()
            add_job(
                data,
                job_id,
                created_at,
                status="succeeded",
                model=GPT_4O_MINI,
                suffix=SUFFIX,
                curve=_sweep_curve(lr, n_epochs, rng),
                lr=lr,
                n_epochs=n_epochs,
                batch_size=8,
                files=sweep_files,
                metadata={**SWEEP_METADATA, "lr": str(lr), "epochs": str(n_epochs)},
            )
            sweep_ids.append(job_id)
            continue
        if position < 6:
            status = rng.choice(("running", "running", "queued", "validating_files", "succeeded"))
        else:
            status = rng.choices(("succeeded", "failed", "cancelled"), weights=(80, 12, 8))[0]
        n_epochs = rng.choice((2, 3, 3, 4))
        validation = rng.random() < 0.8
        suffix: str | None
        metadata: dict[str, str] | None
        if position in older_sweep:
            suffix, metadata, lr = "sweep-bs", {"sweep": "bs-2026-09"}, 1.0
        else:
            suffix, lr = rng.choice(OTHER_SUFFIXES), rng.choice((0.5, 1.0, 1.8, 2.0))
            metadata = {"team": rng.choice(TEAMS)} if rng.random() < 0.7 else None
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
        files = (random_id(rng, "file-", 22), random_id(rng, "file-", 22) if validation else None)
        stop_at = rng.randrange(30, STEPS_PER_EPOCH * n_epochs) if status in ("running", "cancelled") else None
        add_job(
            data,
            job_id,
            created_at,
            status=status,
            model=rng.choice(MODELS),
            suffix=suffix,
            curve=curve,
            lr=lr,
            n_epochs=n_epochs,
            batch_size=rng.choice((4, 8, 16)),
            files=files,
            metadata=metadata,
            stop_at=stop_at,
        )
    assert not grid and len(data.jobs) == N_JOBS
    candidates = [
        (c["metrics"]["full_valid_loss"], job_id, c) for job_id in sweep_ids for c in data.checkpoints[job_id]
    ]
    candidates.sort(key=lambda item: item[0])
    value, winner_job, best = candidates[0]
    winner_job_obj = next(j for j in data.jobs if j["id"] == winner_job)
    hyper = winner_job_obj["hyperparameters"]
    assert (hyper["learning_rate_multiplier"], hyper["n_epochs"]) == WINNER, "the designed winner must win"
    assert candidates[1][0] - value > 1e-3, "the winner must win clearly"
    assert best["step_number"] != max(c["step_number"] for c in data.checkpoints[winner_job]), "not the final one"
    return Org(
        data=data,
        sweep_ids=sweep_ids,
        winner_job=winner_job,
        winner_checkpoint=best["id"],
        winner_step=best["step_number"],
        winner_value=value,
        sweep_checkpoints=len(candidates),
    )


# ---------------------------------------------------------------------------------------------------------------
# Answers and requests


@dataclass(frozen=True)
class Answer:
    """Which job and checkpoint won, and each job's best checkpoint."""

    job_id: str
    checkpoint_id: str
    step: int
    value: float
    per_job: dict[str, str]  # job id -> its best checkpoint id

    def line(self) -> str:
        return f"{self.job_id} {self.checkpoint_id} step {self.step} full_valid_loss {self.value:g}"


@dataclass
class Run:
    seconds: float
    requests: list[RecordedRequest] = field(default_factory=list)
    peak: int = 0  # most requests in flight at the fake at once


def breakdown(requests: list[RecordedRequest]) -> str:
    """``2 list + 12 ckpt = 14`` (job list pages, checkpoint pages, anything else by kind)."""
    kinds: dict[str, int] = {}
    for r in requests:
        tail = r.path.split("/fine_tuning/jobs", 1)[-1]
        kind = (
            "list"
            if tail in ("", "/")
            else "ckpt"
            if tail.endswith("/checkpoints")
            else "events"
            if tail.endswith("/events")
            else "file"
            if "/files/" in r.path
            else "job"
        )
        kinds[kind] = kinds.get(kind, 0) + 1
    order = ["list", "ckpt", "job", "events", "file"]
    parts = " + ".join(f"{kinds[k]} {k}" for k in order if k in kinds) or "none"
    return f"{parts} = {len(requests)}" if len(kinds) > 1 else parts


class Fake:
    """The fake API behind a per-request delay; every request is recorded in `faults.requests`, and the most in
    flight at once in `faults.peak`."""

    def __init__(self, data: FakeData, latency: float) -> None:
        self.fake = FakeOpenAI(data, api_key=BENCH_KEY)
        self.faults = FaultInjector(self.fake, latency=latency)
        self.base_url = ""

    @contextmanager
    def serving(self) -> Iterator[Fake]:
        with running_server(self.faults) as base_url:
            self.base_url = base_url
            yield self

    @contextmanager
    def counting(self, run: Run) -> Iterator[None]:
        """Record in `run` the requests that arrive inside the block, and the most in flight at once."""
        self.faults.requests.clear()
        self.faults.reset_peak()
        yield
        run.requests += self.faults.requests
        run.peak = max(run.peak, self.faults.peak)
        self.faults.requests.clear()


# ---------------------------------------------------------------------------------------------------------------
# Ours, through the MCP client


def structured(result: Any, what: str) -> dict[str, Any]:
    if result.is_error or not isinstance(result.structured_content, dict):
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise BenchError(f"{what} failed: {text[:500]}")
    content: dict[str, Any] = result.structured_content
    return content


def compact(content: dict[str, Any]) -> bytes:
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def ours_answer(content: dict[str, Any]) -> Answer:
    winner = content.get("winner")
    if not isinstance(winner, dict) or not isinstance(winner.get("best_checkpoint"), dict):
        raise BenchError(f"{TOOL} returned no winner: {json.dumps(content)[:500]}")
    best = winner["best_checkpoint"]
    per_job = {
        e["job_id"]: e["best_checkpoint"]["id"]
        for e in content.get("leaderboard") or []
        if isinstance(e, dict) and isinstance(e.get("best_checkpoint"), dict)
    }
    value = winner.get("value")
    if value is None:
        value = best.get("metrics", {}).get(winner.get("metric") or "full_valid_loss", float("nan"))
    return Answer(winner["job_id"], best["id"], best["step_number"], float(value), per_job)


class Ours:
    """Our server, a fresh one per `client()`, called through the MCP client; requests counted at the fake."""

    def __init__(self, fake: Fake, settings: Settings) -> None:
        self.fake = fake
        self.settings = settings
        self.compile_seconds: list[float] = []

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        """A fresh server (empty cache) and its MCP client, ready as a session is after its first call.

        The tools are listed (as an assistant does first), and the client's validator for the tool's output schema
        is compiled: the Python MCP client compiles it once per session, on the first result of the tool, which
        is a cost of this client, not of the server, and would otherwise land in every timed call here. Its time
        is kept in `compile_seconds` and reported.
        """
        async with Client(create_server(self.settings), raise_exceptions=True) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            if TOOL not in tools:
                raise BenchError(f"the server has no {TOOL} tool yet (it has {', '.join(sorted(tools))})")
            compile_validator = getattr(client.session, "_output_schema_validator", None)  # private, may go away
            schema = tools[TOOL].output_schema
            if compile_validator is not None and schema is not None:
                start = time.perf_counter()
                compile_validator(TOOL, schema)
                self.compile_seconds.append(time.perf_counter() - start)
            yield client

    async def call(self, client: Client, tool: str, arguments: dict[str, Any], run: Run) -> dict[str, Any]:
        with self.fake.counting(run):
            start = time.perf_counter()
            result = await client.call_tool(tool, arguments)
            run.seconds = time.perf_counter() - start
        return structured(result, f"{tool}({json.dumps(arguments)})")

    async def cold(self, arguments: dict[str, Any]) -> tuple[Run, dict[str, Any]]:
        run = Run(0.0)
        async with self.client() as client:
            content = await self.call(client, TOOL, arguments, run)
        return run, content


# ---------------------------------------------------------------------------------------------------------------
# The critical path, with a raw httpx2 client


@dataclass
class CriticalRun(Run):
    answer: Answer | None = None
    job_page_bytes: int = 0
    checkpoint_page_bytes: int = 0
    checkpoints: int = 0


async def critical_path(
    fake: Fake, *, suffix: str | None = None, metadata: dict[str, str] | None = None, pipelined: bool = False
) -> CriticalRun:
    """The job list pages in sequence (limit=100), then every selected job's checkpoints in one concurrent round
    (unbounded). With `pipelined`, each page's matches are requested as soon as that page arrives, while the next
    list page is being read. Creating the HTTP client is timed too, as it is in ours' first call."""
    run = CriticalRun(0.0)
    params = {"limit": "100", **{f"metadata[{k}]": v for k, v in (metadata or {}).items()}}
    with fake.counting(run):
        start = time.perf_counter()
        async with httpx2.AsyncClient(
            base_url=fake.base_url, headers={"Authorization": f"Bearer {BENCH_KEY}"}, timeout=30.0
        ) as http:

            async def get(path: str, query: dict[str, str]) -> tuple[dict[str, Any], int]:
                response = await http.get(path, params=query)
                response.raise_for_status()
                return response.json(), len(response.content)

            async def checkpoints(job: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
                items: list[dict[str, Any]] = []
                size, query = 0, {"limit": "100"}
                while True:
                    page, n = await get(f"/fine_tuning/jobs/{job['id']}/checkpoints", query)
                    items += page["data"]
                    size += n
                    if not page["has_more"] or not page["data"]:
                        return job, items, size
                    query = {"limit": "100", "after": page["data"][-1]["id"]}

            def selected(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [
                    j
                    for j in jobs
                    if j.get("status") == "succeeded" and (suffix is None or j.get("user_provided_suffix") == suffix)
                ]

            jobs: list[dict[str, Any]] = []
            started: list[asyncio.Task[tuple[dict[str, Any], list[dict[str, Any]], int]]] = []
            query = dict(params)
            while True:
                page, n = await get("/fine_tuning/jobs", query)
                run.job_page_bytes += n
                if pipelined:
                    started += [asyncio.create_task(checkpoints(j)) for j in selected(page["data"])]
                else:
                    jobs += page["data"]
                if not page["has_more"] or not page["data"]:
                    break
                query = {**params, "after": page["data"][-1]["id"]}
            results = await asyncio.gather(*started, *(checkpoints(j) for j in selected(jobs)))
            run.seconds = time.perf_counter() - start
    best: tuple[float, str, dict[str, Any]] | None = None
    per_job: dict[str, str] = {}
    for job, items, size in results:
        run.checkpoint_page_bytes += size
        run.checkpoints += len(items)
        scored = [(c["metrics"]["full_valid_loss"], c) for c in items if "full_valid_loss" in (c.get("metrics") or {})]
        if scored:
            value, ckpt = min(scored, key=lambda item: item[0])
            per_job[job["id"]] = ckpt["id"]
            if best is None or value < best[0]:
                best = (value, job["id"], ckpt)
    if best is not None:
        value, job_id, ckpt = best
        run.answer = Answer(job_id, ckpt["id"], ckpt["step_number"], value, per_job)
    return run


# ---------------------------------------------------------------------------------------------------------------
# The official SDK, sequentially, in its own venv

SDK_WORKER = r"""
import json, sys, time
import openai

def sweep(suffix):
    client = openai.OpenAI(max_retries=0)  # key and base URL from OPENAI_API_KEY and OPENAI_BASE_URL
    per_job = {}
    checkpoints = 0
    for job in client.fine_tuning.jobs.list(limit=100):
        if job.status != "succeeded" or (job.model_extra or {}).get("user_provided_suffix") != suffix:
            continue
        best = None
        for ckpt in client.fine_tuning.jobs.checkpoints.list(job.id, limit=100):
            checkpoints += 1
            loss = ckpt.metrics.full_valid_loss
            if loss is not None and (best is None or loss < best[0]):
                best = (loss, ckpt.id, ckpt.step_number)
        if best is not None:
            per_job[job.id] = best
    client.close()
    return per_job, checkpoints

print(json.dumps({"openai": openai.__version__}), flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    per_job, checkpoints = sweep(line.strip())
    seconds = time.perf_counter() - start
    job_id = min(per_job, key=lambda j: per_job[j][0]) if per_job else None
    print(json.dumps({"seconds": seconds, "job_id": job_id, "best": per_job.get(job_id),
                      "per_job": {j: b[1] for j, b in per_job.items()}, "checkpoints": checkpoints}), flush=True)
"""


def sdk_python(given: str | None) -> str:
    """An interpreter with ``openai``: the one given, else ``bench/.venv-openai`` (created on first use)."""
    return venv_python(SDK_VENV, "openai", given, installed=imports("openai"))


class SdkLoop:
    """The SDK loop in a subprocess; one line in (the suffix), one JSON line out per run."""

    def __init__(self, python: str, base_url: str) -> None:
        env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
        env |= {"OPENAI_API_KEY": BENCH_KEY, "OPENAI_BASE_URL": base_url}
        self.proc = subprocess.Popen(
            [python, "-c", SDK_WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        self.version = self._read()["openai"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"the SDK loop exited ({self.proc.wait()}); see its traceback above")
        message: dict[str, Any] = json.loads(line)
        return message

    def run(self, suffix: str) -> tuple[Run, Answer, int]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(suffix + "\n")
        self.proc.stdin.flush()
        out = self._read()
        if out["job_id"] is None:
            raise BenchError("the SDK loop found no checkpoint with full_valid_loss")
        value, ckpt_id, step = out["best"]
        return Run(out["seconds"]), Answer(out["job_id"], ckpt_id, step, value, out["per_job"]), out["checkpoints"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Series:
    label: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(r.seconds for r in self.runs)

    def row(self) -> str:
        ms = [1000 * r.seconds for r in self.runs]
        counts = {len(r.requests) for r in self.runs}
        requests = breakdown(self.runs[-1].requests) + ("" if len(counts) == 1 else f" (varied: {sorted(counts)})")
        peak = max(r.peak for r in self.runs)
        return f"  {self.label:<34} {self.median_ms:7.0f}   {min(ms):5.0f}-{max(ms):<5.0f}  {peak:4d}   {requests}"


def goal(name: str, value: str, target: str, met: bool) -> str:
    return f"  {name:<52} {value:>8}   goal {target:<7} {'met' if met else 'NOT met'}"


async def tool_names(settings: Settings) -> set[str]:
    async with Client(create_server(settings), raise_exceptions=True) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


@dataclass
class Figures:
    """What the rounds collected."""

    series: dict[str, Series]
    answers: dict[str, Answer] = field(default_factory=dict)
    contents: dict[str, dict[str, Any]] = field(default_factory=dict)
    criticals: dict[str, CriticalRun] = field(default_factory=dict)
    sdk_checkpoints: int = 0
    compile_seconds: list[float] = field(default_factory=list)


CRITICAL_VARIANTS: dict[str, dict[str, Any]] = {
    "critical_suffix": {"suffix": SUFFIX},
    "critical_metadata": {"metadata": SWEEP_METADATA},
    "critical_pipelined": {"suffix": SUFFIX, "pipelined": True},
}


async def rounds(runs: int, ours: Ours | None, fake: Fake, sdk: SdkLoop) -> Figures:
    """Round 0 warms up and is not kept; each round runs every variant once, in the same order."""
    labels = {
        "ours_suffix": f"{TOOL}(suffix=) ours",
        "ours_metadata": f"{TOOL}(metadata=) ours",
        "critical_suffix": "critical path, suffix",
        "critical_metadata": "critical path, metadata",
        "critical_pipelined": "  (pipelined, suffix; information)",
        "sdk": "openai SDK loop, suffix",
    }
    figures = Figures({key: Series(label) for key, label in labels.items() if ours or not key.startswith("ours")})
    for round_number in range(runs + 1):
        keep = round_number > 0
        for key, arguments in (("ours_suffix", BY_SUFFIX), ("ours_metadata", BY_METADATA)):
            if ours is None:
                continue
            run, content = await ours.cold(arguments)
            figures.answers[key], figures.contents[key] = ours_answer(content), content
            if keep:
                figures.series[key].runs.append(run)
        for key, selection in CRITICAL_VARIANTS.items():
            critical = await critical_path(fake, **selection)
            if critical.answer is None:
                raise BenchError("the critical path found no checkpoint with full_valid_loss")
            figures.answers[key], figures.criticals[key] = critical.answer, critical
            if keep:
                figures.series[key].runs.append(critical)
        counted = Run(0.0)
        with fake.counting(counted):
            run, figures.answers["sdk"], figures.sdk_checkpoints = await anyio.to_thread.run_sync(sdk.run, SUFFIX)
        run.requests, run.peak = counted.requests, counted.peak
        if keep:
            figures.series["sdk"].runs.append(run)
    return figures


def ratio_goal(figures: Figures, name: str, over: str, under: str, target: float, *, at_least: bool = False) -> str:
    if over not in figures.series or under not in figures.series:
        return f"  {name:<52} {'n/a':>8}   goal {('>= ' if at_least else '<= ') + f'{target:g}':<7} n/a"
    value = figures.series[over].median_ms / figures.series[under].median_ms
    met = value >= target if at_least else value <= target
    return goal(name, f"{value:.2f}", (">= " if at_least else "<= ") + f"{target:g}", met)


async def bench(args: argparse.Namespace, org: Org, fake: Fake, sdk: SdkLoop) -> int:
    overrides: dict[str, Any] = {} if args.concurrency is None else {"concurrency": args.concurrency}
    settings = Settings(api_key=BENCH_KEY, base_url=fake.base_url, **overrides)
    tools = await tool_names(settings)
    ours = Ours(fake, settings) if TOOL in tools else None
    figures = await rounds(args.runs, ours, fake, sdk)

    # The same call twice on one server (the second should come from the cache), then list_checkpoints per job.
    first, second = Run(0.0), Run(0.0)
    repeated: dict[str, Any] = {}
    listed: list[dict[str, Any]] = []
    if ours is not None:
        async with ours.client() as client:
            await ours.call(client, TOOL, BY_SUFFIX, first)
            repeated = await ours.call(client, TOOL, BY_SUFFIX, second)
            figures.answers["ours_repeated"] = ours_answer(repeated)
            for job_id in org.sweep_ids:
                listed.append(await ours.call(client, "list_checkpoints", {"job_id": job_id}, Run(0.0)))

    figures.compile_seconds = ours.compile_seconds if ours is not None else []
    agree = report(
        args,
        org,
        settings,
        figures,
        tools=tools,
        sdk_version=sdk.version,
        repeat=(first, second, repeated),
        listed=listed,
    )
    if ours is None:
        print(f"error: {TOOL} is not available, so ours was not measured", file=sys.stderr)
    return 0 if agree and ours is not None else 1


def agrees(figures: Figures, org: Org) -> bool:
    """Print every answer; True when all name the built winner and every per-job best matches the SDK loop's."""
    print("answers (winner job and checkpoint; per-job bests compared with the SDK loop's):")
    expected = Answer(org.winner_job, org.winner_checkpoint, org.winner_step, org.winner_value, {})
    agree = True
    for key, label in (
        ("ours_suffix", "ours, suffix"),
        ("ours_metadata", "ours, metadata"),
        ("ours_repeated", "ours, repeated"),
        ("sdk", "SDK loop"),
        ("critical_suffix", "critical path"),
        ("critical_metadata", "critical, metadata"),
        ("critical_pipelined", "critical, pipelined"),
    ):
        answer = figures.answers.get(key)
        if answer is None:
            continue
        same = (answer.job_id, answer.checkpoint_id) == (expected.job_id, expected.checkpoint_id)
        per_job_same = answer.per_job == figures.answers["sdk"].per_job
        agree &= same and per_job_same
        note = "" if same else "   <-- DIFFERS"
        if not per_job_same:
            note += f"   <-- per-job bests differ ({len(answer.per_job)} jobs)"
        print(f"  {label:<20} {answer.line()}{note}")
    print(f"  {'built to win':<20} {expected.line()}")
    if not agree:
        print("error: the answers disagree", file=sys.stderr)
    return agree


def report(
    args: argparse.Namespace,
    org: Org,
    settings: Settings,
    figures: Figures,
    *,
    tools: set[str],
    sdk_version: str,
    repeat: tuple[Run, Run, dict[str, Any]],
    listed: list[dict[str, Any]],
) -> bool:
    """Print the figures and the goals; True when the answers agree."""
    ours = TOOL in tools
    default = " (the server's default)" if args.concurrency is None else f" (default {DEFAULT_CONCURRENCY})"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"sweep comparison: {N_JOBS} jobs, {len(org.sweep_ids)} in the sweep ({org.sweep_checkpoints} checkpoints), "
        f"+{args.latency_ms:g} ms per request; n={args.runs} each, interleaved, after one warm-up round"
    )
    print(
        f"  server concurrency {settings.concurrency}{default}; mcp {version('mcp')}, openai {sdk_version} "
        f"(SDK loop); load average {load} on {os.cpu_count()} cores"
    )
    if not ours:
        print(f"  NOTE: the server has no {TOOL} tool (it has {', '.join(sorted(tools))}): ours is not measured")
    print(f"  {'':<34} {'median':>7}   {'min-max':<11}  {'peak':>4}   requests at the fake (last run)")
    for series in figures.series.values():
        print(series.row())
    first, second, repeated = repeat
    first_count = figures.contents["ours_suffix"].get("upstream_requests") if ours else None
    if ours:
        print(
            f"  {'repeated call, same server':<34} {1000 * second.seconds:7.0f}   {'':<11}  {second.peak:4d}   "
            f"{breakdown(second.requests)} (first call: {breakdown(first.requests)}); upstream_requests in the "
            f"results: {repeated.get('upstream_requests')!r} (first call: {first_count!r})"
        )
    if ours and figures.compile_seconds:
        print(
            f"  (not timed: the MCP client compiling its validator for {TOOL}'s output schema, once per session: "
            f"median {1000 * statistics.median(figures.compile_seconds):.0f} ms)"
        )
    elif ours:
        print(f"  (the MCP client's validator for {TOOL}'s output schema is compiled inside each first call)")
    agree = agrees(figures, org)

    print("goals:")
    print(ratio_goal(figures, "ours / critical path (suffix)", "ours_suffix", "critical_suffix", 1.25))
    print(ratio_goal(figures, "ours / critical path (metadata)", "ours_metadata", "critical_metadata", 1.25))
    print(ratio_goal(figures, "SDK loop / ours (suffix)", "sdk", "ours_suffix", 5, at_least=True))
    critical = figures.criticals["critical_suffix"]
    count = org.sweep_checkpoints
    raw_checkpoints, raw_all = critical.checkpoint_page_bytes, critical.checkpoint_page_bytes + critical.job_page_bytes
    ours_bytes = len(compact(figures.contents["ours_suffix"])) if ours else 0
    if ours:
        print(goal("upstream requests of the repeated call", str(len(second.requests)), "== 0", not second.requests))
        print(
            goal(
                "output / raw JSON needed (checkpoint + job pages)",
                f"{ours_bytes / raw_all:.3f}",
                "<= 0.5",
                ours_bytes <= 0.5 * raw_all,
            )
        )
        print(
            goal(
                "output / raw checkpoint pages alone (stricter)",
                f"{ours_bytes / raw_checkpoints:.3f}",
                "<= 0.5",
                ours_bytes <= 0.5 * raw_checkpoints,
            )
        )
    sdk_over_critical = figures.series["sdk"].median_ms / figures.series["critical_suffix"].median_ms
    print(
        f"  (information: SDK loop / critical path {sdk_over_critical:.2f}; SDK loop / pipelined critical path "
        f"{figures.series['sdk'].median_ms / figures.series['critical_pipelined'].median_ms:.2f})"
    )

    print(f"bytes per checkpoint, over the {count} checkpoints of the sweep (raw: the compact JSON the fake sent):")
    print(
        f"  raw checkpoint pages          {raw_checkpoints / count:6.0f} B  ({raw_checkpoints} B in "
        f"{len(org.sweep_ids)} pages); with the job list pages {raw_all / count:.0f} B ({raw_all} B)"
    )
    if ours:
        considered = sum(e.get("checkpoints") or 0 for e in figures.contents["ours_suffix"].get("leaderboard") or [])
        print(
            f"  {TOOL} structured output {ours_bytes / count:6.0f} B  ({ours_bytes} B in all; its leaderboard "
            f"counts {considered} checkpoints)"
        )
        listed_bytes = sum(len(compact(c)) for c in listed)
        listed_count = sum(len(c.get("checkpoints") or []) for c in listed)
        print(
            f"  list_checkpoints output       {listed_bytes / listed_count:6.0f} B  over the same {listed_count} "
            f"checkpoints in {len(listed)} calls: {listed_bytes / raw_checkpoints:.2f} x raw (information)"
        )
    print(f"  (the SDK loop read {figures.sdk_checkpoints} checkpoints, the critical path {critical.checkpoints})")
    return agree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="added to every request (default 50)")
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help=f"the server's concurrency setting (default: the server's, {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--sdk-python", metavar="PATH", help="an interpreter that already has openai, instead of bench/.venv-openai"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the servers' and httpx2's per-request INFO lines
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    python = sdk_python(args.sdk_python)
    org = build_org()
    with Fake(org.data, args.latency_ms / 1000).serving() as fake:
        sdk = SdkLoop(python, fake.base_url)
        try:
            status = anyio.run(bench, args, org, fake, sdk, backend="asyncio")
        except BenchError as exc:
            sys.exit(f"error: {exc}")
        finally:
            sdk.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
