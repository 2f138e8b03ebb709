"""Shared test helpers: builders of raw API objects, the fake API served over real HTTP on 127.0.0.1 (one uvicorn
server per test process, each test's app mounted under its own prefix), MCP clients of our server, and the data
and constants that several test modules use."""

from __future__ import annotations

import inspect
import itertools
import os
import shutil
import string
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from starlette.types import ASGIApp, Receive, Scope, Send

from openai_checkpoints_mcp.analysis.result_file import ResultTable
from openai_checkpoints_mcp.api.cache import MemoryBackend
from openai_checkpoints_mcp.api.store import JobStore
from openai_checkpoints_mcp.config import CACHE_DIR_ENV, Settings
from openai_checkpoints_mcp.fake import (
    DEMO_JOB_IDS,
    FakeData,
    FakeFile,
    FakeOpenAI,
    FaultInjector,
    running_server,
)
from openai_checkpoints_mcp.server import create_server, tool_table
from openai_checkpoints_mcp.transport.http import (
    HttpOptions,
    create_app,
)

TEST_KEY = "sk-test-Qv7Zr2Lw9Xk4Hp8NjT3b"  # random, so that no 8 of its characters occur in the test data

# --- builders of raw API objects (as the API sends them) ------------------------------------------------------------

ORG = "org-4fT9sLq2Vw8XyZ1aBcDeFgHi"
BASE = "gpt-4o-mini-2024-07-18"
_ALPHABET = string.ascii_letters + string.digits


def fake_id(prefix: str, n: int, width: int = 24) -> str:
    """A deterministic id such as ftckpt_ + 24 alphanumerics, distinct for each n."""
    chars = []
    value = n * 7919 + 12345
    for _ in range(width):
        value, rest = divmod(value * 31 + 17, len(_ALPHABET))
        chars.append(_ALPHABET[rest])
    return prefix + "".join(chars)


def job(
    job_id: str,
    *,
    status: str = "succeeded",
    created_at: int = 1754035200,
    validation: bool = True,
    method: str = "supervised",
    suffix: str | None = "support-bot",
    error: Any = None,
    metadata: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    succeeded = status == "succeeded"
    hyper = {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 1.8}
    body: dict[str, Any] = {
        "object": "fine_tuning.job",
        "id": job_id,
        "model": BASE,
        "created_at": created_at,
        "finished_at": created_at + 3800 if status in {"succeeded", "failed", "cancelled"} else None,
        "fine_tuned_model": f"ft:{BASE}:acme-labs:{suffix or ''}:Bx72KpQd" if succeeded else None,
        "organization_id": ORG,
        "result_files": ["file-7HnR3vTq9WxY2zLk5MpJcA"] if succeeded else [],
        "status": status,
        "validation_file": "file-Vd92LmQx7RtY3pKs8NwZaE" if validation else None,
        "training_file": "file-Tr41JkHs6GfD2qWe9XcVbN",
        "hyperparameters": hyper if method == "supervised" else None,
        "trained_tokens": 1284530 if succeeded else None,
        "integrations": [],
        "seed": 1928374650,
        "estimated_finish": None,
        "method": {"type": method, method: {"hyperparameters": hyper}},
        "metadata": metadata,
        "error": error,
        "user_provided_suffix": suffix,
    }
    body.update(extra)
    return body


def checkpoint(job_id: str, step: int, metrics: dict[str, Any], *, n: int | None = None) -> dict[str, Any]:
    short = fake_id("", step if n is None else n, 8)
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": fake_id("ftckpt_", step if n is None else n),
        "created_at": 1754036000 + step,
        "fine_tuned_model_checkpoint": f"ft:{BASE}:acme-labs:support-bot:{short}:ckpt-step-{step}",
        "fine_tuning_job_id": job_id,
        "step_number": step,
        "metrics": {"step": float(step), **metrics},
    }


# --- the fake API over real HTTP: one server per test process --------------------------------------------------------


class _Mounts:
    """An ASGI app that hands each request to the app mounted under the first segment of its path (``/m7/v1/...``
    goes to mount 7 as ``/v1/...``), so one uvicorn server serves every test's fake, several at once if need be."""

    def __init__(self) -> None:
        self.apps: dict[str, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        prefix, _, rest = path[1:].partition("/")
        app = self.apps.get(prefix)
        if app is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        raw = scope.get("raw_path") or path.encode()
        inner = {**scope, "path": "/" + rest, "raw_path": raw[len(prefix) + 1 :]}
        await app(inner, receive, send)


_server_lock = threading.Lock()
_server_stack = ExitStack()
_server: tuple[_Mounts, str] | None = None
_mount_ids = itertools.count(1)


def _shared_server() -> tuple[_Mounts, str]:
    global _server
    with _server_lock:
        if _server is None:
            mounts = _Mounts()
            root = _server_stack.enter_context(running_server(mounts, base_path=""))
            _server = (mounts, root)
        return _server


def stop_shared_server() -> None:
    """Stop the shared server (the session fixture in conftest calls this once at the end)."""
    global _server
    with _server_lock:
        _server_stack.close()
        _server = None


@contextmanager
def serve_app(app: ASGIApp, *, base_path: str = "/v1") -> Iterator[str]:
    """Serve `app` over real HTTP on 127.0.0.1 for the duration of the context and yield its base URL (ending in
    `base_path`), as ``running_server`` does, but on the process's one shared uvicorn server: no start or shutdown
    per test. The app sees the paths it would see on a server of its own."""
    mounts, root = _shared_server()
    name = f"m{next(_mount_ids)}"
    mounts.apps[name] = app
    try:
        yield f"{root}/{name}{base_path.rstrip('/')}"
    finally:
        del mounts.apps[name]


@dataclass
class Harness:
    """A fake API behind a fault injector, served on 127.0.0.1, and a way to reach it through MCP."""

    fake: FakeOpenAI
    faults: FaultInjector
    base_url: str
    settings: Settings

    @asynccontextmanager
    async def client(self, mode: str = "auto", **overrides: Any) -> AsyncIterator[Client]:
        """An MCP client (in memory) of a server configured for this fake; `overrides` change settings."""
        server = create_server(replace(self.settings, **overrides))
        async with Client(server, mode=mode, raise_exceptions=mode != "legacy") as client:
            yield client

    def upstream_requests(self, path_part: str = "/fine_tuning") -> list[Any]:
        """Requests that reached the injector (faulted ones included) whose path contains `path_part`."""
        return [r for r in self.faults.requests if path_part in r.path]


def console_script() -> str:
    """The installed `openai-checkpoints-mcp`, next to this interpreter (or on PATH)."""

    beside = Path(sys.executable).with_name("openai-checkpoints-mcp")
    found = str(beside) if beside.exists() else shutil.which("openai-checkpoints-mcp")
    if found is None:
        pytest.fail("the console script openai-checkpoints-mcp is not installed; pip install the project first")
    return found


# --- data and constants shared by several test modules ----------------------------------------------------------------

README_JOB = "ftjob-Claims000000000000000000001"


def one_job(**fields: Any) -> FakeData:
    """One job (`fields` override the factory's) with three checkpoints."""
    body = job(README_JOB, **fields)
    cps = [
        checkpoint(
            README_JOB,
            step,
            {"train_loss": 1 / step, "full_valid_loss": 0.3 + abs(step - 200) / 1000},
        )
        for step in (100, 200, 300)
    ]
    return FakeData(jobs=[body], checkpoints={README_JOB: cps})


RESULT_FILE = "file-7HnR3vTq9WxY2zLk5MpJcA"  # the result file id tests.factories.job gives succeeded jobs


CURVE_JOB = "ftjob-Curve0000000000000000000001"


def result_file(content: bytes) -> FakeFile:
    meta = {
        "object": "file",
        "id": RESULT_FILE,
        "purpose": "fine-tune-results",
        "filename": "step_metrics.csv",
        "bytes": len(content),
        "created_at": 1754040000,
        "status": "processed",
    }
    return FakeFile(meta=meta, content=content)


def curve_data(content: bytes | None, *, status: str = "succeeded") -> FakeData:
    body = job(CURVE_JOB, status=status)
    cps = [checkpoint(CURVE_JOB, step, {"train_loss": 0.3, "full_valid_loss": 0.6}) for step in (100, 200, 300)]
    data = FakeData(jobs=[body], checkpoints={CURVE_JOB: cps})
    if content is not None:
        data.files[RESULT_FILE] = result_file(content)
    return data


async def call_once(api: Any, tool: str, args: dict[str, Any], **overrides: Any) -> Any:
    async with api.client(**overrides) as client:
        return await client.call_tool(tool, args)


SFT_JOB = "ftjob-Qm7vR2kTz9LpXa4NcW8bHd3E"


def sft_data(job_id: str = SFT_JOB) -> FakeData:
    metrics = {
        120: (0.5274, 0.8533, 0.5102, 0.8572),
        240: (0.3046, 0.9105, 0.3705, 0.8874),
        360: (0.2113, 0.9412, 0.3812, 0.8890),
    }
    checkpoints = [
        checkpoint(
            job_id,
            step,
            {
                "train_loss": tl,
                "train_mean_token_accuracy": ta,
                "full_valid_loss": fl,
                "full_valid_mean_token_accuracy": fa,
            },
        )
        for step, (tl, ta, fl, fa) in metrics.items()
    ]
    return FakeData(jobs=[job(job_id)], checkpoints={job_id: checkpoints})


def error_text(result) -> str:
    assert result.is_error is True, result
    assert result.structured_content is None
    return result.content[0].text


BAD_JOB_IDS = [
    "ftjob-../../v1/files",
    "ftjob-abc/def",
    "ftjob-abc.def",
    "ftjob-abc%2F",
    "ftjob-abc def",
    "ftjob-",
    "ftjob-" + "a" * 95,
    "job-abc",
    "FTJOB-abc",
    "",
    "ftjob-abc?x=1",
    "ftjob-abc#",
    "ftjob-ä",
]


TOKEN = "mcp-test-token-4f1e9c0b7a2d"


DEMO_JOB = DEMO_JOB_IDS["support_bot"]


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}


MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
}


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve `app` with uvicorn (lifespan on, as in production) on a free 127.0.0.1 port in a background thread;
    yields ``http://127.0.0.1:PORT``."""
    with running_server(app, base_path="", lifespan="on") as url:
        yield url


@contextmanager
def demo_server(**options: Any) -> Iterator[str]:
    """Our server in demo mode over HTTP, with `TOKEN` unless `auth_token` says otherwise."""
    options.setdefault("auth_token", TOKEN)
    with serving(create_app(Settings.from_env({}, demo=True), HttpOptions(**options))) as root:
        yield root


@asynccontextmanager
async def mcp_client(root: str, mode: str = "auto", token: str | None = TOKEN) -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client for ``root/mcp``, sending `token` as a bearer token (if any)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    transport = streamable_http_client(f"{root}/mcp", http_client=create_mcp_http_client(headers=headers))
    async with Client(transport, mode=mode) as client:
        yield client


def clean_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        CACHE_DIR_ENV: os.environ.get(CACHE_DIR_ENV, ""),  # conftest's temporary directory, never the user's
        **extra,
    }


EDGE_JOB = "ftjob-Edge0000000000000000000001"


def error_texts(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(block, "text", "") for block in result.content)


SWEEP = {"sweep": "lr-2026-11"}


def sweep_data(
    *,
    lrs: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0),
    winner_lr: float = 1.0,
    others: int = 5,
    without_validation: int = 0,
) -> tuple[FakeData, dict[float, str]]:
    """A sweep over learning rates (3 checkpoints each; the job at `winner_lr` has the lowest full_valid_loss, at
    its middle checkpoint), plus `others` unrelated jobs interleaved. The last `without_validation` sweep jobs have
    no validation file (only train metrics)."""
    data = FakeData()
    ids: dict[float, str] = {}
    created = 1_760_000_000
    for n, lr in enumerate(lrs):
        job_id = fake_id("ftjob-", 100 + n)
        ids[lr] = job_id
        has_validation = n < len(lrs) - without_validation
        body = job(
            job_id,
            created_at=created + 10 * n,
            suffix="lr-sweep",
            metadata=dict(SWEEP),
            validation=has_validation,
        )
        body["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"] = lr
        body["hyperparameters"]["learning_rate_multiplier"] = lr
        data.jobs.append(body)
        base = 0.30 + abs(lr - winner_lr) * 0.05
        cps = []
        for k, step in enumerate((100, 200, 300)):
            metrics: dict[str, Any] = {"train_loss": 0.5 - 0.1 * k - lr * 0.01}
            if has_validation:
                metrics["full_valid_loss"] = base + (0.02 if k != 1 else 0.0)
                metrics["valid_loss"] = base + 0.01
            cps.append(checkpoint(job_id, step, metrics, n=1000 + 10 * n + k))
        data.checkpoints[job_id] = cps
    for n in range(others):
        other = fake_id("ftjob-", 500 + n)
        data.jobs.append(job(other, created_at=created + 10 * n + 5, suffix="other"))
        data.checkpoints[other] = [checkpoint(other, 50, {"full_valid_loss": 0.01}, n=5000 + n)]
    return data, ids


class Clock:
    """A monotonic clock the test sets by hand (``clock.now += 50``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def open_store(base_url: str, clock: Clock, **settings: Any) -> AsyncIterator[JobStore]:
    """A `JobStore` with an in-memory cache of 100 entries, reading the fake at `base_url`, on `clock`."""
    store = JobStore.open(
        Settings(api_key=TEST_KEY, base_url=base_url, timeout=5.0, deadline=30.0, **settings),
        MemoryBackend(100),
        clock=clock,
    )
    try:
        yield store
    finally:
        await store.aclose()


READ_TOOLS = frozenset(spec.name for spec in tool_table() if spec.read_only)
"""The tools every server serves, from the registration table."""
WRITE_TOOLS = frozenset(spec.name for spec in tool_table() if not spec.read_only)
"""The tools whose annotations say they change a job: served only with --allow-writes."""
JOB_ID_TOOLS = tuple(spec.name for spec in tool_table() if "job_id" in inspect.signature(spec.fn).parameters)
"""The tools that take one job_id, in the table's order."""


Column = Sequence[float | None]


def table(steps: Sequence[int], **columns: Column) -> ResultTable:
    """A parsed result file with these steps and metric columns (``None``: no value at that step)."""
    return ResultTable(
        steps=tuple(steps),
        columns={name: tuple(values) for name, values in columns.items()},
        renamed={},
        encoding="csv",
        skipped_rows=0,
    )


def checkpoint_records(listed: dict[str, Any]) -> list[dict[str, Any]]:
    """list_checkpoints' columnar answer as one record per checkpoint (id, step_number, fine_tuned_model_checkpoint,
    created_at, metrics), as an assistant reads it: a row's values named by `columns`, missing trailing metrics
    absent."""
    columns = listed["columns"]
    records = []
    for row in listed["rows"]:
        values = dict(zip(columns, row, strict=False))
        fixed = {name: values.pop(name) for name in columns[:4]}
        records.append(fixed | {"metrics": {k: v for k, v in values.items() if v is not None}})
    return records
