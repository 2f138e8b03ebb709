"""The persistent cache when its file cannot be used, and when several processes share it, through the real MCP
client (in memory, or over stdio to a real server process): a file another process holds locked, a read-only
directory or file (also when the tests run as root), a full disk (a file-size limit), a corrupt file; several
stdio servers reading and writing one cache directory at once, and a later one answering with no request."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from openai_checkpoints_mcp.api.sqlite_cache import BUSY_TIMEOUT_MS, FILE_NAME
from openai_checkpoints_mcp.cli import main
from openai_checkpoints_mcp.config import CACHE_DIR_ENV
from openai_checkpoints_mcp.fake import FakeData

from .helpers import TEST_KEY, checkpoint, console_script, fake_id, job, result_file

pytestmark = pytest.mark.anyio

LOGGER = "openai_checkpoints_mcp.api.sqlite_cache"
BUSY_TIMEOUT = BUSY_TIMEOUT_MS / 1000
MARGIN = 1.5
"""Seconds a call may take beyond what it waits for a lock (a loaded 2-core machine included)."""
NOBODY = 65534


def _csv(rows: int, best: int) -> bytes:
    """A result file of `rows` steps whose validation loss is lowest at step `best`."""
    lines = (f"{step},{1 / step:.5f},{0.5 + abs(step - best) / 1000:.5f}\n" for step in range(1, rows + 1))
    return b"step,train_loss,valid_loss\n" + "".join(lines).encode()


def _jobs(count: int, *, rows: int = 300) -> tuple[FakeData, list[str]]:
    """`count` succeeded jobs, each with three checkpoints and its own result file of `rows` steps."""
    data = FakeData()
    ids = []
    for n in range(count):
        job_id, file_id = fake_id("ftjob-", 900 + n), fake_id("file-", 900 + n)
        ids.append(job_id)
        data.jobs.append(job(job_id, created_at=1754035200 + 10 * n, result_files=[file_id]))
        data.checkpoints[job_id] = [
            checkpoint(job_id, step, {"train_loss": 0.3, "full_valid_loss": 0.6 + abs(step - 200) / 1000}, n=n * 10 + k)
            for k, step in enumerate((100, 200, 300))
        ]
        data.files[file_id] = result_file(_csv(rows, best=100 + 20 * n))
        data.files[file_id].meta["id"] = file_id
    return data, ids


def _questions(job_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    tools = ("best_checkpoint", "list_checkpoints", "training_metrics", "get_job")
    return [(tool, {"job_id": job_id}) for job_id in job_ids for tool in tools]


def _answer(result: Any) -> dict[str, Any]:
    """A successful result's structured content, without the request count (which the cache changes)."""
    assert result.is_error is False, result.content
    content: dict[str, Any] = dict(result.structured_content)
    content.pop("upstream_requests", None)
    return content


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


@dataclass
class Session:
    """What one server answered (in order), how long each call took, and its log."""

    results: list[Any]
    seconds: list[float]
    log: str

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.log.splitlines() if " WARNING " in line or " ERROR " in line]


async def _in_memory(api: Any, directory: Path, calls: list[tuple[str, dict[str, Any]]]) -> Session:
    """`calls` in order on one new in-memory server persisting to `directory` (logs go to caplog)."""
    results, seconds = [], []
    async with api.client(persistent_cache=True, cache_dir=str(directory)) as client:
        for tool, arguments in calls:
            started = time.perf_counter()
            results.append(await client.call_tool(tool, arguments))
            seconds.append(time.perf_counter() - started)
    return Session(results, seconds, "")


PRELUDE = """\
import ctypes, os, resource, signal, sys
drop, file_size, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
if file_size >= 0:  # writes past file_size bytes fail with EFBIG, as on a full disk (SIGXFSZ would kill instead)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
if drop == "uid":
    os.setgroups([]); os.setgid(NOBODY); os.setuid(NOBODY)
elif drop == "caps":  # still root, but file permissions apply: no DAC override, no DAC read search, no fowner
    for cap in (1, 2, 3):
        if ctypes.CDLL(None, use_errno=True).prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
os.execv(command[0], command)
""".replace("NOBODY", str(NOBODY))
"""Runs a command (argv[3:]) under a file-size limit (argv[2], -1 for none) and with privileges dropped (argv[1]:
``uid`` to nobody, ``caps`` to root without the capabilities that override file permissions, ``none``)."""


async def _stdio(
    api: Any,
    directory: Path,
    calls: list[tuple[str, dict[str, Any]]],
    *,
    drop: str = "none",
    file_size: int = -1,
) -> Session:
    """`calls` in order on a new stdio server process (the console script, as a client starts it) persisting to
    `directory`, with the key and base URL of `api` in its environment."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(directory.parent),
        "OPENAI_API_KEY": TEST_KEY,
        "OPENAI_BASE_URL": api.base_url,
        CACHE_DIR_ENV: str(directory),
    }
    args = ["-c", PRELUDE, drop, str(file_size), console_script(), "--log-level", "INFO"]
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    results, seconds = [], []
    with tempfile.TemporaryFile("w+") as errlog, anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            for tool, arguments in calls:
                started = time.perf_counter()
                results.append(await client.call_tool(tool, arguments))
                seconds.append(time.perf_counter() - started)
        errlog.seek(0)
        log = errlog.read()
    assert "serving over stdio" in log, log  # the server ran and logged to the file
    return Session(results, seconds, log)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A per-test directory every user can enter (pytest's tmp_path is private to root when running as root), removed
    afterwards whatever was made read-only in it."""
    directory = Path(tempfile.mkdtemp(prefix="openai-checkpoints-mcp-cache-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        for path in [directory, *directory.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o700)
        shutil.rmtree(directory, ignore_errors=True)


# --- a file another process holds locked -----------------------------------------------------------------------

LOCKER = """\
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute(sys.argv[2])
print("locked", flush=True)
if float(sys.argv[3]) < 0:
    sys.stdin.read()
else:
    time.sleep(float(sys.argv[3]))
conn.execute("COMMIT")
"""


@contextmanager
def _locked(path: Path, statement: str = "BEGIN EXCLUSIVE", seconds: float = -1) -> Iterator[None]:
    """Another process holds `path` with `statement` (``BEGIN EXCLUSIVE``: no other writer, and no reader unless the
    file is in WAL mode) for `seconds`, or until the context ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path), statement, str(seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


@pytest.mark.parametrize("written", [False, True], ids=["new-file", "wal-file-with-entries"])
async def test_a_locked_file_costs_one_busy_timeout_at_most_and_one_warning(serve_fake, tmp_path, caplog, written):
    """Another process holds ``BEGIN EXCLUSIVE`` for the whole session: every call answers, at most one waits the busy
    timeout (then the server goes on without persistence), and one warning says so."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data, ids = _jobs(2)
    directory = tmp_path / "cache"
    calls = _questions(ids)
    with serve_fake(data) as api:
        reference = await _in_memory(api, tmp_path / "reference", calls)  # the same calls on a new, unlocked file
        if written:
            await _in_memory(api, directory, calls)  # a WAL file holding every answer: readable despite the lock
        else:
            directory.mkdir()
        caplog.clear()
        with _locked(directory / FILE_NAME):
            session = await _in_memory(api, directory, calls)
    assert [_answer(r) for r in session.results] == [_answer(r) for r in reference.results]
    assert len(_warnings(caplog)) == 1, _warnings(caplog)
    assert "database is locked" in _warnings(caplog)[0]
    assert session.seconds[0] < reference.seconds[0] + BUSY_TIMEOUT + MARGIN, (session.seconds, reference.seconds)
    assert max(session.seconds[1:]) < 0.75 * BUSY_TIMEOUT, session.seconds  # the first failure was the last wait


@pytest.mark.parametrize("statement", ["BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"])
async def test_a_lock_held_briefly_while_the_file_is_opened_is_waited_for(serve_fake, tmp_path, caplog, statement):
    """A lock held for less than the busy timeout (another process opening or writing the new file) is waited for,
    whatever the lock: the server then persists as usual, with no warning. (Switching a new file to WAL mode while
    another process holds its write lock fails at once, without the busy handler; the server retries it.)"""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data, ids = _jobs(1)
    directory = tmp_path / "cache"
    directory.mkdir()
    with serve_fake(data) as api:
        with _locked(directory / FILE_NAME, statement, seconds=BUSY_TIMEOUT / 2):
            first = await _in_memory(api, directory, _questions(ids))
        before = len(api.upstream_requests("/"))
        second = await _in_memory(api, directory, _questions(ids))
        assert len(api.upstream_requests("/")) == before  # the first server did persist
    assert _warnings(caplog) == []
    assert [_answer(r) for r in second.results] == [_answer(r) for r in first.results]


# --- a read-only directory or file, even as root -------------------------------------------------------------------

PROBE = """\
import pathlib, sys
import openai_checkpoints_mcp.server
try:
    pathlib.Path(sys.argv[1], "probe").touch()
except PermissionError:
    sys.exit(0)
sys.exit(3)
"""


@functools.cache
def _read_only_drop() -> str | None:
    """How a server process is kept from writing to a read-only directory: ``none`` unless the tests run as root;
    as root, ``uid`` (run as nobody) if nobody can run the installed package, else ``caps`` (root without the
    capabilities that override file permissions); None if neither works here. Checked by running the prelude."""
    if os.geteuid() != 0:
        return "none"
    with tempfile.TemporaryDirectory() as scratch:
        read_only = Path(scratch, "read-only")
        read_only.mkdir(mode=0o555)
        Path(scratch).chmod(0o755)
        for drop in ("uid", "caps"):
            command = [sys.executable, "-c", PRELUDE, drop, "-1", sys.executable, "-c", PROBE, str(read_only)]
            if subprocess.run(command, capture_output=True, timeout=60).returncode == 0:
                return drop
        read_only.chmod(0o700)
    return None


@pytest.mark.parametrize("what", ["directory", "file"])
async def test_a_read_only_cache_never_fails_a_tool_even_as_root(serve_fake, shared_tmp, what):
    """A read-only cache directory (nothing there yet), or a read-only cache file that an earlier process wrote in a
    read-only directory: the server answers every call and logs one warning. As root (CI), the server process runs
    as nobody, or as root without the capabilities that override file permissions, so the test runs there too."""
    drop = _read_only_drop()
    if drop is None:
        pytest.skip("as root, neither nobody nor a root without CAP_DAC_OVERRIDE can run the server here")
    data, ids = _jobs(1)
    directory = shared_tmp / "cache"
    calls = _questions(ids)
    with serve_fake(data) as api:
        expected = [_answer(r) for r in (await _in_memory(api, shared_tmp / "reference", calls)).results]
        if what == "file":
            await _in_memory(api, directory, calls)
            for path in directory.iterdir():
                path.chmod(0o444)
        else:
            directory.mkdir()
        directory.chmod(0o555)
        session = await _stdio(api, directory, calls, drop=drop)
    assert [_answer(r) for r in session.results] == expected
    assert len(session.warnings) == 1, session.log
    assert "persistent cache" in session.warnings[0] and "Traceback" not in session.log


# --- a full disk -----------------------------------------------------------------------------------------------------


async def test_a_full_disk_never_fails_a_tool_and_leaves_the_file_usable(serve_fake, tmp_path, caplog):
    """The server process runs under a file-size limit of 64 KiB, so writing a 100 KB result file into the cache fails
    as on a full disk (EFBIG): every call answers, one warning names the write's own error, no traceback; a later
    server without the limit uses the same file with no warning and answers the same."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data, ids = _jobs(1, rows=4_000)
    directory = tmp_path / "cache"
    calls = _questions(ids)
    with serve_fake(data) as api:
        expected = [_answer(r) for r in (await _in_memory(api, tmp_path / "reference", calls)).results]
        full = await _stdio(api, directory, calls, file_size=64 * 1024)
        assert (directory / FILE_NAME).exists()
        later = await _in_memory(api, directory, calls)
    assert [_answer(r) for r in full.results] == expected
    assert len(full.warnings) == 1, full.log
    assert "(write: OperationalError: disk I/O error)" in full.warnings[0], full.warnings  # not ROLLBACK's error
    assert "Traceback" not in full.log and full.log.count("\n") < 20, full.log
    assert [_answer(r) for r in later.results] == expected
    assert _warnings(caplog) == []


# --- a corrupt file --------------------------------------------------------------------------------------------------


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 512)


def _damaged_pages(path: Path) -> None:
    """A real cache file whose pages after the first (the header and schema) are overwritten."""
    size = path.stat().st_size
    assert size > 8192
    with path.open("r+b") as file:
        file.seek(4096)
        file.write(b"\xa5" * (size - 4096))


@pytest.mark.parametrize("spoil", [_garbage, _damaged_pages])
async def test_a_corrupt_file_is_left_alone_with_one_warning_until_cache_clear(serve_fake, tmp_path, caplog, spoil):
    """A corrupt file is not rebuilt (it may be something else than our cache): each new server answers every call
    from the API, warns once, naming ``cache clear``, and leaves the bytes as they were; after ``cache clear`` the
    next server persists again."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data, ids = _jobs(1)
    directory = tmp_path / "cache"
    calls = _questions(ids)
    with serve_fake(data) as api:
        expected = [_answer(r) for r in (await _in_memory(api, directory, calls)).results]
        spoil(directory / FILE_NAME)
        spoiled = (directory / FILE_NAME).read_bytes()
        for _ in range(2):
            caplog.clear()
            before = len(api.upstream_requests("/"))
            session = await _in_memory(api, directory, calls)
            assert [_answer(r) for r in session.results] == expected
            assert len(api.upstream_requests("/")) > before
            assert len(_warnings(caplog)) == 1 and "cache clear" in _warnings(caplog)[0], _warnings(caplog)
            assert (directory / FILE_NAME).read_bytes() == spoiled
        with pytest.raises(SystemExit):
            main(["cache", "clear", "--cache-dir", str(directory)])
        caplog.clear()
        await _in_memory(api, directory, calls)
        before = len(api.upstream_requests("/"))
        await _in_memory(api, directory, calls)
        assert len(api.upstream_requests("/")) == before
    assert _warnings(caplog) == []


# --- several processes on one file ---------------------------------------------------------------------------------


async def test_several_server_processes_share_one_cache_file(serve_fake, tmp_path):
    """Three stdio servers started at once on a new cache directory ask about the same three jobs in different orders
    (so they create the file, read and write it at the same time): no warning, the same answers; a fourth server,
    started afterwards, answers every question with no upstream request."""
    data, ids = _jobs(3)
    directory = tmp_path / "cache"
    orders = [_questions(ids[n:] + ids[:n]) for n in range(3)]
    sessions: dict[int, Session] = {}
    with serve_fake(data) as api:
        expected = {
            (tool, args["job_id"]): _answer(r)
            for (tool, args), r in zip(
                orders[0], (await _in_memory(api, tmp_path / "reference", orders[0])).results, strict=True
            )
        }

        async def run(n: int) -> None:
            sessions[n] = await _stdio(api, directory, orders[n])

        async with anyio.create_task_group() as group:
            for n in range(3):
                group.start_soon(run, n)
        before = len(api.upstream_requests("/"))
        later = await _stdio(api, directory, orders[0])
        assert len(api.upstream_requests("/")) == before
    for n, session in sessions.items():
        assert session.warnings == [], session.log
        for (tool, args), result in zip(orders[n], session.results, strict=True):
            assert _answer(result) == expected[tool, args["job_id"]]
    assert later.warnings == [], later.log
    for (tool, args), result in zip(orders[0], later.results, strict=True):
        assert _answer(result) == expected[tool, args["job_id"]]
        assert result.structured_content.get("upstream_requests", 0) == 0
