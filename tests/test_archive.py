"""The ``archive`` command: everything the API serves, in one SQLite file, over real HTTP against the fake; filters,
resumability after a failure and after kill -9, files that are not archives, progress without a terminal, the key
nowhere, and the demo archive."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import sqlite3
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from openai_checkpoints_mcp import cli
from openai_checkpoints_mcp.api.cache import MemoryBackend
from openai_checkpoints_mcp.api.store import JobStore
from openai_checkpoints_mcp.archive.database import ArchiveWriteError
from openai_checkpoints_mcp.archive.progress import BarProgress, PlainProgress, progress_for
from openai_checkpoints_mcp.archive.schema import ArchiveFileError
from openai_checkpoints_mcp.archive.writer import ARCHIVE_MAX_ITEMS, Receipt, Tally, _without_userinfo, write_archive
from openai_checkpoints_mcp.fake import DEMO_JOB_IDS, FakeData, FakeFile, Fault, demo_data
from openai_checkpoints_mcp.fake.curves import SFT_COLUMNS, LossCurve, loss_rows, result_csv

from .helpers import TEST_KEY, Clock, Harness, checkpoint, clean_env, console_script, fake_id, job

pytestmark = pytest.mark.anyio

TRAINING = "file-Tr41JkHs6GfD2qWe9XcVbN"  # the training and validation files helpers.job gives every job
VALIDATION = "file-Vd92LmQx7RtY3pKs8NwZaE"
STATUSES = ("succeeded", "failed", "running", "succeeded", "cancelled", "succeeded", "succeeded")
CREATED = 1_760_000_000


def event(job_id: str, n: int, at: int, message: str) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": fake_id("ftevent-", n),
        "created_at": at,
        "level": "warn" if n % 5 == 0 else "info",
        "message": message,
        "data": {"step": n},
        "type": "metrics" if n % 2 else "message",
        "x_event_extra": [n],  # a field the API may add one day: kept verbatim
    }


def result_bytes(n: int) -> bytes:
    curve = LossCurve(2.2, 0.3, 30.0, 0.1, valid_start=2.1, valid_floor=0.35, valid_tau=40.0)
    return result_csv(loss_rows(curve, steps_per_epoch=10 + n, n_epochs=3, validation=True, seed=f"t{n}"), SFT_COLUMNS)


def org(statuses: tuple[str, ...] = STATUSES, *, events: int = 7) -> FakeData:
    """Jobs newest last in `statuses` order (the listing serves them newest first), each with 3 checkpoints and
    `events` events; succeeded ones with a result file of their own; unknown fields on every kind of object."""
    data = FakeData()
    for n, status in enumerate(statuses):
        job_id = fake_id("ftjob-", 900 + n)
        result = [fake_id("file-", 900 + n, 22)] if status == "succeeded" else []
        body = job(
            job_id,
            status=status,
            created_at=CREATED + 1000 * n,
            result_files=result,
            metadata={"team": "support", "n": str(n)} if n % 2 else None,
            x_future_field={"kept": n},
        )
        data.jobs.append(body)
        cps = []
        for k, step in enumerate((100, 200, 300)):
            cp = checkpoint(job_id, step, {"train_loss": 0.5 - k / 10, "full_valid_loss": 0.4}, n=100 * n + k)
            cp["x_checkpoint_extra"] = {"step": step}
            cps.append(cp)
        data.checkpoints[job_id] = cps
        data.events[job_id] = [
            event(job_id, 100 * n + k, CREATED + 1000 * n + 10 * k, f"event {k} of {job_id}") for k in range(events)
        ]
        for file_id in result:
            content = result_bytes(n)
            meta = {"object": "file", "id": file_id, "purpose": "fine-tune-results", "bytes": len(content)}
            data.files[file_id] = FakeFile(meta=meta, content=content)
    data.models = [
        {"id": "gpt-4o-mini-2024-07-18", "object": "model", "created": 1721172741, "owned_by": "system"},
        {
            "id": "ft:gpt-4o-mini-2024-07-18:acme:support-bot:Bx72KpQd",
            "object": "model",
            "created": 1760003800,
            "owned_by": "org-acme",
            "x_model_extra": "kept",
        },
        {
            "id": "ft:gpt-4o-mini-2024-07-18:acme:support-bot:Bx72KpQd:ckpt-step-200",
            "object": "model",
            "created": 1760003700,
            "owned_by": "org-acme",
        },
    ]
    return data


def training_files(data: FakeData) -> None:
    for file_id, text in ((TRAINING, b'{"messages": []}\n' * 50), (VALIDATION, b'{"messages": [1]}\n' * 9)):
        data.files[file_id] = FakeFile(meta={"object": "file", "id": file_id, "purpose": "fine-tune"}, content=text)


@asynccontextmanager
async def archive_store(harness: Harness, **settings: Any) -> AsyncIterator[tuple[JobStore, Any]]:
    """A store as the command builds it: nothing cached, no list cut short."""
    chosen = replace(harness.settings, **({"max_items": ARCHIVE_MAX_ITEMS} | settings))
    store = JobStore.open(chosen, MemoryBackend(0))
    try:
        yield store, chosen
    finally:
        await store.aclose()


async def archive(harness: Harness, path: Path, **options: Any) -> Receipt:
    settings = {key: options.pop(key) for key in ("max_items", "concurrency") if key in options}
    async with archive_store(harness, **settings) as (store, chosen):
        return await write_archive(store, path, settings=chosen, **options)


@contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def rows(path: Path, query: str, *args: Any) -> list[sqlite3.Row]:
    with opened(path) as conn:
        return conn.execute(query, args).fetchall()


def per_job_requests(harness: Harness) -> list[str]:
    """Paths of the requests after the listing: a job's checkpoints, events or object, or a file."""
    return [
        r.path
        for r in harness.faults.requests
        if not r.path.endswith("/fine_tuning/jobs") and not r.path.endswith("/models")
    ]


def listing_requests(harness: Harness) -> int:
    return sum(r.path.endswith("/fine_tuning/jobs") for r in harness.faults.requests)


# --- what the archive holds ---------------------------------------------------------------------------------------


async def test_the_archive_holds_everything_the_fake_serves(serve_fake, tmp_path):
    path = tmp_path / "archive.sqlite3"
    data = org()
    with serve_fake(data, max_page_size=3) as harness:  # every list takes several pages
        receipt = await archive(harness, path)

    assert receipt.complete and receipt.run == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not Path(f"{path}-wal").exists(), "a finished run leaves one self-contained file"
    assert receipt.unfinished == [(data.jobs[2]["id"], "running")]
    jobs = {row["id"]: row for row in rows(path, "SELECT * FROM jobs")}
    assert set(jobs) == {j["id"] for j in data.jobs}
    for body in data.jobs:
        row = jobs[body["id"]]
        assert json.loads(row["raw"]) == body and json.loads(row["raw"])["x_future_field"] == body["x_future_field"]
        assert (row["status"], row["model"], row["created_at"], row["finished_at"]) == (
            body["status"],
            body["model"],
            body["created_at"],
            body["finished_at"],
        )
        assert (row["method"], row["suffix"], row["training_file"], row["validation_file"]) == (
            "supervised",
            "support-bot",
            TRAINING,
            VALIDATION,
        )
        assert row["metadata"] == (
            None if body["metadata"] is None else json.dumps(body["metadata"], separators=(",", ":"))
        )
        assert (row["complete"], row["problem"], row["run"]) == (1, None, 1)
        assert row["archived_at"].endswith("Z")

        checkpoints = rows(path, "SELECT * FROM checkpoints WHERE job_id = ? ORDER BY position", body["id"])
        served = sorted(data.checkpoints[body["id"]], key=lambda c: c["step_number"], reverse=True)  # API order
        assert [json.loads(c["raw"]) for c in checkpoints] == served
        assert [c["position"] for c in checkpoints] == [0, 1, 2]
        assert [c["step_number"] for c in checkpoints] == [300, 200, 100]
        assert json.loads(checkpoints[0]["metrics"]) == served[0]["metrics"]

        events = rows(path, "SELECT * FROM events WHERE job_id = ? ORDER BY position", body["id"])
        newest_first = sorted(data.events[body["id"]], key=lambda e: e["created_at"], reverse=True)
        assert [json.loads(e["raw"]) for e in events] == newest_first
        assert [(e["level"], e["type"], e["message"]) for e in events] == [
            (e["level"], e["type"], e["message"]) for e in newest_first
        ]

    files = {row["id"]: row for row in rows(path, "SELECT * FROM files")}
    assert set(files) == {fid for j in data.jobs for fid in j["result_files"]}
    for file_id, row in files.items():
        content = data.files[file_id].content
        assert (row["purpose"], row["encoding"], bytes(row["content"])) == ("result", "csv", content)
        assert (row["bytes"], row["sha256"]) == (len(content), hashlib.sha256(content).hexdigest())
        assert (row["served_bytes"], row["served_sha256"]) == (row["bytes"], row["sha256"])

    models = rows(path, "SELECT * FROM models ORDER BY id")
    assert [json.loads(m["raw"]) for m in models] == sorted(data.models or [], key=lambda m: m["id"])
    assert [m["fine_tuned"] for m in models] == [1, 0, 0]  # a checkpoint is not a fine-tuned model

    (manifest,) = rows(path, "SELECT * FROM manifest")
    assert manifest["finished_at"] and manifest["complete"] == 1
    assert manifest["base_url"] == harness.base_url and manifest["tool_version"]
    assert json.loads(manifest["filters"]) == {"since": None, "jobs": None, "include_training_files": False}
    expected = (len(data.jobs), 0, 3 * len(data.jobs), 7 * len(data.jobs), len(files), receipt.this_run.bytes, 3)
    columns = ("jobs", "incomplete_jobs", "checkpoints", "events", "files", "bytes", "models")
    assert tuple(manifest[c] for c in columns) == expected
    assert receipt.this_run.bytes == sum(len(data.files[f].content) for f in files)
    assert receipt.in_file == receipt.this_run
    with opened(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_base64_result_files_are_decoded(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org(("succeeded",))
    (file_id,) = data.jobs[0]["result_files"]
    with serve_fake(data, base64_results=True) as harness:
        assert (await archive(harness, path)).complete
    (row,) = rows(path, "SELECT * FROM files")
    csv_bytes = data.files[file_id].content
    served = base64.b64encode(csv_bytes)
    assert (row["encoding"], bytes(row["content"])) == ("base64", csv_bytes)
    assert (row["bytes"], row["sha256"]) == (len(csv_bytes), hashlib.sha256(csv_bytes).hexdigest())
    assert (row["served_bytes"], row["served_sha256"]) == (len(served), hashlib.sha256(served).hexdigest())


async def test_a_result_file_that_is_not_csv_is_kept_as_served_with_a_note(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org(("succeeded",))
    job_id, (file_id,) = data.jobs[0]["id"], data.jobs[0]["result_files"]
    data.files[file_id].content = b"<html><title>Maintenance</title></html>"
    with serve_fake(data) as harness:
        receipt = await archive(harness, path)
    assert receipt.complete, "what the API served is archived; there is nothing to read again"
    assert [(n.job_id, n.text.split(": ")[:2]) for n in receipt.notes] == [
        (job_id, [f"result file {file_id}", "unparsed"])
    ]
    (row,) = rows(path, "SELECT encoding, content FROM files")
    assert (row["encoding"], bytes(row["content"])) == ("unparsed", data.files[file_id].content)
    (job_row,) = rows(path, "SELECT complete, problem FROM jobs")
    assert job_row["complete"] == 1 and "HTML page" in job_row["problem"]


async def test_a_truncated_checkpoint_list_leaves_the_job_incomplete(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    with serve_fake(org(("succeeded",))) as harness:
        receipt = await archive(harness, path, max_items=2)
    assert not receipt.complete
    (row,) = rows(path, "SELECT complete, problem FROM jobs")
    assert row["complete"] == 0 and row["problem"].startswith("checkpoints: more than 2")
    assert len(rows(path, "SELECT id FROM checkpoints")) == 2


async def test_training_and_validation_files_are_read_once_for_all_the_jobs_that_share_them(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org(("succeeded", "failed", "succeeded", "succeeded"))
    training_files(data)
    with serve_fake(data) as harness:
        receipt = await archive(harness, path, include_training_files=True)
        fetched = [
            r.path for r in harness.faults.requests if r.path.endswith((f"{TRAINING}/content", f"{VALIDATION}/content"))
        ]
    assert receipt.complete
    assert sorted(p.rsplit("/", 2)[1] for p in fetched) == sorted([TRAINING, VALIDATION])
    shared = {r["id"]: r for r in rows(path, "SELECT * FROM files WHERE purpose != 'result'")}
    for file_id, purpose in ((TRAINING, "training"), (VALIDATION, "validation")):
        content = data.files[file_id].content
        assert (shared[file_id]["purpose"], shared[file_id]["encoding"]) == (purpose, "raw")
        assert bytes(shared[file_id]["content"]) == content
        assert shared[file_id]["sha256"] == shared[file_id]["served_sha256"] == hashlib.sha256(content).hexdigest()
    (manifest,) = rows(path, "SELECT filters, files FROM manifest")
    assert json.loads(manifest["filters"])["include_training_files"] is True and manifest["files"] == 3 + 2


async def test_a_deleted_training_file_is_a_note_and_a_failing_one_leaves_its_jobs_incomplete(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org(("succeeded", "succeeded"))
    training_files(data)
    del data.files[VALIDATION]
    with serve_fake(data) as harness:
        harness.faults.add(Fault(status=500, path_contains=f"/files/{TRAINING}/content", times=3))
        receipt = await archive(harness, path, include_training_files=True)
    assert not receipt.complete and len(receipt.incomplete) == 2
    for note in receipt.incomplete:
        assert note.text.startswith(f"training file {TRAINING}: upstream_unavailable: ")
    assert {(n.job_id, n.text.split(": ")[1]) for n in receipt.notes} == {(j["id"], "not_found") for j in data.jobs}
    assert rows(path, "SELECT id FROM files WHERE purpose != 'result'") == []

    with serve_fake(data) as harness:  # the training file can be read now; the validation file is still gone
        again = await archive(harness, path, include_training_files=True)
    assert again.complete and again.this_run.jobs == 2
    assert {r["id"] for r in rows(path, "SELECT id FROM files WHERE purpose = 'training'")} == {TRAINING}
    for row in rows(path, "SELECT complete, problem FROM jobs"):
        assert row["complete"] == 1 and row["problem"].startswith(f"validation file {VALIDATION}: not_found: ")


# --- filters -------------------------------------------------------------------------------------------------------


async def test_since_stops_the_listing_at_the_first_older_job(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org()  # 7 jobs, 1000 s apart; pages of 2
    newest_first = sorted(data.jobs, key=lambda j: j["created_at"], reverse=True)
    since = newest_first[2]["created_at"]
    with serve_fake(data, max_page_size=2) as harness:
        receipt = await archive(harness, path, since=since)
        assert listing_requests(harness) == 2, "the second page holds the first older job: no third page"
    assert receipt.complete
    assert {r["id"] for r in rows(path, "SELECT id FROM jobs")} == {j["id"] for j in newest_first[:3]}
    (manifest,) = rows(path, "SELECT filters FROM manifest")
    assert json.loads(manifest["filters"])["since"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))


async def test_named_jobs_are_read_alone_and_an_unknown_one_is_reported_not_inserted(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org()
    wanted = [data.jobs[0]["id"], data.jobs[3]["id"]]
    unknown = "ftjob-Unknown00000000000000000"
    with serve_fake(data) as harness:
        receipt = await archive(harness, path, job_ids=[*wanted, unknown, wanted[0]])
        assert listing_requests(harness) == 0
    assert not receipt.complete
    assert [(n.job_id, n.text.split(":")[0]) for n in receipt.unreadable] == [(unknown, "not_found")]
    assert receipt.this_run.jobs == 2 and receipt.this_run.incomplete_jobs == 1
    assert {r["id"] for r in rows(path, "SELECT id FROM jobs")} == set(wanted)
    (manifest,) = rows(path, "SELECT filters, complete, incomplete_jobs FROM manifest")
    assert json.loads(manifest["filters"])["jobs"] == [*wanted, unknown]
    assert (manifest["complete"], manifest["incomplete_jobs"]) == (0, 1)


# --- resuming --------------------------------------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, harness: Harness, *argv: str) -> int:
    """The command in this process, against the fake, as a user with a key runs it: its exit status."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", harness.base_url)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.main(["archive", *argv])
    return int(exited.value.code or 0)


def test_a_failed_result_file_is_recorded_and_only_that_job_is_read_again(serve_fake, tmp_path, capsys, monkeypatch):
    path = tmp_path / "a.sqlite3"
    data = org(("succeeded", "failed", "succeeded", "cancelled", "succeeded"))
    broken = data.jobs[2]
    (file_id,) = broken["result_files"]
    with serve_fake(data, max_page_size=2) as harness:
        harness.faults.add(Fault(status=404, path_contains=f"/files/{file_id}/content"))
        assert run_cli(capsys, monkeypatch, harness, str(path)) == 1
        out = capsys.readouterr().out
        assert "NOT complete" in out and f"{broken['id']}: result file {file_id}: not_found: " in out
        states = {r["id"]: (r["complete"], r["problem"]) for r in rows(path, "SELECT * FROM jobs")}
        assert states.pop(broken["id"])[1].startswith(f"result file {file_id}: not_found: ")
        assert set(states.values()) == {(1, None)}
        assert len(rows(path, "SELECT id FROM checkpoints WHERE job_id = ?", broken["id"])) == 3

        harness.faults.requests.clear()
        assert run_cli(capsys, monkeypatch, harness, str(path)) == 0
        again = per_job_requests(harness)
        assert again and all(broken["id"] in p or file_id in p for p in again), again
        assert sum(p.endswith(f"/files/{file_id}/content") for p in again) == 1
        out = capsys.readouterr().out
        assert "1 jobs read, 4 skipped as already complete" in out and "(run 2): complete" in out
    assert {(r["complete"], r["problem"]) for r in rows(path, "SELECT * FROM jobs")} == {(1, None)}
    runs = rows(path, "SELECT run, complete, jobs, incomplete_jobs, files FROM manifest ORDER BY run")
    assert [tuple(r) for r in runs] == [(1, 0, 5, 1, 2), (2, 1, 1, 0, 1)]


async def test_unfinished_jobs_are_read_again_and_a_changed_job_object_updates_its_row(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org(("succeeded", "running", "succeeded"))
    running, finished = data.jobs[1], data.jobs[2]
    with serve_fake(data) as harness:
        first = await archive(harness, path)
        assert first.complete and first.unfinished == [(running["id"], "running")]
        finished["metadata"] = {"team": "renamed"}
        harness.faults.requests.clear()
        second = await archive(harness, path)
        again = per_job_requests(harness)
    assert second.complete and (second.skipped, second.updated, second.this_run.jobs) == (2, 1, 1)
    assert again and all(running["id"] in p for p in again), "finished jobs are not read again"
    row = rows(path, "SELECT metadata, raw, run FROM jobs WHERE id = ?", finished["id"])[0]
    assert json.loads(row["metadata"]) == {"team": "renamed"} and json.loads(row["raw"]) == finished
    assert row["run"] == 2


async def test_a_failed_listing_is_reported_and_the_run_is_not_complete(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"

    class ListingFault(Fault):
        def matches(self, path: str) -> bool:
            return path.endswith("/fine_tuning/jobs")

    with serve_fake(org()) as harness:
        harness.faults.add(ListingFault(status=403))
        receipt = await archive(harness, path)
    assert not receipt.complete and receipt.listing_problem and receipt.listing_problem.startswith("permission_denied")
    (manifest,) = rows(path, "SELECT complete, finished_at FROM manifest")
    assert manifest["complete"] == 0 and manifest["finished_at"]


def test_kill_9_mid_run_leaves_a_consistent_file_and_a_rerun_completes(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org(("succeeded", "failed", "cancelled") * 10, events=3)
    with serve_fake(data, max_page_size=5) as harness:
        harness.faults.latency = 0.05
        env = clean_env(OPENAI_API_KEY=TEST_KEY, OPENAI_BASE_URL=harness.base_url)
        command = [console_script(), "archive", str(path), "--concurrency", "2"]
        with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
            deadline = time.monotonic() + 60
            written = 0
            while written < 4:
                assert process.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.05)
                if path.exists():
                    try:
                        written = len(rows(path, "SELECT id FROM jobs"))
                    except sqlite3.Error:  # not created yet
                        written = 0
            process.kill()
        with opened(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            (finished_at,) = conn.execute("SELECT finished_at FROM manifest").fetchone()
            assert finished_at is None, "an interrupted run leaves finished_at NULL"
            archived = [r[0] for r in conn.execute("SELECT id FROM jobs")]
            assert 4 <= len(archived) < len(data.jobs)
            for job_id in archived:
                count = conn.execute("SELECT count(*) FROM checkpoints WHERE job_id = ?", (job_id,)).fetchone()[0]
                events = conn.execute("SELECT count(*) FROM events WHERE job_id = ?", (job_id,)).fetchone()[0]
                assert (count, events) == (3, 3), job_id

        harness.faults.latency = 0.0
        rerun = subprocess.run([*command[:3]], env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "(run 2): complete" in rerun.stdout
    assert f"{len(data.jobs) - len(archived)} jobs read, {len(archived)} skipped as already complete" in rerun.stdout
    assert len(rows(path, "SELECT id FROM jobs WHERE complete = 1")) == len(data.jobs)


# --- files that are not archives, usage, progress, secrets, the demo ---------------------------------------------


def test_a_file_that_is_not_an_archive_is_refused_untouched(serve_fake, tmp_path, capsys, monkeypatch):
    text_file = tmp_path / "notes.txt"
    text_file.write_bytes(b"not a database\n" * 200)
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with serve_fake(org()) as harness:
        for path, reason in (
            (text_file, "is not a SQLite database"),
            (other, "is not an openai-checkpoints-mcp archive"),
        ):
            before = path.read_bytes()
            assert run_cli(capsys, monkeypatch, harness, str(path)) == 2
            err = capsys.readouterr().err.strip()
            assert err.startswith(f"error: {path} {reason}") and "\n" not in err
            assert path.read_bytes() == before
            assert not any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm", "-journal"))
        assert harness.faults.requests == []


async def test_write_archive_refuses_a_non_archive_before_any_request(serve_fake, tmp_path):
    path = tmp_path / "x"
    path.write_text("hello")
    with serve_fake(org()) as harness:
        with pytest.raises(ArchiveFileError):
            await archive(harness, path)
        assert harness.faults.requests == []
    with pytest.raises(ArchiveWriteError, match="cannot create"):
        async with archive_store(harness) as (store, chosen):
            await write_archive(store, tmp_path / "no such directory" / "a.sqlite3", settings=chosen)


@pytest.mark.parametrize(
    "argv",
    [
        ["archive", "f.sqlite3", "--since", "last tuesday"],
        ["archive", "f.sqlite3", "--since", "2026-11-01", "--job", "ftjob-abc"],
        ["archive", "f.sqlite3", "--job", "ftjob-../../files"],
        ["archive"],
        ["archive", "f.sqlite3", "--port", "8000"],
    ],
)
def test_usage_errors_exit_2(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert not (tmp_path / "f.sqlite3").exists()


def test_without_a_key_nothing_is_created(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["archive", str(tmp_path / "a.sqlite3")])
    assert exited.value.code == 1
    assert "auth_missing" in capsys.readouterr().err and not (tmp_path / "a.sqlite3").exists()


def test_plain_progress_prints_a_line_every_two_seconds_at_most():
    clock, stream = Clock(0.0), io.StringIO()
    progress = PlainProgress(stream, clock=clock)
    tally = Tally()
    for n in range(1000):  # 1000 jobs in 10 s
        clock.now = n / 100
        tally.selected, tally.done = 1000, n + 1
        tally.selection_done = n >= 500
        progress(tally)
    progress.close()
    printed = stream.getvalue().splitlines()
    assert 5 <= len(printed) <= 6
    assert printed[0] == "archive: 201 of 1,000+ jobs, 0 skipped as complete, 0 incomplete, 2 s"
    assert printed[-1] == "archive: 1,000 of 1,000 jobs, 0 skipped as complete, 0 incomplete, 10 s"


def test_on_a_terminal_progress_is_a_bar_whose_total_is_set_once_the_listing_ends():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = progress_for(stream)
    assert isinstance(progress, BarProgress)
    tally = Tally(selected=40, done=10)
    progress(tally)
    assert "job" in stream.getvalue() and "/40" not in stream.getvalue(), "no total while the listing goes on"
    tally.selection_done, tally.done = True, 40
    progress(tally)
    progress.close()
    assert "40/40" in stream.getvalue()
    assert isinstance(progress_for(io.StringIO()), PlainProgress)


def test_the_manifest_never_holds_a_password_of_the_base_url():
    assert _without_userinfo("https://user:sk-secret@proxy.example/v1") == "https://proxy.example/v1"
    assert _without_userinfo("https://api.openai.com/v1") == "https://api.openai.com/v1"


def test_without_a_terminal_progress_is_a_few_plain_lines_and_the_key_is_nowhere(serve_fake, tmp_path):
    path = tmp_path / "a.sqlite3"
    data = org(("succeeded", "failed", "succeeded"))
    with serve_fake(data) as harness:
        # An upstream error that echoes the key: the problem recorded in the file must not.
        body = {"error": {"message": f"Incorrect API key provided: {TEST_KEY}", "type": "invalid_request_error"}}
        harness.faults.add(Fault(status=400, body=body, path_contains=f"{data.jobs[0]['id']}/events"))
        env = clean_env(OPENAI_API_KEY=TEST_KEY, OPENAI_BASE_URL=harness.base_url)
        done = subprocess.run(
            [console_script(), "archive", str(path), "--log-level", "DEBUG"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("archive: ")]
    assert 1 <= len(progress) <= 3, done.stderr
    assert re.fullmatch(r"archive: 3 of 3 jobs, 0 skipped as complete, 1 incomplete, \d+ s", progress[-1])
    assert "\r" not in done.stderr, "no bar without a terminal"
    (problem,) = [r["problem"] for r in rows(path, "SELECT problem FROM jobs WHERE complete = 0")]
    assert problem.startswith("events: invalid_argument: ") and "Incorrect API key provided: ***" in problem
    for where, text in (("stdout", done.stdout), ("stderr", done.stderr)):
        assert TEST_KEY not in text, where
    for file in path.parent.iterdir():
        assert TEST_KEY.encode() not in file.read_bytes(), file


def test_the_demo_archive_needs_no_key_and_no_network(tmp_path):
    path = tmp_path / "demo.sqlite3"
    done = subprocess.run(
        [console_script(), "archive", str(path), "--demo"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(run 1): complete" in done.stdout and str(path) in done.stdout
    demo = demo_data()
    assert {r["id"] for r in rows(path, "SELECT id FROM jobs")} == set(DEMO_JOB_IDS.values())
    assert len(rows(path, "SELECT id FROM checkpoints")) == sum(len(c) for c in demo.checkpoints.values())
    assert len(rows(path, "SELECT id FROM events")) == sum(len(e) for e in demo.events.values())
    (manifest,) = rows(path, "SELECT base_url, complete FROM manifest")
    assert manifest["complete"] == 1 and ".invalid/" in manifest["base_url"]
    assert os.stat(path).st_mode & 0o077 == 0
