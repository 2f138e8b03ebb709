"""Answers offline (``--archive FILE``), end to end: an archive written by the ``archive`` command answers every read
tool as the live API did, with a notice naming the account and the time, and with not one request whatever is
asked; a job it lacks is ``not_found`` with the advice to archive again; write tools do not exist; listings filter the
whole archive; a file that is not an archive is refused at start-up in one line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from openai_checkpoints_mcp.config import CACHE_DIR_ENV, Settings
from openai_checkpoints_mcp.fake import DEMO_JOB_IDS, FakeData
from openai_checkpoints_mcp.server import create_server, tool_table

from .helpers import (
    RESULT_FILE,
    TEST_KEY,
    checkpoint,
    console_script,
    error_text,
    job,
    mcp_client,
    result_file,
    serving,
)

pytestmark = pytest.mark.anyio

TEST_CACHE_ENV = {CACHE_DIR_ENV: os.environ.get(CACHE_DIR_ENV, "")}

JOB = DEMO_JOB_IDS["support_bot"]
MISSING = "ftjob-NotArchived00000000000001"
LIVE_ONLY = ("notice", "upstream_requests", "pages_fetched", "listing_age_seconds", "scanned", "jobs_scanned")
"""Fields an offline answer may differ in: the notice, request counts, and how many jobs were searched (offline:
the whole archive)."""
DEMO_CHECKPOINT = "ft:gpt-4o-mini-2024-07-18:lumen-labs:support-bot:BvIh4uj0:ckpt-step-240"
NOT_ARCHIVED = {"list_checkpoint_permissions"}
"""Read tools the archive cannot answer: who a checkpoint is shared with (an admin-key question) is not archived."""


def archive_with_cli(
    path: Path, *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``openai-checkpoints-mcp archive PATH ...`` as a user would."""
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **TEST_CACHE_ENV}
    environment |= env or {}
    return subprocess.run(
        [console_script(), "archive", str(path), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("offline") / "demo.sqlite3"
    done = archive_with_cli(path, "--demo")
    assert done.returncode == 0, done.stdout + done.stderr
    return path


def demo_calls() -> list[tuple[str, dict[str, Any]]]:
    """A question of every read tool, for every demo job, plus the listings and a sweep."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_jobs", {}),
        ("list_jobs", {"status": "succeeded"}),
        ("list_jobs", {"model": "gpt-4o-mini"}),
        ("list_jobs", {"max_results": 3}),
        ("list_fine_tuned_models", {}),
        ("compare_jobs", {"model": "gpt-4o-mini", "status": "any"}),
        ("compare_jobs", {"job_ids": list(DEMO_JOB_IDS.values())}),
        ("plot_training_curve", {"job_ids": list(DEMO_JOB_IDS.values())[:4]}),
        ("list_checkpoint_permissions", {"fine_tuned_model_checkpoint": DEMO_CHECKPOINT}),
    ]
    for job_id in DEMO_JOB_IDS.values():
        for tool in (
            "get_job",
            "list_checkpoints",
            "best_checkpoint",
            "training_metrics",
            "plot_training_curve",
            "list_events",
        ):
            calls.append((tool, {"job_id": job_id}))
    return calls


def comparable(result: Any) -> Any:
    if result.is_error:
        return error_text(result)
    content = dict(result.structured_content)
    for key in LIVE_ONLY:
        content.pop(key, None)
    return content


async def test_every_read_tool_answers_offline_as_the_live_api_did(demo_archive):
    """The archive of the demo answers each question exactly as the demo (the same data live) answers it."""
    assert {name for name, _ in demo_calls()} == {spec.name for spec in tool_table() if spec.read_only}
    async with (
        Client(create_server(Settings(demo=True))) as live,
        Client(create_server(Settings(archive=str(demo_archive)))) as offline,
    ):
        for tool, arguments in demo_calls():
            online = await live.call_tool(tool, arguments)
            answer = await offline.call_tool(tool, arguments)
            if tool in NOT_ARCHIVED:
                assert not online.is_error and error_text(answer).startswith("not_found: Checkpoint permissions are ")
                continue
            assert answer.is_error == online.is_error, (tool, arguments)
            assert comparable(answer) == comparable(online), (tool, arguments)
            if not answer.is_error:
                notice = answer.structured_content["notice"]
                assert notice.startswith(f"FROM THE ARCHIVE {demo_archive.name}: ") and "archived at 20" in notice


async def test_offline_makes_not_one_request_whatever_is_asked(serve_fake, tmp_path):
    """The archive of a fake served over HTTP, then answered from with that fake still up, its URL and a key still
    configured, and an HTTP transport that fails the test if used: not one request reaches either."""
    job_id = "ftjob-Offline0000000000000000001"
    data = FakeData(
        jobs=[job(job_id, suffix="kept")],
        checkpoints={job_id: [checkpoint(job_id, step, {"train_loss": 1 / step}) for step in (10, 20)]},
    )
    data.files[RESULT_FILE] = result_file(
        b"step,train_loss\n" + b"".join(b"%d,%f\n" % (n, 1 / n) for n in range(1, 21))
    )
    path = tmp_path / "account.sqlite3"
    with serve_fake(data) as api:
        done = archive_with_cli(path, env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": api.base_url})
        assert done.returncode == 0, done.stdout + done.stderr
        archived = len(api.faults.requests)

        def refuse(request: httpx2.Request) -> httpx2.Response:
            raise AssertionError(f"offline mode made a request: {request.method} {request.url}")

        server = create_server(replace(api.settings, archive=str(path)), transport=httpx2.MockTransport(refuse))
        async with Client(server) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            answers = [await client.call_tool(tool, arguments) for tool, arguments in _every_question(job_id)]
        assert len(api.faults.requests) == archived
    assert names == [spec.name for spec in tool_table() if spec.read_only]
    assert [a.is_error for a in answers] == [False] * (len(answers) - 3) + [True, True, True]
    assert not any(TEST_KEY in a.model_dump_json() for a in answers)


def _every_question(job_id: str) -> list[tuple[str, dict[str, Any]]]:
    """A question of every read tool about `job_id`, then three that the archive cannot answer."""
    about_the_job = ("get_job", "list_checkpoints", "best_checkpoint", "training_metrics", "list_events")
    pictures = [("plot_training_curve", {"job_id": job_id})]
    return [
        ("list_jobs", {}),
        *[
            (tool, {"job_id": job_id, "refresh": True} if tool != "list_events" else {"job_id": job_id})
            for tool in about_the_job
        ],
        *pictures,
        ("list_fine_tuned_models", {}),
        ("compare_jobs", {"suffix": "kept", "status": "any", "refresh": True}),
        ("get_job", {"job_id": MISSING}),
        ("best_checkpoint", {"job_id": MISSING, "refresh": True}),
        ("list_checkpoint_permissions", {"fine_tuned_model_checkpoint": DEMO_CHECKPOINT}),
    ]


async def test_a_job_not_in_the_archive_is_not_found_with_the_advice_to_archive_it(demo_archive):
    async with Client(create_server(Settings(archive=str(demo_archive)))) as client:
        for tool in (
            "get_job",
            "list_checkpoints",
            "best_checkpoint",
            "training_metrics",
            "plot_training_curve",
            "list_events",
        ):
            result = await client.call_tool(tool, {"job_id": MISSING})
            text = error_text(result)
            assert result.is_error and text.startswith("not_found: "), (tool, text)
            assert f"openai-checkpoints-mcp archive {demo_archive} --job {MISSING}" in text
        compared = await client.call_tool("compare_jobs", {"job_ids": [JOB, MISSING]})
    assert not compared.is_error
    assert [f["job_id"] for f in compared.structured_content["failed"]] == [MISSING]


async def test_write_tools_do_not_exist_offline_even_when_asked_for(demo_archive):
    async with Client(create_server(Settings(archive=str(demo_archive), allow_writes=True))) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        instructions = client.instructions
    assert names == {spec.name for spec in tool_table() if spec.read_only}
    assert instructions is not None and "OFFLINE" in instructions and "All tools are read-only." in instructions
    assert "cancel_job" not in instructions


async def test_listings_page_through_the_archive_in_order(demo_archive):
    async with Client(create_server(Settings(archive=str(demo_archive)))) as offline:
        whole = (await offline.call_tool("list_jobs", {"max_results": 100})).structured_content
        ids: list[str] = []
        after = None
        while True:
            page = await offline.call_tool("list_jobs", {"max_results": 2, **({"after": after} if after else {})})
            content = page.structured_content
            ids += [j["id"] for j in content["jobs"]]
            if not content["has_more"]:
                break
            after = content["next_after"]
        events: list[tuple[str, str]] = []
        after = None
        while True:
            arguments = {"job_id": JOB, "limit": 7, **({"after": after} if after else {})}
            content = (await offline.call_tool("list_events", arguments)).structured_content
            events += [(e["created_at"], e["message"]) for e in content["events"]]
            if not content["has_more"]:
                break
            after = content["next_after"]
        every_event = (await offline.call_tool("list_events", {"job_id": JOB, "limit": 100})).structured_content
    assert ids == [j["id"] for j in whole["jobs"]] and len(ids) == len(DEMO_JOB_IDS) and whole["has_more"] is False
    assert events == [(e["created_at"], e["message"]) for e in every_event["events"]] and len(events) > 7


# --- a large archive: no scan limit offline ---------------------------------------------------------------------------


def many_jobs(count: int) -> FakeData:
    """`count` succeeded jobs, newest first by created_at, one checkpoint each; the oldest one failed."""
    jobs = []
    checkpoints = {}
    for n in range(count):
        job_id = f"ftjob-Many{n:022d}"
        status = "failed" if n == count - 1 else "succeeded"
        model = f"ft:gpt-4o-mini-2024-07-18:acme-labs:run-{n % 3}:M{n:07d}" if status == "succeeded" else None
        created = 1_760_000_000 - 60 * n
        jobs.append(job(job_id, status=status, created_at=created, suffix=f"run-{n % 3}", fine_tuned_model=model))
        checkpoints[job_id] = [checkpoint(job_id, 10, {"train_loss": 1 + n / count}, n=n)]
    data = FakeData(jobs=jobs, checkpoints=checkpoints)
    data.files[RESULT_FILE] = result_file(b"step,train_loss\n1,1.0\n2,0.5\n")  # every succeeded job's
    return data


JOBS = 1100
"""Jobs in the large archive: more than the 1,000 a live list_jobs call scans."""


@pytest.fixture(scope="module")
def large_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of `JOBS` jobs, written from the fake over HTTP."""
    from openai_checkpoints_mcp.fake import FakeOpenAI

    from .helpers import serve_app

    path = tmp_path_factory.mktemp("large") / "large.sqlite3"
    with serve_app(FakeOpenAI(many_jobs(JOBS), api_key=TEST_KEY)) as base_url:
        done = archive_with_cli(path, env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": base_url})
    assert done.returncode == 0, done.stdout + done.stderr
    return path


async def test_offline_list_jobs_filters_the_whole_archive_in_one_call(large_archive):
    async with Client(create_server(Settings(archive=str(large_archive)))) as client:
        failed = (await client.call_tool("list_jobs", {"status": "failed"})).structured_content
        by_suffix = (await client.call_tool("list_jobs", {"suffix": "run-2", "max_results": 1000})).structured_content
    assert [j["id"] for j in failed["jobs"]] == [f"ftjob-Many{JOBS - 1:022d}"]  # the oldest: beyond any live scan
    assert failed["has_more"] is False and failed["scanned"] == JOBS
    assert len(by_suffix["jobs"]) == len(range(2, JOBS, 3)) and by_suffix["has_more"] is False


async def test_offline_compare_jobs_ranks_more_jobs_than_a_live_call_may(large_archive, serve_fake):
    async with Client(create_server(Settings(archive=str(large_archive)))) as client:
        ranked = await client.call_tool("compare_jobs", {"suffix": "run-0", "max_jobs": 300})
    content = ranked.structured_content
    assert not ranked.is_error and content["jobs_compared"] == 300 and content["truncated"] is True
    assert content["winner"]["job_id"] == "ftjob-Many" + "0" * 22  # the lowest train loss
    with serve_fake(many_jobs(3)) as api:
        async with api.client() as live:
            refused = await live.call_tool("compare_jobs", {"suffix": "run-0", "max_jobs": 400})
        assert not api.upstream_requests()
    assert refused.is_error and error_text(refused).startswith("invalid_argument: max_jobs=400: the live API")


# --- over stdio and HTTP, and what start-up refuses ---------------------------------------------------------------


async def test_stdio_server_on_an_archive_needs_no_key_and_no_network(demo_archive):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        **TEST_CACHE_ENV,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # the discard port: nothing answers there
        "OPENAI_CHECKPOINTS_MCP_ALLOW_WRITES": "1",
    }
    params = StdioServerParameters(command=console_script(), args=["--archive", str(demo_archive)], env=env)
    with anyio.fail_after(60):
        async with Client(stdio_client(params)) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            best = await client.call_tool("best_checkpoint", {"job_id": JOB})
    assert "cancel_job" not in names and len(names) == len([s for s in tool_table() if s.read_only])
    assert not best.is_error and best.structured_content["best"]["step_number"] == 240
    assert best.structured_content["notice"].startswith("FROM THE ARCHIVE")


async def test_an_http_server_on_an_archive_shares_it_read_only(demo_archive):
    from openai_checkpoints_mcp.transport.http import HttpOptions, create_app

    app = create_app(Settings(archive=str(demo_archive)), HttpOptions(auth_token=None))
    with serving(app) as root:
        async with mcp_client(root, token=None) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            listed = await client.call_tool("list_jobs", {})
    assert "pause_job" not in names
    assert not listed.is_error and len(listed.structured_content["jobs"]) == len(DEMO_JOB_IDS)


def _start(*arguments: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **TEST_CACHE_ENV}
    return subprocess.run(
        [console_script(), *arguments, "call", "list_jobs"], capture_output=True, text=True, timeout=60, env=env
    )


def test_start_up_refuses_what_is_not_an_archive_in_one_line(tmp_path, demo_archive):
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello")
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    newer = tmp_path / "newer.sqlite3"
    newer.write_bytes(demo_archive.read_bytes())
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    cases = {
        tmp_path / "absent.sqlite3": "no archive at",
        not_sqlite: "is not a SQLite database",
        other: "is not an openai-checkpoints-mcp archive",
        newer: "upgrade openai-checkpoints-mcp",
    }
    for path, expected in cases.items():
        done = _start("--archive", str(path))
        assert done.returncode == 2 and done.stdout == "", (path, done)
        assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert not_sqlite.read_text() == "hello"


def test_start_up_refuses_flags_that_contradict_an_archive(demo_archive):
    for flag, expected in (("--demo", "exclude each other"), ("--allow-writes", "an archive is read-only")):
        done = _start("--archive", str(demo_archive), flag)
        assert done.returncode == 2 and expected in done.stderr, done.stderr


def test_the_archive_variable_serves_offline_as_the_flag_does(demo_archive):
    """``OPENAI_CHECKPOINTS_MCP_ARCHIVE`` (what the uvicorn factory reads) is ``--archive``: nothing persisted,
    nothing written, the writes off even when the writes variable asks for them."""
    from openai_checkpoints_mcp.config import ALLOW_WRITES_ENV, ARCHIVE_ENV

    settings = Settings.from_env({ARCHIVE_ENV: str(demo_archive), ALLOW_WRITES_ENV: "1", "OPENAI_API_KEY": TEST_KEY})
    assert settings.archive == str(demo_archive)
    assert settings.persistent_cache is False and settings.allow_writes is False and settings.cache_url is None
