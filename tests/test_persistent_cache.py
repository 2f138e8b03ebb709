"""The persistent cache, end to end through MCP against the fake API: what one server read, a new server on the same
cache directory answers with no upstream request; nothing of another account; an unusable file never fails a tool;
the file's permissions and contents; ``cache clear`` and ``cache path``. A locked, read-only, full or corrupt file
and several server processes on one file: test_persistent_cache_faults.py."""

from __future__ import annotations

import logging
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from openai_checkpoints_mcp.api.cache import Entry
from openai_checkpoints_mcp.api.sqlite_cache import FILE_NAME, SCHEMA_VERSION, SQLiteBackend, cache_files
from openai_checkpoints_mcp.cli import main
from openai_checkpoints_mcp.config import Settings

from .helpers import CURVE_JOB, TEST_KEY, curve_data, error_text

pytestmark = pytest.mark.anyio

CSV = b"step,train_loss,valid_loss\n" + b"".join(
    f"{step},{1 / step:.4f},{0.5 + abs(step - 200) / 1000:.4f}\n".encode() for step in range(1, 301)
)
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("best_checkpoint", {"job_id": CURVE_JOB}),
    ("list_checkpoints", {"job_id": CURVE_JOB}),
    ("training_metrics", {"job_id": CURVE_JOB}),
]
LOGGER = "openai_checkpoints_mcp.api.sqlite_cache"


async def _answers(api: Any, directory: Path, **overrides: Any) -> list[Any]:
    """The structured results of `CALLS` in one new server persisting to `directory`."""
    async with api.client(persistent_cache=True, cache_dir=str(directory), **overrides) as client:
        results = [await client.call_tool(tool, args) for tool, args in CALLS]
    return results


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


async def test_a_finished_job_read_once_is_answered_by_a_new_server_with_no_request(serve_fake, tmp_path):
    directory = tmp_path / "cache"
    with serve_fake(curve_data(CSV)) as api:
        first = await _answers(api, directory)
        before = len(api.upstream_requests("/"))
        second = await _answers(api, directory)
        assert len(api.upstream_requests("/")) == before > 0
    assert all(not r.is_error for r in first)
    for old, new in zip(first, second, strict=True):
        assert new.structured_content.pop("upstream_requests", 0) == 0  # the tool's own count says so too
        old.structured_content.pop("upstream_requests", None)
        assert new.structured_content == old.structured_content

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / FILE_NAME).stat().st_mode) == 0o600
    stored = b"".join(path.read_bytes() for path in cache_files(directory) if path.exists())
    assert CURVE_JOB.encode() in stored and TEST_KEY.encode() not in stored


async def test_a_session_the_cache_answers_never_makes_an_http_client(serve_fake, tmp_path, monkeypatch):
    """Building the HTTP client (its TLS context) costs tens of milliseconds: it waits for the first request."""
    from openai_checkpoints_mcp.api import client as client_module

    made: list[object] = []
    original = client_module.create_http_client

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(args)
        return original(*args, **kwargs)

    with serve_fake(curve_data(CSV)) as api:
        await _answers(api, tmp_path)
        monkeypatch.setattr(client_module, "create_http_client", counted)
        second = await _answers(api, tmp_path)
        assert made == [] and all(not r.is_error for r in second)
        async with api.client(persistent_cache=True, cache_dir=str(tmp_path)) as client:
            assert not (await client.call_tool("list_jobs", {})).is_error  # always read: the client is made then
    assert len(made) == 1


async def test_a_running_job_is_read_again(serve_fake, tmp_path):
    with serve_fake(curve_data(None, status="running")) as api:
        await _answers(api, tmp_path)
        before = len(api.upstream_requests(f"/jobs/{CURVE_JOB}"))
        await _answers(api, tmp_path)
        assert len(api.upstream_requests(f"/jobs/{CURVE_JOB}")) == 2 * before > 0


async def test_another_key_project_or_base_url_sees_nothing(serve_fake, tmp_path):
    from openai_checkpoints_mcp.fake import FakeData

    with serve_fake(curve_data(CSV)) as api, serve_fake(FakeData()) as empty:
        await _answers(api, tmp_path)
        other_key = await _answers(api, tmp_path, api_key="sk-other-key-000000000000")
        assert error_text(other_key[0]).startswith("auth_failed: ")
        before = len(api.upstream_requests())
        await _answers(api, tmp_path, project="proj_other")
        assert len(api.upstream_requests()) > before  # read from the API, not from the first project's entries
        elsewhere = await _answers(api, tmp_path, base_url=empty.base_url)
        assert error_text(elsewhere[0]).startswith("not_found: ")


def _corrupt(directory: Path) -> None:
    directory.mkdir()
    (directory / FILE_NAME).write_bytes(b"this is not a database\n" * 512)


def _newer(directory: Path) -> None:
    directory.mkdir()
    with sqlite3.connect(directory / FILE_NAME) as db:
        db.execute("CREATE TABLE entries (anything TEXT)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()


def _not_a_directory(directory: Path) -> None:
    directory.write_text("a file where the directory should be")


@pytest.mark.parametrize("spoil", [_corrupt, _newer, _not_a_directory])
async def test_an_unusable_cache_never_fails_a_tool_and_warns_once(serve_fake, tmp_path, caplog, spoil):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    directory = tmp_path / "cache"
    spoil(directory)
    with serve_fake(curve_data(CSV)) as api:
        results = await _answers(api, directory)
    assert all(not r.is_error for r in results)
    assert len(_warnings(caplog)) == 1, _warnings(caplog)


async def test_a_file_of_another_schema_version_is_rebuilt_and_then_used(serve_fake, tmp_path):
    directory = tmp_path / "cache"
    _newer(directory)
    with serve_fake(curve_data(CSV)) as api:
        await _answers(api, directory)
        before = len(api.upstream_requests("/"))
        await _answers(api, directory)
        assert len(api.upstream_requests("/")) == before
    with sqlite3.connect(directory / FILE_NAME) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


async def test_the_least_recently_used_entries_go_beyond_the_size_limit(tmp_path):
    backend = SQLiteBackend(tmp_path / FILE_NAME, "ns", max_bytes=2500)
    for name in ("a", "b", "c"):
        await backend.put(("file", name), bytes(1000), stored_at=1.0, size=1000)
        backend.close()  # written, in this order (last_used)
    fresh = SQLiteBackend(tmp_path / FILE_NAME, "ns", max_bytes=2500)
    assert await fresh.get(("file", "a")) is None
    assert await fresh.get(("file", "c")) == Entry(bytes(1000), 1.0, 1000)
    assert await SQLiteBackend(tmp_path / FILE_NAME, "other", max_bytes=2500).get(("file", "c")) is None
    fresh.close()


def test_cache_path_and_clear(tmp_path, capsys):
    directory = tmp_path / "cache"
    with pytest.raises(SystemExit) as exit_path:
        main(["cache", "path", "--cache-dir", str(directory)])
    assert exit_path.value.code == 0 and capsys.readouterr().out.strip() == str(directory / FILE_NAME)
    directory.mkdir()
    for path in cache_files(directory)[:3]:
        path.write_bytes(b"x")
    with pytest.raises(SystemExit) as exit_clear:
        main(["cache", "clear", "--cache-dir", str(directory)])
    assert exit_clear.value.code == 0 and "removed" in capsys.readouterr().out
    assert not any(path.exists() for path in cache_files(directory))


async def test_starting_a_server_touches_no_file(serve_fake, tmp_path):
    with serve_fake(curve_data(CSV)) as api:
        async with api.client(persistent_cache=True, cache_dir=str(tmp_path / "cache")) as client:
            await client.list_tools()
            assert not (tmp_path / "cache").exists()  # opened on the first tool call that needs it
            await client.call_tool("get_job", {"job_id": CURVE_JOB})
    assert (tmp_path / "cache" / FILE_NAME).exists()


def test_persistence_is_on_for_the_command_line_and_off_for_a_bare_settings_and_the_demo():
    assert Settings().persistent_cache is False
    assert Settings.from_env({}).persistent_cache is True
    assert Settings.from_env({}, demo=True).persistent_cache is False
    assert Settings.from_env({}, persistent_cache=False).persistent_cache is False


def test_several_writers_share_one_file(tmp_path):
    path = tmp_path / FILE_NAME
    backends = [SQLiteBackend(path, "ns", max_bytes=1 << 20) for _ in range(3)]

    def write(n: int) -> None:
        anyio.run(_put_many, backends[n], n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for backend in backends:
        backend.close()
        assert not backend.broken
    reader = SQLiteBackend(path, "ns", max_bytes=1 << 20)

    async def read_all() -> list[Entry | None]:
        return [await reader.get(("file", f"{n}-{i}")) for n in range(3) for i in range(20)]

    assert all(entry is not None for entry in anyio.run(read_all))
    reader.close()


async def _put_many(backend: SQLiteBackend, n: int) -> None:
    for i in range(20):
        await backend.put(("file", f"{n}-{i}"), b"x" * 100, stored_at=1.0, size=100)
