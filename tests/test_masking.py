"""The key never leaves the server (issue 11, defect 3): a hostile upstream echoes it everywhere, split and encoded,
and no run of 8 of its characters reaches a result, an error, a progress message or a log line.

`leaks` is the oracle, written apart from `redaction`: it undoes each encoding itself (drops whitespace, decodes
percent and ``\\u`` escapes, hex and base64 runs at every offset) and looks for 8 of the key's characters in a row.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import quote, unquote

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openai_checkpoints_mcp.api.errors import request_id_from
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, FaultInjector
from openai_checkpoints_mcp.fake.faults import Fault
from openai_checkpoints_mcp.redaction import MASK, MaskingFilter, Redactor, install_log_masking
from openai_checkpoints_mcp.server import create_server

from .helpers import RESULT_FILE, checkpoint, clean_env, console_script, job, result_file, serve_app

pytestmark = pytest.mark.anyio

KEY = "sk-proj-Tq8Wm3Zx7Lv2Rk9Pb4Nc6Hj1Yd5Gf0Sa8Ue3Io7Kw2Qr"
"""A key of the realistic shape (``sk-proj-`` and random characters)."""
HOSTILE_JOB = "ftjob-Hostile00000000000000000001"
FAILED_JOB = "ftjob-Hostile00000000000000000002"
PUBLIC_PREFIX = re.compile(r"sk-(?:[A-Za-z]{2,12}-)?")


# --- the oracle -------------------------------------------------------------------------------------------------------


def _runs_of(key: str) -> set[bytes]:
    """Every 8-byte run of the key that is not wholly its public prefix (``sk-proj-`` says nothing)."""
    raw = key.encode()
    prefix = PUBLIC_PREFIX.match(key)
    exempt = prefix.end() if prefix else 0
    return {raw[i : i + 8] for i in range(len(raw) - 7) if i + 8 > exempt}


def _decodings(text: str) -> Iterator[bytes]:
    """`text` without whitespace, then percent-decoded and JSON-unescaped, then every hex and base64 run in it
    decoded from each offset."""
    bare = "".join(text.split())
    views = {bare, bare.replace("\\n", "").replace("\\r", "").replace("\\t", "")}
    unquoted = unquote(bare)
    views |= {"".join(unquoted.split())}
    unescaped = re.sub(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})", lambda m: chr(int(m[1] or m[2], 16)), bare)
    views |= {"".join(unescaped.split())}
    for view in views:
        yield view.encode("utf-8", "surrogatepass")
        for run in re.findall(r"[0-9a-fA-F]{16,}", view):
            for offset in (0, 1):
                part = run[offset:]
                yield binascii.unhexlify(part[: len(part) // 2 * 2])
        for run in re.findall(r"[A-Za-z0-9+/_-]{10,}", view):
            run = run.replace("-", "+").replace("_", "/")
            for offset in range(4):
                part = run[offset:]
                part = part[: len(part) - 1] if len(part) % 4 == 1 else part
                yield base64.b64decode(part + "=" * (-len(part) % 4))


def leaks(text: str, key: str = KEY) -> list[bytes]:
    """The runs of 8 of the key's characters that `text` reveals, in any of the encodings."""
    runs = _runs_of(key)
    found = []
    for decoded in _decodings(text):
        found += [run for run in runs if run in decoded]
    return found


def assert_no_leak(*texts: str) -> None:
    for text in texts:
        assert not leaks(text), f"the key leaks in: {text[:400]!r}"


def _echoes(key: str = KEY) -> dict[str, str]:
    """The key as a hostile upstream echoes it."""
    raw = key.encode()
    return {
        "plain": f"key {key}",
        "newline": f"{key[:17]}\n{key[17:]}",
        "spaced": " ".join(key[i : i + 5] for i in range(0, len(key), 5)),
        "percent": "".join(f"%{b:02X}" for b in raw),
        "percent-lower": "".join(f"%{b:02x}" for b in raw[:12]) + quote(key[12:], safe=""),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "base64": base64.b64encode(raw).decode(),
        "base64-shifted": base64.b64encode(b"Bearer " + raw).decode(),
        "base64url": base64.urlsafe_b64encode(b"u:" + raw).decode().rstrip("="),
        "unicode": "".join(f"\\u{b:04x}" for b in raw),
        "part": f"id {key[12:24]} only",
    }


def test_the_oracle_sees_every_echo_and_nothing_else():
    for name, echo in _echoes().items():
        assert leaks(echo), name
    assert not leaks("Set OPENAI_ADMIN_KEY to an admin key (sk-admin-...) or sk-proj-... keys")
    assert not leaks(KEY[8:15] + " and " + KEY[-7:])


# --- the Redactor itself ----------------------------------------------------------------------------------------------


def test_every_echo_is_masked_and_the_rest_kept():
    redactor = Redactor([KEY])
    for name, echo in _echoes().items():
        masked = redactor.mask(f"before {echo} after")
        assert not leaks(masked), (name, masked)
        assert masked.startswith("before ") and masked.endswith(" after") and MASK in masked, (name, masked)
    ordinary = 'The job failed: {"error": "invalid_file"} at step 120 (sk-admin-... keys cannot read it).\n'
    assert redactor.mask(ordinary) == ordinary


def test_short_secrets_and_several_secrets():
    redactor = Redactor([KEY, "sk-admin-Zp4Rt7Yu2Io9Pl5Kj3Hg", "bob", "hunter22"])
    text = f"{KEY[8:20]} sk-admin-Zp4Rt7Yu2Io9 user bob:hunter22@"
    assert redactor.mask(text) == f"{MASK} {MASK} user bob:{MASK}@"  # 3 characters cannot be told from text
    assert Redactor([]).mask(text) == text and not Redactor([None, ""])


def test_request_id_with_the_key_is_shown_masked():
    assert request_id_from({"x-request-id": f"req_{KEY}"}, (KEY,)) == f"req_{MASK}"
    assert request_id_from({"apim-request-id": "4f6c-\n-9a"}, (KEY,)) == "4f6c- -9a"
    assert request_id_from({"x-request-id": "req_abc"}) == "req_abc"


KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


@st.composite
def key_in_text(draw: st.DrawFn) -> tuple[str, str]:
    """A key (realistic alphabet, 20-200 characters, sometimes with a public prefix) and a text holding it (or a run
    of 8 or more of it) in one of the encodings, between random texts."""
    prefix = draw(st.sampled_from(["", "sk-", "sk-proj-", "sk-svcacct-"]))
    body = draw(st.text(KEY_ALPHABET, min_size=20 - len(prefix), max_size=200 - len(prefix)))
    key = prefix + body
    public = PUBLIC_PREFIX.match(key)
    end = draw(st.integers(max(8, public.end() + 1 if public else 0), len(key)))
    start = draw(st.integers(0, end - 8))
    run = key[start:end]
    raw = run.encode()
    encoding = draw(
        st.sampled_from(["plain", "split", "percent", "percent-some", "hex", "HEX", "base64", "base64url", "unicode"])
    )
    if encoding == "plain":
        echo = run
    elif encoding == "split":
        cuts = sorted(draw(st.lists(st.integers(1, len(run) - 1), max_size=6)))
        gaps = draw(st.lists(st.sampled_from([" ", "\n", "\t", "\r\n", "  "]), min_size=len(cuts), max_size=len(cuts)))
        pieces, at = [], 0
        for cut, gap in zip(cuts, gaps, strict=True):
            pieces += [run[at:cut], gap]
            at = cut
        echo = "".join([*pieces, run[at:]])
    elif encoding == "percent":
        case = draw(st.sampled_from(["{:02X}", "{:02x}"]))
        echo = "".join("%" + case.format(b) for b in raw)
    elif encoding == "percent-some":
        picks = draw(st.lists(st.booleans(), min_size=len(run), max_size=len(run)))
        echo = "".join(f"%{ord(c):02X}" if p else c for c, p in zip(run, picks, strict=True))
    elif encoding in ("hex", "HEX"):
        echo = raw.hex() if encoding == "hex" else raw.hex().upper()
    elif encoding == "unicode":
        echo = "".join(f"\\u{b:04x}" for b in raw)
    else:
        lead = draw(st.binary(max_size=5))
        encode = base64.b64encode if encoding == "base64" else base64.urlsafe_b64encode
        echo = encode(lead + raw).decode()
    around = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
    return key, draw(around) + echo + draw(around)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key_in_text())
def test_property_no_run_of_8_survives(case: tuple[str, str]):
    key, text = case
    assert leaks(text, key)  # the case holds a leak, by the oracle's own reading
    masked = Redactor([key]).mask(text)
    assert not leaks(masked, key), (key, text, masked)


@settings(max_examples=300, deadline=None)
@given(
    st.text(KEY_ALPHABET, min_size=20, max_size=200),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300),
)
def test_property_text_without_the_key_is_unchanged(key: str, text: str):
    if leaks(text, key) or any(key[i : i + 8] in "".join(text.split()) for i in range(len(key) - 7)):
        return  # the text happens to hold a run of the key: not this property's case
    assert Redactor([key]).mask(text) == text


# --- a hostile upstream, through the MCP client ---------------------------------------------------------------------


class EchoingRequestIds:
    """Wraps an ASGI app: every answer carries the key in its ``x-request-id`` and ``apim-request-id``."""

    def __init__(self, app: ASGIApp, echo: str) -> None:
        self.app = app
        self.echo = echo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def echoing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers += [(b"x-request-id", self.echo.encode()), (b"apim-request-id", self.echo.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, echoing)


def hostile_data() -> FakeData:
    """Jobs whose every free text echoes the key: a succeeded job (metadata, suffix, events, a result file with
    columns named after it) and a failed one (its error message), and a result file of the failed kind."""
    echoes = _echoes()
    cps = [checkpoint(HOSTILE_JOB, step, {"train_loss": 1 / step, "full_valid_loss": 0.5}) for step in (10, 20)]
    good = job(
        HOSTILE_JOB,
        suffix=f"x{KEY[8:30]}",
        metadata={"note": echoes["newline"], "hex": echoes["hex"], echoes["part"][:40]: echoes["percent"]},
    )
    failed = job(
        FAILED_JOB,
        status="failed",
        error={"code": "invalid_file", "message": f"bad key {echoes['spaced']}", "param": echoes["base64"]},
    )
    events = [
        {
            "object": "fine_tuning.job.event",
            "id": f"ftevent-{n:024d}",
            "created_at": 1754036000 + n,
            "level": level,
            "message": message,
            "type": "message",
            "data": {},
        }
        for n, (level, message) in enumerate(
            [("info", echoes["base64-shifted"]), ("error", echoes["unicode"]), ("warn", echoes["HEX"])]
        )
    ]
    csv = (f"step,train_loss,{KEY}\n10,0.5,1\n20,0.4,2\n").encode()
    data = FakeData(jobs=[good, failed], checkpoints={HOSTILE_JOB: cps}, events={HOSTILE_JOB: events})
    data.files[RESULT_FILE] = result_file(csv)
    return data


@contextmanager
def hostile_upstream(data: FakeData | None = None) -> Iterator[tuple[str, FaultInjector]]:
    fake = FakeOpenAI(data or hostile_data(), api_key=KEY)
    faults = FaultInjector(fake)
    with serve_app(EchoingRequestIds(faults, f"req_{_echoes()['spaced']}")) as base_url:  # no newline in a header
        yield base_url, faults


@asynccontextmanager
async def client_of(base_url: str) -> AsyncIterator[Client]:
    server = create_server(Settings(api_key=KEY, base_url=base_url, timeout=5.0, deadline=30.0, max_retries=0))
    async with Client(server) as client:
        yield client


def texts_of(result: Any) -> list[str]:
    return [result.model_dump_json(), json.dumps(result.model_dump(mode="json"), ensure_ascii=False)]


async def test_no_result_error_or_log_line_reveals_the_key(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    progress: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    with hostile_upstream() as (base_url, faults):
        faults.add(Fault(status=500, headers={"x-request-id": f"req_{KEY}"}, path_contains="/checkpoints", times=5))
        async with client_of(base_url) as client:
            results = [
                await client.call_tool("get_job", {"job_id": HOSTILE_JOB}),
                await client.call_tool("get_job", {"job_id": FAILED_JOB}),
                await client.call_tool("list_jobs", {}, progress_callback=on_progress),
                await client.call_tool("list_events", {"job_id": HOSTILE_JOB}, progress_callback=on_progress),
                await client.call_tool("training_metrics", {"job_id": HOSTILE_JOB}),
                await client.call_tool("list_checkpoints", {"job_id": HOSTILE_JOB}),  # 500 with the key as id
                await client.call_tool("get_job", {"job_id": "ftjob-Missing000000000000000001"}),  # 404
                await client.call_tool("compare_jobs", {"job_ids": [HOSTILE_JOB, FAILED_JOB]}),
                await client.read_resource(f"openai-ft://jobs/{HOSTILE_JOB}"),
                await client.read_resource(f"openai-ft://jobs/{HOSTILE_JOB}/metrics.csv"),
                await client.get_prompt("review_sweep", {"suffix": quote(KEY[10:30], safe="")}),
            ]
    errors = [r for r in results[:8] if r.is_error]
    assert len(errors) >= 2, [r.content for r in results]  # the 500 and the 404 at least
    assert any("request id req_" in r.content[0].text for r in errors)
    assert not results[0].is_error and results[0].structured_content["id"] == HOSTILE_JOB
    for result in results:
        assert_no_leak(*texts_of(result))
    assert_no_leak(*progress)
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "failed" in logged  # the INFO line of a failed call is there, masked
    assert_no_leak(logged)


async def test_a_result_file_whose_header_is_the_key_fails_without_it():
    bad = (f"{KEY},{_echoes()['hex']}\n1,2\n").encode()
    data = hostile_data()
    data.files[RESULT_FILE] = result_file(bad)
    with hostile_upstream(data) as (base_url, _):
        async with client_of(base_url) as client:
            result = await client.call_tool("training_metrics", {"job_id": HOSTILE_JOB})
    assert result.is_error and "header was" in result.content[0].text
    assert_no_leak(*texts_of(result))


async def test_progress_messages_are_masked():
    """A progress message that quotes upstream text is masked at the exit, whatever tool sends it."""
    server = create_server(Settings(api_key=KEY))
    progress: list[str] = []

    async def echo_progress(ctx: Any) -> str:
        await ctx.report_progress(1, 2, f"reading {_echoes()['spaced']}")
        return "done"

    server._ensure_tools()
    from mcp.server.mcpserver import Context

    echo_progress.__annotations__ = {"ctx": Context, "return": str}
    server.add_tool(echo_progress)

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with Client(server) as client:
        await client.call_tool("echo_progress", {}, progress_callback=on_progress)
    assert progress and progress[0].startswith("reading ") and MASK in progress[0]
    assert_no_leak(*progress)


def test_the_log_filter_masks_messages_arguments_and_tracebacks():
    redactor = Redactor([KEY])
    install_log_masking(redactor)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent %s to %r", (KEY, {"k": KEY[5:30]}), None)
    try:
        raise ValueError(_echoes()["percent"])
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert MaskingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "sent *** to" in text and "ValueError" in text
    assert_no_leak(text)


async def test_stdio_session_with_a_hostile_upstream_leaks_nothing_on_stderr_or_stdout():
    with hostile_upstream() as (base_url, faults), tempfile.TemporaryFile("w+") as errlog:
        faults.add(Fault(status=404, headers={"x-request-id": f"req_{KEY}"}, path_contains="Missing", times=5))
        env = clean_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=base_url, OPENAI_CHECKPOINTS_MCP_ALLOW_WRITES="")
        params = StdioServerParameters(command=console_script(), args=["--log-level", "DEBUG"], env=env)

        with anyio.fail_after(60):
            async with Client(stdio_client(params, errlog=errlog)) as client:
                results = [
                    await client.call_tool("get_job", {"job_id": HOSTILE_JOB}),
                    await client.call_tool("get_job", {"job_id": FAILED_JOB}),
                    await client.call_tool("list_events", {"job_id": HOSTILE_JOB}),
                    await client.call_tool("training_metrics", {"job_id": HOSTILE_JOB}),
                    await client.call_tool("get_job", {"job_id": "ftjob-Missing000000000000000001"}),
                ]
        errlog.seek(0)
        stderr = errlog.read()
    assert results[-1].is_error and "request id req_***" in results[-1].content[0].text
    assert "DEBUG" in stderr and "failed" in stderr
    for result in results:
        assert_no_leak(*texts_of(result))
    assert_no_leak(stderr)
    assert os.environ.get("OPENAI_API_KEY") != KEY


async def test_completions_leave_out_values_that_echo_the_key():
    from mcp.types import PromptReference

    data = hostile_data()
    data.jobs.append(job("ftjob-Hostile00000000000000000003", suffix="lr-sweep-a"))
    with hostile_upstream(data) as (base_url, _):
        async with client_of(base_url) as client:
            ref = PromptReference(type="ref/prompt", name="review_sweep")
            suffixes = await client.complete(ref, {"name": "suffix", "value": ""})
            pairs = await client.complete(ref, {"name": "metadata", "value": ""})
    assert "lr-sweep-a" in suffixes.completion.values
    assert not any(value.startswith("x") for value in suffixes.completion.values)  # the suffix that echoes the key
    assert_no_leak(suffixes.model_dump_json(), pairs.model_dump_json())


def test_uvicorns_own_handlers_get_the_filter_too():
    """``uvicorn --factory`` configures handlers of its own (``propagate`` off): the access log is masked too."""
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    try:
        install_log_masking(Redactor([KEY]))
        assert any(isinstance(f, MaskingFilter) for f in handler.filters)
        access.warning('%s - "GET /mcp?x=%s HTTP/1.1" %d', "127.0.0.1:5000", quote(KEY), 200)
    finally:
        access.removeHandler(handler)
    assert "127.0.0.1:5000" in stream.getvalue() and MASK in stream.getvalue()
    assert_no_leak(stream.getvalue())


async def test_the_archive_file_holds_no_echo_of_the_key(tmp_path):
    """``archive`` writes what the API sent, masked like every answer: offline there is no key to mask with."""
    from openai_checkpoints_mcp.api.cache import MemoryBackend
    from openai_checkpoints_mcp.api.store import JobStore
    from openai_checkpoints_mcp.archive.writer import ARCHIVE_MAX_ITEMS, write_archive

    path = tmp_path / "hostile.sqlite3"
    with hostile_upstream() as (base_url, faults):
        faults.add(Fault(status=404, headers={"x-request-id": f"req_{KEY}"}, path_contains=f"{HOSTILE_JOB}/events"))
        settings = Settings(api_key=KEY, base_url=base_url, timeout=5.0, max_retries=0, max_items=ARCHIVE_MAX_ITEMS)
        store = JobStore.open(settings, MemoryBackend(0))
        try:
            receipt = await write_archive(store, path, settings=settings)
        finally:
            await store.aclose()
    assert receipt.this_run.jobs == 2 and path.stat().st_size > 0
    import sqlite3

    with sqlite3.connect(path) as conn:
        dumped = "\n".join(conn.iterdump())
        stored = conn.execute("SELECT metadata, problem FROM jobs WHERE id = ?", (HOSTILE_JOB,)).fetchone()
    assert MASK in stored[0] and stored[1] and "request id req_***" in stored[1]
    assert_no_leak(dumped, receipt.render())


async def test_the_persistent_cache_file_holds_no_echo_of_the_key(tmp_path):
    """A finished job, its checkpoints and its result file are kept in the SQLite cache: what the API sent is masked
    before it is written, and a new session still answers from the file without a request."""
    import sqlite3

    from openai_checkpoints_mcp.api.sqlite_cache import FILE_NAME

    with hostile_upstream() as (base_url, faults):
        settings = Settings(
            api_key=KEY, base_url=base_url, max_retries=0, persistent_cache=True, cache_dir=str(tmp_path)
        )
        async with Client(create_server(settings)) as client:
            for tool in ("get_job", "list_checkpoints", "training_metrics"):
                assert not (await client.call_tool(tool, {"job_id": HOSTILE_JOB})).is_error
        asked = len(faults.requests)
        async with Client(create_server(settings)) as client:
            again = await client.call_tool("get_job", {"job_id": HOSTILE_JOB})
        assert len(faults.requests) == asked  # answered from the file
    assert not again.is_error and MASK in json.dumps(again.structured_content["metadata"])
    with sqlite3.connect(tmp_path / FILE_NAME) as conn:
        kinds = {row[0] for row in conn.execute("SELECT kind FROM entries")}
        dumped = "\n".join(conn.iterdump())
    assert {"job", "checkpoints", "file"} <= kinds
    assert_no_leak(dumped)


# --- the picture: what is drawn into the PNG --------------------------------------------------------------------------


async def test_the_plotted_picture_draws_no_echo_of_the_key(monkeypatch: pytest.MonkeyPatch):
    """The PNG is binary (no exit masks it), yet its title and legend quote a job's model name and suffix and a
    result file's column names: every text drawn is masked before it becomes pixels. A second job whose only metric
    column is named after the key is drawn by that column (its legend and axis label)."""
    pytest.importorskip("matplotlib")
    from openai_checkpoints_mcp.analysis import plot

    column_job = "ftjob-Hostile00000000000000000004"
    data = hostile_data()
    data.jobs[0]["model"] = f"gpt-4o-mini-{_echoes()['hex']}"
    column_file = "file-KeyColumn0000000000000A"
    data.jobs.append(job(column_job, suffix=_echoes()["spaced"], result_files=[column_file]))
    data.files[column_file] = result_file(f"step,{KEY}\n1,0.9\n2,0.7\n3,0.6\n".encode())
    data.files[column_file].meta["id"] = column_file
    drawn: list[tuple[str, ...]] = []
    real_render = plot.render

    def recording_render(spec: plot.FigureSpec) -> plot.RenderedPlot:
        rendered = real_render(spec)
        drawn.append(rendered.texts)
        return rendered

    monkeypatch.setattr(plot, "render", recording_render)
    with hostile_upstream(data) as (base_url, _):
        async with client_of(base_url) as client:
            results = [
                await client.call_tool("plot_training_curve", {"job_id": HOSTILE_JOB}),
                await client.call_tool("plot_training_curve", {"job_id": column_job}),
                await client.call_tool("plot_training_curve", {"job_ids": [HOSTILE_JOB, column_job]}),
            ]
            await client.read_resource(f"openai-ft://jobs/{HOSTILE_JOB}/curve.png")
    assert [r.is_error for r in results] == [False] * 3, [r.content for r in results]
    assert len(drawn) == 4 and all(texts for texts in drawn)
    for texts in drawn:
        assert_no_leak(*texts)
    assert any(MASK in text for text in drawn[0]) and any(MASK in text for text in drawn[1])
    for result in results:
        assert_no_leak(result.content[1].model_dump_json(), json.dumps(result.structured_content))


def test_the_archive_command_logs_nothing_of_the_key(tmp_path):
    """``archive`` makes no server, yet its log is masked too: at DEBUG, httpcore quotes every response header (the
    request id that echoes the key); the receipt on stdout is masked as well."""
    import subprocess

    with hostile_upstream() as (base_url, faults):
        faults.add(Fault(status=404, headers={"x-request-id": f"req_{KEY}"}, path_contains=f"{HOSTILE_JOB}/events"))
        env = clean_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=base_url)
        done = subprocess.run(
            [console_script(), "archive", str(tmp_path / "a.sqlite3"), "--log-level", "DEBUG"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert "receive_response_headers" in done.stderr and "x-request-id" in done.stderr, done.stderr[-2000:]
    assert done.stdout.strip(), done.stderr[-2000:]  # the receipt
    assert_no_leak(done.stdout, done.stderr)


def test_a_key_pasted_into_a_flag_is_masked_in_the_usage_error(monkeypatch, capsys):
    """argparse quotes a bad value in its error line: a key given to the wrong flag is masked there."""
    from openai_checkpoints_mcp.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for argv in (["call", "list_jobs", "--timeout", KEY], ["--max-retries", KEY[8:30]], ["call", "--deadline", KEY]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        stderr = capsys.readouterr().err
        assert "error: argument --" in stderr and MASK in stderr, stderr
        assert_no_leak(stderr)


def test_a_cache_url_password_given_as_a_query_value_is_a_secret_too():
    """redis takes the password in the userinfo or as ``?password=``; `mask_url` hides both, and both are masked
    wherever an error or a log line might quote them."""
    from openai_checkpoints_mcp.config import mask_url

    password = "Hunter2Query9Secret"
    url = f"redis://localhost:6379/0?password={password}"
    settings = Settings(api_key=KEY, cache_url=url)
    assert password in settings.secrets and password not in mask_url(url)
    line = f"redis said: invalid password {password} for {url}"
    assert password not in settings.redactor.mask(line) and KEY not in settings.redactor.mask(f"{line} {KEY}")
    assert password in Settings(api_key=KEY, cache_url=f"redis://:{password}@localhost:6379/0").secrets


def test_warnings_and_an_uncaught_traceback_go_through_the_masked_log():
    """Two ways out of the process that bypass a log handler: a Python warning (pydantic's quote the value) and the
    traceback of an exception no command caught."""
    script = (
        "import sys, warnings\n"
        "from openai_checkpoints_mcp.cli import _configure_logging\n"
        "from openai_checkpoints_mcp.config import Settings\n"
        "_configure_logging('INFO', Settings(api_key=sys.argv[1]))\n"
        "warnings.warn('a value that echoes ' + sys.argv[1])\n"
        "raise RuntimeError('boom ' + sys.argv[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, KEY], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert done.returncode == 1
    assert "a value that echoes ***" in done.stderr and "RuntimeError: boom ***" in done.stderr, done.stderr
    assert_no_leak(done.stderr, done.stdout)
