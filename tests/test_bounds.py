"""Nothing an upstream sends may exhaust or freeze the server (issue 11, defects 1 and 2), tried against a hostile
upstream over real HTTP (the canned answers of tests/hostile.py) through the MCP client:

* every read is bounded: an endless body, a Content-Length past the bound (refused before reading), a gzip bomb
  (decompressed bytes counted), an endless result file: ``bad_response`` naming the flag, and the server wrote only
  about the bound before the client stopped;
* a result file of a million columns (or too many rows) is read within the parser's bounds, the cut said in the
  findings, and the result stays small;
* the parse runs off the event loop: pings are answered during it, and the deadline holds (deadline + 1 s);
* an unanticipated failure is ``internal_error``, not the SDK's bare text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError

from openai_checkpoints_mcp.analysis.result_file import MAX_OTHER_COLUMNS, MAX_ROWS
from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.server import create_server
from openai_checkpoints_mcp.transport.http import HttpOptions, create_app

from .helpers import TEST_KEY, TOKEN, error_text, job, mcp_client, serving
from .hostile import Answer, CannedCase, canned_server, endless, gzip_bomb, json_answer, result_file_routes

pytestmark = pytest.mark.anyio

MIB = 1 << 20
BOUND = MIB
"""The bound the tests set (the defaults are 32 and 256 MiB)."""
SLACK = 16 * MIB
"""What may be in flight beyond the bound when the client stops: the socket buffers of both ends on loopback."""


@asynccontextmanager
async def client_of(upstream: CannedCase, mode: str = "auto", **overrides: Any) -> AsyncIterator[Client]:
    """A client of our server in memory (`mode` ``legacy`` for ``ping``, which newer protocol versions dropped)."""
    values: dict[str, Any] = {
        "max_retries": 0,
        "deadline": 20,
        "max_response_bytes": BOUND,
        "max_result_file_bytes": BOUND,
        **overrides,
    }
    settings = Settings(api_key=TEST_KEY, base_url=upstream.base_url, **values)
    async with Client(create_server(settings), mode=mode, raise_exceptions=mode != "legacy") as client:
        yield client


def job_body(job_id: str) -> bytes:
    return json.dumps(job(job_id)).encode()


# --- bounded reads ---------------------------------------------------------------------------------------------------


async def test_an_endless_json_body_is_refused_at_the_bound():
    job_id = "ftjob-endless"
    answer = Answer(
        endless(b" " * 65536, start=job_body(job_id)[:-1]), {"content-type": "application/json"}, chunked=True
    )
    with canned_server({f"/v1/fine_tuning/jobs/{job_id}": answer}) as upstream:
        async with client_of(upstream) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": job_id}))
        served = upstream.served(f"/fine_tuning/jobs/{job_id}")
    assert text.startswith("bad_response: ") and "--max-response-mb" in text, text
    assert f"{BOUND:,} bytes" in text
    assert served < BOUND + SLACK, served


async def test_a_content_length_past_the_bound_is_refused_before_reading():
    job_id = "ftjob-hugelength"
    body = job_body(job_id)
    answer = Answer(lambda: [body], {"content-type": "application/json", "content-length": str(2_000_000_000)})
    with canned_server({f"/v1/fine_tuning/jobs/{job_id}": answer}) as upstream:
        async with client_of(upstream) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": job_id}))
    assert text.startswith("bad_response: ") and "declares 2,000,000,000 bytes" in text, text
    assert "--max-response-mb" in text


@cache
def _bomb(job_id: str) -> bytes:
    """A valid job whose padding expands from about 128 KiB to 128 MiB."""
    start = job_body(job_id)[:-1] + b', "padding": "'
    return gzip_bomb(128 * MIB, start=start, end=b'"}')


async def test_a_gzip_bomb_is_counted_decompressed():
    job_id = "ftjob-bomb"
    body = _bomb(job_id)
    assert len(body) < BOUND  # what travels is within the bound: only counting what it expands to refuses it
    headers = {"content-type": "application/json", "content-encoding": "gzip", "content-length": str(len(body))}
    with canned_server({f"/v1/fine_tuning/jobs/{job_id}": Answer(lambda: [body], headers)}) as upstream:
        async with client_of(upstream) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": job_id}))
    assert text.startswith("bad_response: ") and "decompressed" in text and "--max-response-mb" in text, text


async def test_an_endless_result_file_is_refused_at_its_own_bound():
    job_id, file_id = "ftjob-endlessfile", "file-endless"
    answer = Answer(
        endless(b"1,0.5\n" * 10_000, start=b"step,train_loss\n"), {"content-type": "text/csv"}, chunked=True
    )
    with canned_server(result_file_routes(job_id, file_id, answer)) as upstream:
        async with client_of(upstream, max_result_file_bytes=2 * BOUND) as client:
            text = error_text(await client.call_tool("training_metrics", {"job_id": job_id}))
        served = upstream.served(f"/files/{file_id}/content")
    assert text.startswith("bad_response: ") and "--max-result-file-mb" in text, text
    assert f"{2 * BOUND:,} bytes" in text
    assert served < 2 * BOUND + SLACK, served


async def test_an_error_answer_with_an_endless_body_still_says_its_status():
    job_id = "ftjob-endlesserror"
    answer = Answer(endless(b"x" * 65536), {"content-type": "text/plain"}, status=404, chunked=True)
    with canned_server({f"/v1/fine_tuning/jobs/{job_id}": answer}) as upstream:
        async with client_of(upstream) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": job_id}))
        served = upstream.served(f"/fine_tuning/jobs/{job_id}")
    assert text.startswith("not_found: "), text
    assert served < BOUND + SLACK, served


async def test_a_body_within_the_bound_is_read_whole():
    job_id = "ftjob-fine"
    with canned_server({f"/v1/fine_tuning/jobs/{job_id}": json_answer(job(job_id))}) as upstream:
        async with client_of(upstream) as client:
            result = await client.call_tool("get_job", {"job_id": job_id})
    assert not result.is_error and result.structured_content["id"] == job_id


# --- result files within the parser's bounds, off the event loop ------------------------------------------------------


@cache
def wide_csv(columns: int = 1_000_000, rows: int = 5) -> bytes:
    """About 18 MB: step, train_loss and valid_loss, then a million more columns."""
    header = "step,train_loss,valid_loss," + ",".join(f"c{i}" for i in range(columns))
    cells = ",".join(["1"] * columns)
    lines = [header, *(f"{step * 10},{1 / step:.4f},{2 / step:.4f},{cells}" for step in range(1, rows + 1))]
    return ("\n".join(lines) + "\n").encode()


@cache
def long_csv(rows: int) -> bytes:
    return ("step,train_loss\n" + "".join(f"{s},{1 / s:.6f}\n" for s in range(1, rows + 1))).encode()


def file_answer(content: bytes) -> Answer:
    return Answer(lambda: [content], {"content-type": "text/csv", "content-length": str(len(content))})


async def test_a_million_columns_are_cut_and_said_and_the_result_stays_small():
    job_id, file_id = "ftjob-wide", "file-wide"
    content = wide_csv()
    with canned_server(result_file_routes(job_id, file_id, file_answer(content))) as upstream:
        async with client_of(upstream, max_result_file_bytes=64 * MIB) as client:
            result = await client.call_tool("training_metrics", {"job_id": job_id, "points": 500})
    assert not result.is_error, result.content
    out = result.structured_content
    assert len(out["curve"]["columns"]) <= 1 + 2 + MAX_OTHER_COLUMNS
    assert len(out["metrics"]) <= 2 + MAX_OTHER_COLUMNS
    cut = [f for f in out["findings"] if "more columns than this server reads" in f]
    assert cut and f"{1_000_000 - MAX_OTHER_COLUMNS:,} were not read" in cut[0]
    assert out["findings"][0] == cut[0]  # what is cut comes first
    assert len(result.content[0].text) < 200_000  # was 462 MB


async def test_rows_beyond_the_bound_are_counted_and_said():
    job_id, file_id = "ftjob-long", "file-long"
    content = long_csv(MAX_ROWS + 1000)
    with canned_server(result_file_routes(job_id, file_id, file_answer(content))) as upstream:
        async with client_of(upstream, max_result_file_bytes=64 * MIB) as client:
            result = await client.call_tool("training_metrics", {"job_id": job_id})
    out = result.structured_content
    assert not result.is_error and out["steps"] == MAX_ROWS and out["last_step"] == MAX_ROWS
    assert "about 1,000 more were not" in out["findings"][0], out["findings"]


async def probed_while(
    call: Callable[[], Awaitable[Any]], probe: Callable[[], Awaitable[None]]
) -> tuple[Any, list[float]]:
    """Run `call` and, until it returns, `probe` every 20 ms: the call's result and each probe's latency (s)."""
    done = anyio.Event()
    result: list[Any] = []
    latencies: list[float] = []

    async def run() -> None:
        result.append(await call())
        done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        while not done.is_set():
            sent = time.monotonic()
            await probe()
            latencies.append(time.monotonic() - sent)
            await anyio.sleep(0.02)
    return result[0], latencies


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # ping: legacy mode only
async def test_pings_are_answered_while_a_hostile_file_is_parsed():
    """The wide file takes about a second of CPU to parse; the event loop keeps answering meanwhile."""
    job_id, file_id = "ftjob-wideping", "file-wideping"
    content = wide_csv()
    with canned_server(result_file_routes(job_id, file_id, file_answer(content))) as upstream:
        async with client_of(upstream, "legacy", max_result_file_bytes=64 * MIB) as client:
            started = time.monotonic()
            result, latencies = await probed_while(
                lambda: client.call_tool("training_metrics", {"job_id": job_id}), client.send_ping
            )
            took = time.monotonic() - started
    print(f"ping latencies during the parse: max {max(latencies):.3f} s of {len(latencies)}; call {took:.2f} s")
    assert not result.is_error
    assert len(latencies) >= 3, (latencies, took)
    # Before the fix the parse blocked the event loop: a ping waited 3.9 s (and the call took 331 s).
    assert max(latencies) < 1, (max(latencies), took)


async def test_healthz_answers_over_http_while_a_hostile_file_is_parsed():
    """Over streamable HTTP, /healthz on another connection is answered during the parse (it waited 40 s)."""
    job_id, file_id = "ftjob-widehttp", "file-widehttp"
    content = wide_csv()
    with canned_server(result_file_routes(job_id, file_id, file_answer(content))) as upstream:
        settings = Settings(api_key=TEST_KEY, base_url=upstream.base_url, max_retries=0, max_result_file_bytes=64 * MIB)
        with serving(create_app(settings, HttpOptions(auth_token=TOKEN))) as root:
            async with mcp_client(root) as client, httpx2.AsyncClient() as http:

                async def healthz() -> None:
                    assert (await http.get(f"{root}/healthz", timeout=5)).status_code == 200

                result, latencies = await probed_while(
                    lambda: client.call_tool("training_metrics", {"job_id": job_id}), healthz
                )
    assert not result.is_error
    assert len(latencies) >= 3 and max(latencies) < 1, latencies


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_the_deadline_holds_during_a_heavy_parse():
    job_id, file_id = "ftjob-widedeadline", "file-widedeadline"
    content = wide_csv(rows=20)  # several seconds of parsing
    deadline = 0.5
    with canned_server(result_file_routes(job_id, file_id, file_answer(content))) as upstream:
        async with client_of(upstream, "legacy", max_result_file_bytes=128 * MIB, deadline=deadline) as client:
            started = time.monotonic()
            result = await client.call_tool("training_metrics", {"job_id": job_id})
            took = time.monotonic() - started
            ping_started = time.monotonic()
            await client.send_ping()  # the server still answers (the abandoned parse stops at its next check)
            ping = time.monotonic() - ping_started
    print(f"deadline {deadline} s: answered in {took:.2f} s; ping after it {ping:.3f} s")
    assert error_text(result).startswith("timeout: "), result.content
    assert took < deadline + 1, took
    assert ping < 1, ping


async def test_the_deadline_holds_during_a_trickling_body():
    job_id = "ftjob-trickle"

    async def trickle() -> AsyncIterator[bytes]:
        yield job_body(job_id)[:-1]
        while True:
            await asyncio.sleep(0.05)
            yield b" "

    answer = Answer(trickle, {"content-type": "application/json"}, chunked=True)
    with canned_server({f"/v1/fine_tuning/jobs/{job_id}": answer}) as upstream:
        async with client_of(upstream, deadline=1) as client:
            answers = []
            for _ in range(2):  # the faster of two: a loaded machine may delay one answer, never both by a trickle
                started = time.monotonic()
                text = error_text(await client.call_tool("get_job", {"job_id": job_id}))
                answers.append((time.monotonic() - started, text))
    took, text = min(answers)
    assert all(text.startswith("timeout: ") for _, text in answers), answers
    assert took < 2, answers  # the deadline + 1 s; a deadline not held would let the trickle hold the call for ever


# --- every failure carries a code -------------------------------------------------------------------------------------


async def test_an_unanticipated_failure_is_internal_error_with_its_traceback_logged(caplog):
    server = create_server(Settings(api_key=TEST_KEY))
    server._ensure_tools()

    def exhaust(size: int) -> str:
        """Fails as a tool out of memory would."""
        raise MemoryError

    def crash() -> str:
        """Fails as a bug would."""
        return str(math.floor(float("nan")))

    server.add_tool(exhaust, name="exhaust")
    server.add_tool(crash, name="crash")
    with caplog.at_level(logging.ERROR, logger="openai_checkpoints_mcp.server"):
        async with Client(server) as client:
            memory = error_text(await client.call_tool("exhaust", {"size": 1}))
            bug = error_text(await client.call_tool("crash", {}))
            after = await client.call_tool("get_job", {"job_id": "x"})  # the server goes on
    assert memory.startswith("internal_error: ") and "ran out of memory while running exhaust" in memory, memory
    assert bug.startswith("internal_error: ") and "(ValueError)" in bug and "log" in bug, bug
    assert error_text(after).startswith("invalid_argument: ")
    tracebacks = [r for r in caplog.records if r.exc_info and "failed unexpectedly" in r.getMessage()]
    assert {r.exc_info[0] for r in tracebacks if r.exc_info} == {MemoryError, ValueError}


async def test_an_unanticipated_failure_of_a_resource_read_is_internal_error(caplog):
    server = create_server(Settings(api_key=TEST_KEY))
    server._ensure_resources()

    @server.resource("openai-ft://crash/{name}", name="crash")
    def crash(name: str) -> str:
        raise KeyError(name)

    with caplog.at_level(logging.ERROR, logger="openai_checkpoints_mcp.server"):
        async with Client(server) as client:
            with pytest.raises(MCPError) as caught:
                await client.read_resource("openai-ft://crash/x")
            templates = await client.list_resource_templates()  # the server goes on
    assert caught.value.error.message.startswith("internal_error: "), caught.value.error.message
    assert "(KeyError)" in caught.value.error.message and templates.resource_templates
    assert [r.exc_info[0] for r in caplog.records if r.exc_info and "failed unexpectedly" in r.getMessage()] == [
        KeyError
    ]
