"""The shared Redis cache, against a real ``redis-server`` started per test on a free port (never a mock): two server
processes share what one read; another account sees nothing; running jobs are never kept; Redis down, killed, silent
or answering garbage never fails or noticeably delays a tool, warns once and is used again after the back-off; the
size bound evicts the least recently used entries across namespaces; ``refresh=true`` bypasses; the command line's
checks. Without redis-server these tests fail in CI (``CI=true``) and are skipped elsewhere."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from openai_checkpoints_mcp.api import redis_cache
from openai_checkpoints_mcp.api.cache import Entry, account_namespace
from openai_checkpoints_mcp.api.redis_cache import PREFIX, RedisBackend
from openai_checkpoints_mcp.api.sqlite_cache import FILE_NAME
from openai_checkpoints_mcp.cli import main
from openai_checkpoints_mcp.config import CACHE_DIR_ENV, CACHE_URL_ENV, REDIS_EXTRA, CacheUrlError, Settings
from openai_checkpoints_mcp.fake import FakeData

from .helpers import (
    CURVE_JOB,
    RESULT_FILE,
    TEST_KEY,
    checkpoint,
    clean_env,
    console_script,
    curve_data,
    error_text,
    job,
)

pytestmark = pytest.mark.anyio

LOGGER = "openai_checkpoints_mcp.api.redis_cache"
CSV = b"step,train_loss,valid_loss\n" + b"".join(
    f"{step},{1 / step:.4f},{0.5 + abs(step - 200) / 1000:.4f}\n".encode() for step in range(1, 301)
)
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("best_checkpoint", {"job_id": CURVE_JOB}),
    ("list_checkpoints", {"job_id": CURVE_JOB}),
    ("training_metrics", {"job_id": CURVE_JOB}),
]
PASSWORD = "pw-9f8e7d6c5b4aSECRET"
DEBUG_NO_RETRIES = ["--log-level", "DEBUG", "--max-retries", "0"]


# --- a real redis-server per test ---------------------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A redis-server of our own (no persistence), on `port` or on the unix socket `unix_socket`."""

    directory: Path
    port: int = 0
    unix_socket: Path | None = None
    password: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.unix_socket is not None:
            return f"unix://{auth}{self.unix_socket}?db=0"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain client, to look at what the server wrote."""
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        args = [_redis_server_binary(), "--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        if self.unix_socket is not None:
            args += ["--port", "0", "--unixsocket", str(self.unix_socket)]
        else:
            args += ["--port", str(self.port), "--bind", "127.0.0.1"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OSError(f"redis-server exited with {self.process.returncode} (port {self.port} taken?)")
            try:
                with self.client() as probe:
                    if probe.ping():
                        return
            except redis.RedisError:
                time.sleep(0.02)
        raise TimeoutError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def entry_keys(self) -> list[bytes]:
        with self.client() as db:
            return sorted(db.scan_iter(match=f"{PREFIX}e:*"))


def _running_redis(directory: Path, **options: Any) -> RedisServer:
    for _ in range(5):  # another process may take the free port before redis-server binds it
        server = RedisServer(directory, port=_free_port(), **options)
        try:
            server.start()
            return server
        except OSError:
            server.stop()
    raise OSError("no free port for redis-server")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    _redis_server_binary()
    with tempfile.TemporaryDirectory(prefix="redis-") as directory:
        server = _running_redis(Path(directory))
        try:
            yield server
        finally:
            server.stop()


# --- helpers --------------------------------------------------------------------------------------------------------


async def _answers(api: Any, url: str, calls: list[tuple[str, dict[str, Any]]] = CALLS, **overrides: Any) -> list[Any]:
    """The results of `calls` in one new (in-process) server whose cache is the Redis database at `url`."""
    async with api.client(cache_url=url, **overrides) as client:
        return [await client.call_tool(tool, args) for tool, args in calls]


def _without_counts(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    data = dict(result.structured_content)
    data.pop("upstream_requests", None)
    return data


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def _everything_stored(server: RedisServer) -> bytes:
    """Every key and value in the database, concatenated."""
    parts: list[bytes] = []
    with server.client() as db:
        for name in db.scan_iter():
            parts.append(name)
            kind = db.type(name)
            if kind == b"hash":
                parts += [b for pair in db.hgetall(name).items() for b in pair]
            elif kind == b"zset":
                parts += db.zrange(name, 0, -1)
            elif kind == b"string":
                parts.append(db.get(name) or b"")
    return b"".join(parts)


async def _written(server: RedisServer) -> None:
    """Wait until the writer task has sent the first entries (it does so in the background)."""
    with anyio.fail_after(5):
        while not server.entry_keys():
            await anyio.sleep(0.01)


def _two_jobs() -> tuple[FakeData, list[str]]:
    ids = ["ftjob-Redis00000000000000000000A1", "ftjob-Redis00000000000000000000B2"]
    data = FakeData()
    for n, job_id in enumerate(ids):
        data.jobs.append(job(job_id, created_at=1754035200 + n))
        data.checkpoints[job_id] = [
            checkpoint(job_id, step, {"full_valid_loss": 0.3 + abs(step - 200) / 1000}, n=100 * n + step)
            for step in (100, 200, 300)
        ]
    return data, ids


# --- shared between processes -------------------------------------------------------------------------------------


async def test_a_second_server_process_answers_a_finished_job_with_no_request(serve_fake, redis_server, tmp_path):
    """Two stdio server processes (the real MCP client over stdio) and a ``call`` with the variable instead of the
    flag, on the same Redis: the second and third make no upstream request, and no cache file is written."""
    cache_dir = tmp_path / "cache-dir"
    with serve_fake(curve_data(CSV)) as api:
        env = clean_env(OPENAI_API_KEY=TEST_KEY, OPENAI_BASE_URL=api.base_url, **{CACHE_DIR_ENV: str(cache_dir)})

        async def over_stdio(errlog: Any) -> list[Any]:
            params = StdioServerParameters(
                command=console_script(), args=["--cache-url", redis_server.url, "--log-level", "DEBUG"], env=env
            )
            with anyio.fail_after(60):
                async with Client(stdio_client(params, errlog=errlog)) as client:
                    return [await client.call_tool(tool, args) for tool, args in CALLS]

        with tempfile.TemporaryFile("w+") as errlog:
            first = await over_stdio(errlog)
            read = len(api.upstream_requests("/"))
            second = await over_stdio(errlog)
            assert len(api.upstream_requests("/")) == read > 0
            errlog.seek(0)
            logs = errlog.read()
        done = subprocess.run(
            [console_script(), "call", "list_checkpoints", f"job_id={CURVE_JOB}"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, CACHE_URL_ENV: redis_server.url},
        )
        assert done.returncode == 0, done.stderr
        assert len(api.upstream_requests("/")) == read
    for old, new in zip(first, second, strict=True):
        assert new.structured_content.get("upstream_requests", 0) == 0  # training_metrics counts them too
        assert _without_counts(new) == _without_counts(old)
    assert json.loads(done.stdout)["job_id"] == CURVE_JOB
    assert not (cache_dir / FILE_NAME).exists()  # Redis replaces the file
    assert "WARNING" not in logs and TEST_KEY not in logs + done.stderr
    stored = _everything_stored(redis_server)
    assert CURVE_JOB.encode() in stored and CSV in stored and TEST_KEY.encode() not in stored


async def test_another_key_project_or_base_url_sees_nothing(serve_fake, redis_server):
    with serve_fake(curve_data(CSV)) as api, serve_fake(FakeData()) as empty:
        await _answers(api, redis_server.url)
        other_key = await _answers(api, redis_server.url, api_key="sk-other-key-000000000000")
        assert error_text(other_key[0]).startswith("auth_failed: ")
        before = len(api.upstream_requests())
        other_project = await _answers(api, redis_server.url, project="proj_other")
        assert len(api.upstream_requests()) > before and not other_project[0].is_error
        elsewhere = await _answers(api, redis_server.url, base_url=empty.base_url)
        assert error_text(elsewhere[0]).startswith("not_found: ")
        namespaces = {account_namespace(api.base_url, None, p, TEST_KEY, "Authorization") for p in (None, "proj_other")}
    found = {name.decode().split(":")[3] for name in redis_server.entry_keys()}
    assert found == namespaces  # each account under its own digest; nothing else was kept


async def test_a_running_job_is_never_kept_and_is_read_again(serve_fake, redis_server):
    with serve_fake(curve_data(CSV, status="running")) as api:
        await _answers(api, redis_server.url)
        before = len(api.upstream_requests(f"/jobs/{CURVE_JOB}"))
        await _answers(api, redis_server.url)
        assert len(api.upstream_requests(f"/jobs/{CURVE_JOB}")) == 2 * before > 0
    assert redis_server.entry_keys() == []


async def test_refresh_true_reads_the_api_and_keeps_the_fresh_answer(serve_fake, redis_server):
    with serve_fake(curve_data(CSV)) as api:
        await _answers(api, redis_server.url)
        before = len(api.upstream_requests("/"))
        refreshed = await _answers(api, redis_server.url, [(tool, {**args, "refresh": True}) for tool, args in CALLS])
        after = len(api.upstream_requests("/"))
        assert after > before and refreshed[2].structured_content["upstream_requests"] > 0
        again = await _answers(api, redis_server.url)
        assert len(api.upstream_requests("/")) == after and again[2].structured_content["upstream_requests"] == 0


async def test_job_objects_expire_in_redis_and_checkpoints_and_files_do_not(serve_fake, redis_server):
    with serve_fake(curve_data(CSV)) as api:
        await _answers(api, redis_server.url, cache_ttl=120)
    with redis_server.client() as db:
        ttls = {name.decode().split(":")[4]: db.pttl(name) for name in redis_server.entry_keys()}
    assert set(ttls) == {"job", "checkpoints", "file"}
    assert 0 < ttls["job"] <= 120_000 and ttls["checkpoints"] == ttls["file"] == -1


async def test_an_entry_that_does_not_decode_is_dropped_and_read_from_the_api(serve_fake, redis_server):
    with serve_fake(curve_data(CSV)) as api:
        await _answers(api, redis_server.url)
        with redis_server.client() as db:
            for name in redis_server.entry_keys():
                if not name.endswith(RESULT_FILE.encode()):  # a file's bytes are what they are
                    db.hset(name, "v", b"{not json")
        before = len(api.upstream_requests("/"))
        results = await _answers(api, redis_server.url)
        assert len(api.upstream_requests("/")) > before and all(not r.is_error for r in results)
        after = len(api.upstream_requests("/"))
        await _answers(api, redis_server.url)  # what was read again was kept again
        assert len(api.upstream_requests("/")) == after


async def test_a_unix_socket_url_works(serve_fake, tmp_path):
    _redis_server_binary()
    server = RedisServer(tmp_path, unix_socket=tmp_path / "redis.sock", password=PASSWORD)
    server.start()
    try:
        with serve_fake(curve_data(CSV)) as api:
            await _answers(api, server.url)
            before = len(api.upstream_requests("/"))
            again = await _answers(api, server.url)
            assert len(api.upstream_requests("/")) == before > 0 and not any(r.is_error for r in again)
    finally:
        server.stop()


# --- the failure rule -----------------------------------------------------------------------------------------------


async def _timed(api: Any, **overrides: Any) -> tuple[float, list[Any]]:
    started = time.monotonic()
    async with api.client(**overrides) as client:
        results = [await client.call_tool(tool, args) for tool, args in CALLS]
    return time.monotonic() - started, results


async def test_redis_down_never_fails_a_tool_warns_once_and_is_used_again_after_the_back_off(
    serve_fake, tmp_path, caplog, monkeypatch
):
    caplog.set_level(logging.INFO, logger=LOGGER)
    monkeypatch.setattr(redis_cache, "RETRY_AFTER", 0.5)
    server = RedisServer(tmp_path, port=_free_port(), password=PASSWORD)  # not started: nothing listens there
    with serve_fake(curve_data(CSV)) as api:
        await _timed(api)  # warm
        baseline, expected = await _timed(api)
        down, results = await _timed(api, cache_url=server.url)
        assert [_without_counts(r) for r in results] == [_without_counts(r) for r in expected]
        assert down <= baseline + 0.5, (down, baseline)
        assert len(_warnings(caplog)) == 1 and PASSWORD not in caplog.text and ":***@" in caplog.text

        async with api.client(cache_url=server.url) as client:  # a long-running server: Redis comes back
            await client.call_tool("get_job", {"job_id": CURVE_JOB})
            await anyio.sleep(0.6)
            await client.call_tool("get_job", {"job_id": CURVE_JOB, "refresh": True})  # tried again: still down
            server.start()
            try:
                await anyio.sleep(0.6)
                for tool, args in CALLS:
                    assert not (await client.call_tool(tool, {**args, "refresh": True})).is_error
            except BaseException:
                server.stop()
                raise
        try:
            assert len(_warnings(caplog)) == 2  # one per outage: this server's, then nothing more
            assert any("used again" in r.getMessage() for r in caplog.records if r.name == LOGGER)
            before = len(api.upstream_requests("/"))
            again = await _answers(api, server.url)
            assert len(api.upstream_requests("/")) == before and not any(r.is_error for r in again)
        finally:
            server.stop()


async def test_redis_killed_mid_run_never_fails_a_tool_and_warns_once(serve_fake, redis_server, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    data, ids = _two_jobs()
    with serve_fake(data) as api:
        async with api.client(cache_url=redis_server.url) as client:
            first = await client.call_tool("best_checkpoint", {"job_id": ids[0]})
            assert not first.is_error
            await _written(redis_server)
            redis_server.stop()
            started = time.monotonic()
            results = [await client.call_tool(tool, {"job_id": job_id}) for tool, _ in CALLS[:2] for job_id in ids]
            elapsed = time.monotonic() - started
        assert all(not r.is_error for r in results), results
        assert results[1].structured_content["best"]["step_number"] == 200
    assert elapsed < 2.0, elapsed
    assert len(_warnings(caplog)) == 1, _warnings(caplog)


def _fake_redis(behaviour: str) -> tuple[socket.socket, threading.Event]:
    """A TCP listener that accepts and then never answers (``silent``) or answers what no Redis would (``garbage``)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            if behaviour == "garbage":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n\x00\xff not redis\r\n" * 4)
        for conn in held:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, stop


@pytest.mark.parametrize("behaviour", ["silent", "garbage"])
async def test_a_redis_that_never_answers_or_answers_garbage_costs_at_most_the_timeout_once(
    serve_fake, caplog, behaviour
):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    listener, stop = _fake_redis(behaviour)
    try:
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        with serve_fake(curve_data(CSV)) as api:
            await _timed(api)  # warm
            baseline, expected = await _timed(api)
            elapsed, results = await _timed(api, cache_url=url)
    finally:
        stop.set()
        listener.close()
    assert [_without_counts(r) for r in results] == [_without_counts(r) for r in expected]
    # The timeout once for the reads and once for the queued writes (flushed at close), and slack for a loaded
    # machine; a timeout per call (three calls, their reads and writes) would cost well over this.
    assert elapsed <= baseline + 2 * redis_cache.TIMEOUT + 0.5, (elapsed, baseline)
    assert len(_warnings(caplog)) == 1, _warnings(caplog)


# --- the backend itself ---------------------------------------------------------------------------------------------


async def test_beyond_the_size_bound_the_least_recently_used_entries_go_across_namespaces(redis_server):
    def backend(namespace: str) -> RedisBackend:
        return RedisBackend(redis_server.url, namespace, max_bytes=2500, job_ttl=600)

    first = backend("a")
    await first.put(("file", "1"), bytes(1000), stored_at=1.0, size=1000)
    await first.put(("file", "2"), bytes(1000), stored_at=2.0, size=1000)
    await first.aclose()
    reader = backend("a")
    assert await reader.get(("file", "1")) == Entry(bytes(1000), 1.0, 1000)  # now more recently used than "2"
    await reader.aclose()
    other = backend("b")
    await other.put(("file", "3"), bytes(1000), stored_at=3.0, size=1000)  # 3000 > 2500: the LRU one goes
    await other.aclose()

    check = backend("a")
    assert await check.get(("file", "2")) is None
    assert await check.get(("file", "1")) is not None
    assert await backend("b").get(("file", "1")) is None  # namespaced: b's "1" is not a's
    await check.aclose()
    with redis_server.client() as db:
        assert int(db.get(PREFIX + "bytes") or 0) == 2000
        assert db.zcard(PREFIX + "lru") == db.hlen(PREFIX + "size") == 2
    assert len(redis_server.entry_keys()) == 2


async def test_an_entry_larger_than_the_bound_is_declined_and_evicts_nothing(redis_server):
    backend = RedisBackend(redis_server.url, "ns", max_bytes=1500, job_ttl=600)
    await backend.put(("file", "small"), bytes(1000), stored_at=1.0, size=1000)
    await backend.put(("file", "huge"), bytes(2000), stored_at=1.0, size=2000)
    await backend.aclose()
    check = RedisBackend(redis_server.url, "ns", max_bytes=1500, job_ttl=600)
    assert await check.get(("file", "huge")) is None and await check.get(("file", "small")) is not None
    await check.aclose()


async def test_queued_writes_are_read_back_at_once_and_all_flushed_at_close(redis_server):
    backend = RedisBackend(redis_server.url, "ns", max_bytes=1 << 20, job_ttl=600)
    for n in range(300):  # more than one pipeline
        await backend.put(("file", str(n)), b"x" * 10, stored_at=1.0, size=10)
    assert await backend.get(("file", "299")) == Entry(b"x" * 10, 1.0, 10)  # pending or written, never lost
    await backend.drop(("file", "0"))
    await backend.aclose()
    keys = redis_server.entry_keys()
    assert len(keys) == 299 and not any(name.endswith(b":file:0") for name in keys)


async def test_listings_are_never_sent_to_redis(redis_server):
    backend = RedisBackend(redis_server.url, "ns", max_bytes=1 << 20, job_ttl=600)
    await backend.put(("listing", "x"), object(), stored_at=1.0)
    assert await backend.get(("listing", "x")) is None
    await backend.aclose()
    assert redis_server.entry_keys() == []


# --- configuration and the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:6379/0", "localhost:6379", f"redis://:{PASSWORD}@host:port/0", "redis://host/zero", "unix://"],
)
def test_a_bad_cache_url_is_refused_with_one_line_and_exit_2(url, capsys):
    with pytest.raises(SystemExit) as refused:
        main(["call", "list_jobs", "--cache-url", url])
    out, err = capsys.readouterr()
    assert refused.value.code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: the cache URL "), err
    assert PASSWORD not in err


def test_a_bad_cache_url_in_the_environment_stops_the_server_with_one_line_and_no_traceback():
    done = subprocess.run(
        [console_script()],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(OPENAI_API_KEY=TEST_KEY, **{CACHE_URL_ENV: f"redis://:{PASSWORD}@host:port/0"}),
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: the cache URL redis://:***@host:port/0 ")
    assert PASSWORD not in done.stderr


def test_cache_url_and_no_persistent_cache_together_are_refused_and_the_flag_wins_over_the_variable(capsys):
    with pytest.raises(SystemExit) as refused:
        main(["--cache-url", "redis://127.0.0.1/0", "--no-persistent-cache", "call", "list_jobs"])
    assert refused.value.code == 2 and "contradict" in capsys.readouterr().err
    env = {CACHE_URL_ENV: "redis://127.0.0.1/0"}
    assert Settings.from_env(env).cache_url == "redis://127.0.0.1/0"
    assert Settings.from_env(env, persistent_cache=False).cache_url is None
    assert Settings.from_env(env, demo=True).cache_url is None
    with pytest.raises(CacheUrlError):
        Settings.from_env({}, cache_url="redis://h/0", persistent_cache=False)


def test_without_the_redis_package_cache_url_exits_with_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed: find_spec finds nothing, import fails
    with pytest.raises(SystemExit) as exited:
        main(["--cache-url", "redis://127.0.0.1/0", "call", "list_jobs"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and REDIS_EXTRA in err


def test_the_password_is_masked_in_the_settings_and_the_logs():
    url = f"redis://user:{PASSWORD}@127.0.0.1:{_free_port()}/0"
    assert PASSWORD not in repr(Settings(cache_url=url)) and "user:***@" in repr(Settings(cache_url=url))
    done = subprocess.run(
        [console_script(), "call", "get_job", f"job_id={CURVE_JOB}", "--cache-url", url, *DEBUG_NO_RETRIES],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(OPENAI_API_KEY=TEST_KEY, OPENAI_BASE_URL=f"http://127.0.0.1:{_free_port()}/v1"),
    )
    assert "cannot be used" in done.stderr and "user:***@" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout and TEST_KEY not in done.stderr + done.stdout


def test_cache_path_and_clear_with_a_cache_url(redis_server, capsys):
    with redis_server.client() as db:
        db.set(PREFIX + "e:ns:file:x", b"1")
        db.set("someone-else:key", b"kept")
    with pytest.raises(SystemExit) as path:
        main(["cache", "path", "--cache-url", redis_server.url])
    assert path.value.code == 0 and capsys.readouterr().out.strip() == redis_server.url
    with pytest.raises(SystemExit) as cleared:
        main(["cache", "clear", "--cache-url", redis_server.url])
    assert cleared.value.code == 0 and "removed 1 keys" in capsys.readouterr().out
    with redis_server.client() as db:
        assert db.keys("*") == [b"someone-else:key"]
