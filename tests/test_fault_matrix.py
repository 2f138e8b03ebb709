"""The fault matrix: every tool that calls the API, against a hostile upstream over real HTTP, through the MCP client.

Each row is a misbehaviour of the upstream (a status and its headers, a transport fault, a malformed or odd body),
aimed at a tool's first request or at one in the middle of a multi-page or multi-job call. A recoverable row must
give the same answer as a clean run, after exactly the attempts the retry policy allows; any other must end in a
tool error with its code and a sentence that says what to do, never in a partial answer presented as complete. After
either, the same session answers the next call, and the API key appears in no result, error or log line.

The write tools (cancel, pause, resume: one POST each) get the core rows at their POST, each cell with a job of its
own in a status the write accepts. openai-python retries a POST as it retries a GET, so a write whose answer was lost
is sent again: a recoverable row must end in the clean answer, plus the sentence that says the retry was refused
because the first attempt had gone through when it had; a failure must say that the write may have taken effect.

The hostile upstream (tests/hostile.py) is one raw socket server for the module, in front of the fake API. The
retry policy's waits are recorded and returned at once (the client's `sleep`), so the rows run fast; the logic that
decides them is the real one.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.lowlevel
import pytest
from mcp import Client

from openai_checkpoints_mcp.api.client import OpenAIClient
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.errors import ErrorCode
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI
from openai_checkpoints_mcp.server import create_server, tool_table

from .helpers import RESULT_FILE, checkpoint, fake_id, job, result_file
from .hostile import Case, HostileServer, Misbehaviour, dead_port

pytestmark = pytest.mark.anyio

KEY = "sk-matrix-Kq83hZ0vXw5uLr2mNd7eTb"
"""A key distinctive enough that any trace of it in a result, an error or a log line is a leak."""
ADMIN_KEY = "sk-admin-matrix-Zp41cY7wQe9Ha2Ls6Tn0"
"""The admin key, which only list_checkpoint_permissions sends; as distinctive."""

CODES = tuple(code.value for code in ErrorCode)

# --- the organisation: 3 jobs that matter among 147 that do not (two pages of jobs), 5 checkpoints each -------------

JOB_A, JOB_B, JOB_C = (fake_id("ftjob-", n) for n in (1, 2, 3))
TARGET_JOBS = (JOB_A, JOB_B, JOB_C)
NOISE_JOBS = 147
PAGE_SIZE = 2
"""Checkpoints per page: 5 checkpoints make 3 pages."""


JOB_RUNNING, JOB_PAUSED = (fake_id("ftjob-", n) for n in (4, 5))
"""The jobs the write tools change: one running (to cancel or pause), one paused (to resume)."""


def organisation() -> FakeData:
    data = FakeData()
    created = 1_760_000_000
    for n, job_id in enumerate(TARGET_JOBS):
        # A and B are the newest jobs; C the oldest, so that listing the targets needs the second page of jobs.
        at = created + 10_000 - n if n < 2 else created - 10_000
        body = job(job_id, created_at=at, suffix="target", fine_tuned_model=f"ft:gpt-4o-mini-2024-07-18:acme::T{n}")
        data.jobs.append(body)
        data.checkpoints[job_id] = [
            checkpoint(
                job_id,
                step,
                {"train_loss": 1 / step + n / 100, "full_valid_loss": 0.3 + abs(step - 300) / 1000 + n / 100},
                n=100 * n + step,
            )
            for step in (100, 200, 300, 400, 500)
        ]
    for n in range(NOISE_JOBS):
        data.jobs.append(job(fake_id("ftjob-", 1000 + n), created_at=created + n, status="cancelled", suffix="noise"))
    data.events[JOB_A] = [
        {
            "object": "fine_tuning.job.event",
            "id": fake_id("ftevent-", n),
            "created_at": created + n,
            "level": "warn" if n % 3 == 0 else "info",
            "message": f"Step {n}: training",
            "data": None,
            "type": "message",
        }
        for n in range(150)
    ]
    data.files[RESULT_FILE] = result_file((Path(__file__).parent / "data" / "step_metrics.csv").read_bytes())
    return data


def writable_organisation() -> FakeData:
    """The jobs a write changes, and job B for the next call: made afresh for every call of a write tool, since a
    cancelled job cannot be cancelled again."""
    data = FakeData()
    data.jobs += [
        job(JOB_B, suffix="target"),
        job(JOB_RUNNING, status="running", suffix="target"),
        job(JOB_PAUSED, status="paused", suffix="target"),
    ]
    return data


# --- the tools, and where their first and middle requests go ---------------------------------------------------------


def _has(*parts: str) -> Callable[[str], bool]:
    return lambda target: all(part in target for part in parts)


@dataclass(frozen=True)
class ToolCase:
    tool: str
    args: dict[str, Any]
    middle: Callable[[str], bool] | None
    """Picks a request in the middle of the call (a later page, another job's, the result file); None: the tool
    makes one request."""
    middle_is_page: bool = True
    rows: frozenset[str] | None = None
    """The core rows this tool gets, when fewer than all (a plot takes a second to draw)."""
    writes: bool = False
    """The tool changes the job (served with allow_writes): every call gets its own `writable_organisation`."""


TOOLS: dict[str, ToolCase] = {
    case.tool: case
    for case in (
        ToolCase("list_jobs", {"suffix": "target"}, _has("/fine_tuning/jobs?", "after=")),
        ToolCase("get_job", {"job_id": JOB_A}, None),
        ToolCase("list_checkpoints", {"job_id": JOB_A}, _has("/checkpoints?", "after=")),
        ToolCase("best_checkpoint", {"job_id": JOB_A}, _has("/checkpoints?", "after=")),
        ToolCase("compare_jobs", {"job_ids": list(TARGET_JOBS)}, _has(JOB_B, "/checkpoints?", "after=")),
        ToolCase("training_metrics", {"job_id": JOB_A}, _has("/files/"), middle_is_page=False),
        ToolCase(
            "plot_training_curve",
            {"job_id": JOB_A},
            _has("/files/"),
            middle_is_page=False,
            rows=frozenset({"429-retry-after-ms", "5xx-burst-beyond-budget", "html-page", "every-field-null"}),
        ),
        ToolCase("list_events", {"job_id": JOB_A, "level": "warn"}, _has("/events?", "after=")),
        ToolCase("list_fine_tuned_models", {}, _has("/fine_tuning/jobs?", "after=")),
        ToolCase(
            "list_checkpoint_permissions",
            {"fine_tuned_model_checkpoint": "ft:gpt-4o-mini-2024-07-18:acme::T0"},
            None,
        ),
        ToolCase("cancel_job", {"job_id": JOB_RUNNING}, None, writes=True),
        ToolCase("pause_job", {"job_id": JOB_RUNNING}, None, writes=True),
        ToolCase("resume_job", {"job_id": JOB_PAUSED}, None, writes=True),
    )
}


def test_the_matrix_covers_every_tool_that_calls_the_api() -> None:
    """A tool added to the table must get its row here."""
    assert set(TOOLS) == {spec.name for spec in tool_table()}
    assert {name for name, case in TOOLS.items() if case.writes} == {
        spec.name for spec in tool_table() if not spec.read_only
    }


# --- the rows --------------------------------------------------------------------------------------------------------


def status(code: int, times: int = 1, headers: dict[str, str] | None = None, body: bytes = b"") -> list[Misbehaviour]:
    if not body:
        body = json.dumps({"error": {"message": f"upstream said {code}", "type": "server_error"}}).encode()
    return [Misbehaviour("respond", status=code, headers=dict(headers or {}), body=body) for _ in range(times)]


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def _walk(value: Any, change: Callable[[str, Any], Any], name: str = "") -> Any:
    """`value` with every field of every object changed by ``change(name, value)``, except the ids and the list
    envelope, which steer the client (and have their own rows)."""
    if isinstance(value, dict):
        return {
            key: item if key in {"id", "object", "data", "has_more", "fine_tuning_job_id"} else change(key, item)
            for key, item in ((k, _walk(v, change, k)) for k, v in value.items())
        }
    if isinstance(value, list):
        return [_walk(item, change, name) for item in value]
    return value


def _wrong_type(name: str, value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return "yes"
    if isinstance(value, int | float):
        return str(value) + "x"
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return {"not": "a list"}
    return [value]


def _huge(name: str, value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return 10**30
    if isinstance(value, float):
        return 1e308
    if isinstance(value, str):
        return value * 200
    return value


def _negative_time(name: str, value: Any) -> Any:
    if name.endswith("_at") or name in {"created", "estimated_finish"}:
        return -86_400
    if isinstance(value, int | float) and not isinstance(value, bool):
        return -abs(value) - 1
    return value


def _dupe_last(page: Any) -> Any:
    if isinstance(page, dict) and isinstance(page.get("data"), list) and page["data"]:
        page["data"].append(page["data"][-1])
    return page


def _empty_but_more(page: Any) -> Any:
    return {**page, "data": [], "has_more": True}


def _another_job(body: Any) -> Any:
    """A job object answered as another job of the organisation (any other object unchanged)."""
    if isinstance(body, dict) and body.get("object") == "fine_tuning.job":
        body["id"] = JOB_C if body["id"] != JOB_C else JOB_A
    return body


def _deep(depth: int = 100_000) -> bytes:
    return b'{"data":' + b"[" * depth + b"]" * depth + b"}"


@dataclass(frozen=True)
class Row:
    """One misbehaviour and what must come of it.

    `code` None: the call must succeed with the clean answer after `attempts` requests for the aimed-at target.
    Otherwise the call must fail with `code` (after `attempts` requests when given) and a sentence containing
    each of `says`. `code` "any": either, but never a crash (an error without a code) nor a hang.
    """

    name: str
    script: Callable[[], list[Misbehaviour]]
    code: str | None
    attempts: int | None = None
    says: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    pages_only: bool = False
    """Only where the aimed-at request is a list page (a malformed page, not a malformed file)."""
    xfail: str | None = None
    sleeps: Callable[[list[float]], bool] | None = None
    only: frozenset[tuple[str, str]] | None = None
    """The (tool, position) cells this row runs in, when not the usual ones."""
    lost_answer: bool = False
    """The upstream did the request and only its answer was lost: a write has landed, so its retry is refused."""
    slow: bool = False
    """Waits in real time (a timeout, the deadline, the pause after a server-directed wait that the next call
    honours): run only where the full table runs for one tool, not for every tool."""


ROWS = [
    # 429 and each form of its wait
    Row(
        "429-retry-after-ms",
        lambda: status(429, headers={"retry-after-ms": "20"}),
        None,
        2,
        sleeps=lambda s: s == [0.02],
    ),
    Row(
        "429-retry-after-seconds",
        lambda: status(429, headers={"retry-after": "1"}),
        None,
        2,
        sleeps=lambda s: s == [1.0],
        only=frozenset({("list_checkpoints", "middle")}),
    ),
    Row(
        "429-retry-after-http-date",
        lambda: status(429, headers={"retry-after": http_date(2)}),
        None,
        2,
        sleeps=lambda s: len(s) == 1 and 0 < s[0] <= 3,
        only=frozenset({("list_checkpoints", "first")}),
    ),
    Row("429-retry-after-over-120s", lambda: status(429, headers={"retry-after": "600"}), "rate_limited", 1, ("600",)),
    Row("429-retry-after-ms-over-120s", lambda: status(429, headers={"retry-after-ms": "500000"}), "rate_limited", 1),
    Row("429-retry-after-negative", lambda: status(429, headers={"retry-after": "-5"}), None, 2, slow=True),
    Row("429-retry-after-garbage", lambda: status(429, headers={"retry-after": "soon, promise"}), None, 2),
    Row("429-no-retry-after", lambda: status(429), None, 2),
    Row("429-persistent", lambda: status(429, 3, {"retry-after-ms": "5"}), "rate_limited", 3),
    # x-should-retry overrides the status
    Row("x-should-retry-true-on-400", lambda: status(400, headers={"x-should-retry": "true"}), None, 2),
    Row(
        "x-should-retry-false-on-500",
        lambda: status(500, headers={"x-should-retry": "false"}),
        "upstream_unavailable",
        1,
    ),
    # 5xx bursts within and beyond the budget (2 retries), 408, 409
    Row("5xx-burst-within-budget", lambda: status(500) + status(503), None, 3),
    Row("5xx-burst-beyond-budget", lambda: status(500) + status(502) + status(503), "upstream_unavailable", 3),
    Row("408", lambda: status(408), None, 2),
    Row("409", lambda: status(409), None, 2),
    Row(
        "401-key-echoed",
        lambda: status(401, body=b'{"error":{"message":"bad key ' + KEY.encode() + b'"}}'),
        "auth_failed",
        1,
    ),
    Row(
        "500-key-echoed-beyond-budget",
        lambda: status(500, 3, body=b'{"error":{"message":"key ' + KEY.encode() + b' broke us"}}'),
        "upstream_unavailable",
        3,
    ),
    # the transport
    Row("reset-mid-body-once", lambda: [Misbehaviour("reset_mid_body")], None, 2, lost_answer=True),
    Row(
        "reset-mid-body-always",
        lambda: [Misbehaviour("reset_mid_body") for _ in range(3)],
        "upstream_unavailable",
        3,
        ("Check the network",),
    ),
    Row("closed-before-answer-once", lambda: [Misbehaviour("close")], None, 2),
    Row("never-answers-once", lambda: [Misbehaviour("silent")], None, 2, settings={"timeout": 0.2}, slow=True),
    Row(
        "never-answers",
        lambda: [Misbehaviour("silent") for _ in range(3)],
        "timeout",
        3,
        ("--timeout",),
        settings={"timeout": 0.2},
        slow=True,
    ),
    Row(
        "trickles-past-the-deadline",
        lambda: [Misbehaviour("trickle", interval=0.05)],
        "timeout",
        1,
        ("deadline",),
        settings={"timeout": 0.5, "deadline": 1.0},
        slow=True,
        lost_answer=True,
        only=frozenset({("list_checkpoints", "first"), ("list_checkpoints", "middle")})
        | {(tool, "first") for tool in ("cancel_job", "pause_job", "resume_job")},
    ),
    # bodies
    Row(
        "html-page",
        lambda: status(200, headers={"content-type": "text/html"}, body=b"<html>proxy</html>"),
        "bad_response",
        1,
        ("HTML",),
    ),
    Row("truncated-json", lambda: status(200, body=b'{"object": "list", "data": [{"id": "ftjob-'), "bad_response", 1),
    Row("deep-json", lambda: status(200, body=_deep()), "bad_response", 1),
    Row("non-utf8-json", lambda: status(200, body=b'{"object": "\xff\xfe\xfa"}'), "bad_response", 1),
    Row("json-array-not-object", lambda: status(200, body=b"[1, 2, 3]"), "bad_response", 1),
    Row("json-string-not-object", lambda: status(200, body=b'"hello"'), "bad_response", 1),
    Row(
        "redirect-not-followed",
        lambda: status(302, headers={"location": "http://127.0.0.1:9/v1/x"}),
        "bad_response",
        1,
        ("OPENAI_BASE_URL",),
    ),
    Row(
        "content-length-2gb",
        lambda: [Misbehaviour("declare_huge")],
        "bad_response",
        1,
        settings={"timeout": 0.2},
    ),
    # odd values in every field (ids kept: they have rows of their own)
    Row("every-field-null", lambda: [Misbehaviour("mutate", transform=lambda b: _walk(b, lambda n, v: None))], "any"),
    Row("every-field-wrong-type", lambda: [Misbehaviour("mutate", transform=lambda b: _walk(b, _wrong_type))], "any"),
    Row("huge-numbers", lambda: [Misbehaviour("mutate", transform=lambda b: _walk(b, _huge))], "any"),
    Row("negative-timestamps", lambda: [Misbehaviour("mutate", transform=lambda b: _walk(b, _negative_time))], "any"),
    # broken pagination
    Row(
        "page-ignores-the-cursor",
        lambda: [Misbehaviour("ignore_cursor")],
        "bad_response",
        1,
        ("paging would never end",),
        pages_only=True,
    ),
    Row(
        "duplicate-id-in-a-page",
        lambda: [Misbehaviour("mutate", transform=_dupe_last)],
        None,
        1,
        pages_only=True,
    ),
    Row(
        "has-more-with-empty-data",
        lambda: [Misbehaviour("mutate", transform=_empty_but_more)],
        "bad_response",
        1,
        pages_only=True,
    ),
    # the API answers a job other than the one asked for
    Row(
        "another-job-answered",
        lambda: [Misbehaviour("mutate", transform=_another_job)],
        "bad_response",
        1,
        only=frozenset(
            (tool, "first")
            for tool in (
                "get_job",
                "list_checkpoints",
                "best_checkpoint",
                "training_metrics",
                "compare_jobs",
                "cancel_job",
                "pause_job",
                "resume_job",
            )
        ),
    ),
]

CORE_ROWS = frozenset(
    {
        "429-retry-after-ms",
        "5xx-burst-beyond-budget",
        "reset-mid-body-once",
        "html-page",
        "json-array-not-object",
        "every-field-null",
        "every-field-wrong-type",
        "page-ignores-the-cursor",
    }
)
"""The rows every tool and position gets; the full table runs for the tools whose calls page and fan out."""
FULL_TABLE = {("list_checkpoints", "first"), ("list_checkpoints", "middle"), ("compare_jobs", "middle")}
SLOW_TABLE = {("list_checkpoints", "first"), ("list_checkpoints", "middle")}


def _runs_in(row: Row, tool: str, position: str) -> bool:
    if row.only is not None:
        return (tool, position) in row.only
    if (tool, position) not in FULL_TABLE and row.name not in (TOOLS[tool].rows or CORE_ROWS):
        return False
    if row.pages_only and (position == "first" or not TOOLS[tool].middle_is_page):
        return False
    return not row.slow or (tool, position) in SLOW_TABLE


def _cells() -> Iterator[Any]:
    for tool, case in TOOLS.items():
        for position in ("first", "middle"):
            if position == "middle" and case.middle is None:
                continue
            for row in ROWS:
                if _runs_in(row, tool, position):
                    marks = [pytest.mark.xfail(reason=row.xfail, strict=True)] if row.xfail else []
                    yield pytest.param(tool, position, row, id=f"{tool}-{position}-{row.name}", marks=marks)


# --- running a cell ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    server = HostileServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake() -> FakeOpenAI:
    return FakeOpenAI(organisation(), api_key=KEY, admin_key=ADMIN_KEY)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry waits the client asked for: recorded, and returned at once."""
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setitem(OpenAIClient.__init__.__kwdefaults__, "sleep", record)
    return waits


def settings_for(base_url: str, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "api_key": KEY,
        "admin_key": ADMIN_KEY,
        "base_url": base_url,
        "timeout": 5.0,
        "deadline": 20.0,
        "page_size": PAGE_SIZE,
        "allow_writes": True,  # the write tools are served; the reading ones are the same either way
    }
    return Settings(**(options | overrides))


_servers: dict[str, Any] = {}


@asynccontextmanager
async def session(settings: Settings) -> AsyncIterator[Client]:
    """A client session of a server for `settings`. Servers are reused (registering the tools takes a tenth of a
    second); each session has its own state, so its own cache and HTTP client, as a fresh server has."""
    key = repr(settings)
    if key not in _servers:
        _servers[key] = create_server(settings)
    async with Client(_servers[key], mode="auto", raise_exceptions=True) as client:
        yield client


def answer_of(result: Any) -> Any:
    """What a result says, for comparing with a clean run: the structured content (without the count of requests,
    which retries raise), or the content blocks."""
    if result.structured_content is not None:
        return {k: v for k, v in result.structured_content.items() if k != "upstream_requests"}
    return [block.model_dump(mode="json") for block in result.content]


def requests_told(result: Any) -> int | None:
    return (result.structured_content or {}).get("upstream_requests")


def upstream_for(tool: str, fake: FakeOpenAI) -> FakeOpenAI:
    """The module's fake for a reading tool; a fresh one for a write tool, whose call changes the job."""
    return FakeOpenAI(writable_organisation(), api_key=KEY, admin_key=ADMIN_KEY) if TOOLS[tool].writes else fake


def job_in(fake: FakeOpenAI, job_id: str) -> dict[str, Any]:
    return next(body for body in fake.data.jobs if body["id"] == job_id)


_clean: dict[str, Any] = {}


async def clean_run(hostile: HostileServer, fake: FakeOpenAI, tool: str) -> Any:
    """The tool's result without any fault (once per module)."""
    if tool not in _clean:
        with hostile.case(Case(upstream_for(tool, fake))) as base_url:
            async with session(settings_for(base_url)) as client:
                result = await client.call_tool(tool, TOOLS[tool].args)
        assert not result.is_error, result
        _clean[tool] = result
    return _clean[tool]


def assert_actionable_error(text: str, code: str, says: tuple[str, ...]) -> None:
    assert text.startswith(f"{code}: "), text
    assert len(text) > len(code) + 40, f"not a sentence that says what to do: {text}"
    for phrase in says:
        assert phrase in text, text


def _secret_runs(key: str) -> set[str]:
    """Every 8-character run of `key` that is not wholly its public prefix (``sk-``, ``sk-admin-``)."""
    prefix = re.match(r"sk-(?:[A-Za-z]{2,12}-)?", key)
    exempt = prefix.end() if prefix else 0
    return {key[i : i + 8] for i in range(len(key) - 7) if i + 8 > exempt}


SECRET_RUNS = _secret_runs(KEY) | _secret_runs(ADMIN_KEY)

WRITE_MAY_HAVE_LANDED = {
    "upstream_unavailable": "request may have reached the API before the failure: check the job with get_job",
    "timeout": "request may have reached the API before the failure: check the job with get_job",
    "bad_response": "request was answered as a success, so it may have taken effect: check the job with get_job",
}
"""What a write's error says when the write may have taken effect (the answer was lost, or was not the job)."""
WRITE_RETRY_REFUSED = "retried after its first attempt failed or its answer was lost; the retry was refused because"
"""What a write's answer adds when the retry of a write that had landed was refused."""


def assert_no_key(*texts: str) -> None:
    """No 8 characters of either key in a row, also once whitespace is dropped and percent-escapes decoded (the
    cheap views of test_masking's oracle, which tries every encoding)."""
    for text in texts:
        bare = "".join(text.split())
        for view in {bare, "".join(unquote(bare).split())}:
            found = [run for run in SECRET_RUNS if run in view]
            assert not found, f"{found} in {text[:300]!r}"


@pytest.mark.parametrize(("tool", "position", "row"), list(_cells()))
async def test_fault_matrix(
    hostile: HostileServer,
    fake: FakeOpenAI,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
    tool: str,
    position: str,
    row: Row,
) -> None:
    caplog.set_level(logging.DEBUG)
    clean = await clean_run(hostile, fake, tool) if row.code is None else None
    tool_case = TOOLS[tool]
    upstream = upstream_for(tool, fake)
    case = Case(upstream, script=row.script(), aims_at=tool_case.middle if position == "middle" else None)
    with hostile.case(case, name="live") as base_url:
        settings = settings_for(base_url, **row.settings)
        async with session(settings) as client:
            started = time.monotonic()
            result = await client.call_tool(tool, tool_case.args)
            elapsed = time.monotonic() - started
            texts = [result.model_dump_json()]
            assert case.target is not None, "the misbehaviour was never used: the row aims at nothing"
            sent = f"Bearer {ADMIN_KEY if tool == 'list_checkpoint_permissions' else KEY}"
            assert case.requests[0].headers["authorization"] == sent  # the key was there to leak
            if row.code is None and tool_case.writes:
                # The clean answer; when the first attempt had landed, its retry was refused, and the answer says
                # so (after one GET of the job that tells why it was refused). The job is as the answer says.
                assert not result.is_error, result.content[0].text
                answer, clean_answer = answer_of(result), answer_of(clean)
                message, clean_message = answer.pop("message"), clean_answer.pop("message")
                assert answer == clean_answer
                assert message.startswith(clean_message)
                assert (WRITE_RETRY_REFUSED in message) == row.lost_answer, message
                assert job_in(upstream, tool_case.args["job_id"])["status"] == answer["status"]
                if row.lost_answer:  # the retry's refusal was explained by the job's status, read once
                    assert [seen.method for seen in case.requests] == ["POST"] * (row.attempts or 0) + ["GET"]
            elif row.code is None:
                assert not result.is_error, result.content[0].text
                assert answer_of(result) == answer_of(clean)
                if requests_told(clean) is not None and row.attempts is not None:
                    assert requests_told(result) == requests_told(clean) + row.attempts - 1
            elif row.code == "any":
                if result.is_error:
                    text = result.content[0].text
                    assert text.split(":")[0] in CODES, text
                    if tool_case.writes and text.split(":")[0] in WRITE_MAY_HAVE_LANDED:
                        assert WRITE_MAY_HAVE_LANDED[text.split(":")[0]] in text, text
            elif tool == "compare_jobs" and not result.is_error:
                # One job of three could not be read: the others are compared, and the answer says which failed
                # and why (the row's error), never a leaderboard that passes for complete.
                answer = result.structured_content
                assert answer["jobs_compared"] == len(TARGET_JOBS) - 1
                [failed] = answer["failed"]
                assert failed["job_id"] in TARGET_JOBS
                assert_actionable_error(failed["error"], row.code, row.says)
                assert failed["job_id"] not in {entry["job_id"] for entry in answer["leaderboard"]}
            else:
                assert result.is_error, f"expected {row.code}, got an answer: {answer_of(result)}"
                assert result.structured_content is None
                assert_actionable_error(result.content[0].text, row.code, row.says)
                if tool_case.writes and row.code in WRITE_MAY_HAVE_LANDED:
                    assert WRITE_MAY_HAVE_LANDED[row.code] in result.content[0].text, result.content[0].text
            if row.attempts is not None:
                assert case.attempts() == row.attempts
            if row.sleeps is not None:
                assert row.sleeps(sleeps), sleeps
            assert elapsed < settings.deadline + 1
            # The same session answers the next call.
            case.script.clear()
            after = await client.call_tool("get_job", {"job_id": JOB_B})
            assert not after.is_error, after.content[0].text
            texts.append(after.model_dump_json())
    assert_no_key(*texts, caplog.text, *(str(r.args) for r in caplog.records))


async def test_connection_refused_is_an_actionable_error(sleeps: list[float], caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listening: every tool fails with upstream_unavailable after its retries, naming what to check."""
    caplog.set_level(logging.DEBUG)
    settings = settings_for(f"http://127.0.0.1:{dead_port()}/v1")
    async with session(settings) as client:
        for tool, tool_case in TOOLS.items():
            result = await client.call_tool(tool, tool_case.args)
            assert result.is_error
            text = result.content[0].text
            assert text.startswith("upstream_unavailable: "), text
            assert "3 attempts" in text and "OPENAI_BASE_URL" in text
            assert_no_key(text)
    assert sleeps and max(sleeps) <= 1.0  # backoff: 0.5 s, then 1 s, less jitter
    assert_no_key(caplog.text)


def test_rows_are_named_once() -> None:
    names = [row.name for row in ROWS]
    assert len(names) == len(set(names))
    assert set(names) >= CORE_ROWS


# --- ids from the API never steer a request -------------------------------------------------------------------------

EVIL_JOB_ID = "ftjob-x/../../../../admin/delete?all=1#"
EVIL_FILE_ID = "../../fine_tuning/jobs/ftjob-victim/cancel"
ALLOWED_TARGET = re.compile(
    r"/v1/(fine_tuning/jobs(/ftjob-[A-Za-z0-9]+(/(checkpoints|events))?)?|files/file-[A-Za-z0-9]+/content|models)"
    r"(\?[^#]*)?"
)
"""Every request a reading tool may make: the job listing, a job, its checkpoints or events, a file's content, the
models."""


def _job_renamed(old: str, new: str) -> Callable[[Any], Any]:
    def rename(page: Any) -> Any:
        for item in page.get("data", []):
            if item.get("id") == old:
                item["id"] = new
        return page

    return rename


def _result_file_renamed(body: Any) -> Any:
    body["result_files"] = [EVIL_FILE_ID]
    return body


STEERING = [
    pytest.param(
        "training_metrics", {"job_id": JOB_A}, _has(f"/fine_tuning/jobs/{JOB_A}"), _result_file_renamed, id="file-id"
    ),
    pytest.param(
        "compare_jobs",
        {"suffix": "target"},
        _has("/fine_tuning/jobs?"),
        _job_renamed(JOB_A, EVIL_JOB_ID),
        id="listed-job-id-compare",
    ),
    pytest.param(
        "list_fine_tuned_models",
        {},
        _has("/fine_tuning/jobs?"),
        _job_renamed(JOB_A, EVIL_JOB_ID),
        id="listed-job-id-models",
    ),
]


@pytest.mark.parametrize(("tool", "args", "aims_at", "transform"), STEERING)
async def test_ids_from_the_api_never_steer_a_request(
    hostile: HostileServer,
    fake: FakeOpenAI,
    sleeps: list[float],
    tool: str,
    args: dict[str, Any],
    aims_at: Callable[[str], bool],
    transform: Callable[[Any], Any],
) -> None:
    """An id the API hands out goes into a URL path only if it is an id: one with path characters is refused as
    bad_response (for compare_jobs, that job under `failed`), and no request leaves the paths the tools read."""
    case = Case(fake, script=[Misbehaviour("mutate", transform=transform)], aims_at=aims_at)
    with hostile.case(case, name="live") as base_url:
        async with session(settings_for(base_url)) as client:
            result = await client.call_tool(tool, args)
    stray = [seen.target for seen in case.requests if not ALLOWED_TARGET.fullmatch(seen.target)]
    assert stray == []
    assert case.target is not None
    if result.is_error:
        assert result.content[0].text.startswith("bad_response: ")
    elif tool == "compare_jobs":
        assert [entry["error"][:14] for entry in result.structured_content["failed"]] == ["bad_response: "]
    else:
        assert EVIL_JOB_ID not in result.model_dump_json()
