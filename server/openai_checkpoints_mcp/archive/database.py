"""Writing the archive file: opening (or creating) it, and one transaction per job, run, file or models list.

`ArchiveDatabase` wraps the one connection of a run; its methods block, and `ArchiveDatabase.call` runs them in a
worker thread, one at a time, so the event loop never waits on the disk. Every object is stored with its API
payload verbatim (``raw``, compact JSON) beside the query columns of `schema`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ..analysis.result_file import ResultFileError, decode_result_file
from ..api.models import TERMINAL_STATUSES, Checkpoint, Event, Job, Model
from . import schema

BUSY_TIMEOUT = 5.0
"""Seconds a statement waits for another connection's lock (a reader of the file) before failing."""
T = TypeVar("T")


class ArchiveWriteError(Exception):
    """The archive file cannot be written (a full disk, a read-only file or directory); the message says which."""


@dataclass(frozen=True)
class Counts:
    jobs: int = 0
    checkpoints: int = 0
    events: int = 0
    files: int = 0
    bytes: int = 0
    """Bytes of the files' `content` (the CSV, for a base64-served result file)."""
    models: int = 0
    incomplete_jobs: int = 0


_JOB_COLUMNS = (
    "id, status, model, fine_tuned_model, suffix, method, created_at, finished_at, trained_tokens, training_file, "
    "validation_file, metadata, raw, run, archived_at"
)
_JOB_VALUES = ", ".join("?" * len(_JOB_COLUMNS.split(", ")))
_JOB_UPDATE = ", ".join(f"{name} = ?" for name in _JOB_COLUMNS.split(", ")[1:])


@dataclass(frozen=True)
class FileRow:
    """A row of ``files``: `content` as the tools read it, and digests of it and of the body as served."""

    id: str
    purpose: str
    encoding: str
    content: bytes
    sha256: str
    served_bytes: int
    served_sha256: str

    @classmethod
    def result(cls, file_id: str, served: bytes) -> tuple[FileRow, str | None]:
        """A result file (purpose ``result``), decoded as the tools decode it; with a note when it is neither CSV
        nor base64 of CSV (then kept as served, encoding ``unparsed``)."""
        note = None
        encoding: str
        try:
            content, encoding = decode_result_file(served)
        except ResultFileError as exc:
            content, encoding, note = served, "unparsed", f"result file {file_id}: unparsed: {exc}"
        served_sha256 = _sha256(served)
        sha256 = served_sha256 if content is served else _sha256(content)
        return cls(file_id, "result", encoding, content, sha256, len(served), served_sha256), note

    @classmethod
    def raw(cls, file_id: str, purpose: str, served: bytes) -> FileRow:
        """A training or validation file, kept as served (encoding ``raw``)."""
        digest = _sha256(served)
        return cls(file_id, purpose, "raw", served, digest, len(served), digest)

    @property
    def values(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.purpose,
            self.encoding,
            len(self.content),
            self.sha256,
            self.content,
            self.served_bytes,
            self.served_sha256,
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class JobRecord:
    """One job as read in this run, ready to be written: None for a part that could not be read (the file keeps
    what it had of it)."""

    job: Job
    checkpoints: list[Checkpoint] | None = None
    events: list[Event] | None = None
    files: list[FileRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> str | None:
        """The ``problem`` column: why the job is incomplete, or a note on a complete job; None when neither."""
        return "; ".join(sorted(self.problems) + sorted(self.notes)) or None


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def digest(raw_text: str) -> bytes:
    return hashlib.sha256(raw_text.encode()).digest()


def _job_values(job: Job, run: int, archived_at: str) -> tuple[Any, ...]:
    raw = job.raw
    metadata = raw.get("metadata")
    return (
        job.id,
        job.status,
        job.model,
        job.fine_tuned_model,
        job.suffix,
        job.method_type,
        job.created_at,
        job.finished_at,
        job.trained_tokens,
        job.training_file,
        job.validation_file,
        to_json(metadata) if isinstance(metadata, dict) else None,
        to_json(raw),
        run,
        archived_at,
    )


def _file_uri(path: Path) -> str:
    return path.absolute().as_uri() + "?mode=rw"


def open_archive(path: Path) -> sqlite3.Connection:
    """The archive at `path`, opened for writing: created (mode 0600) when absent or an empty database, else checked.

    Raises:
        ArchiveFileError: the file exists and is not an archive of this schema version (it is left as it was).
        ArchiveWriteError: the file cannot be created or written.
    """
    created = False
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        created = True
    except FileExistsError:
        if path.is_dir():
            raise schema.ArchiveFileError(f"{path} is a directory, not an archive file") from None
    except OSError as exc:
        raise ArchiveWriteError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        conn = sqlite3.connect(
            _file_uri(path), uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
        )
    except sqlite3.Error as exc:
        raise ArchiveWriteError(f"cannot open {path}: {exc}") from None
    try:
        if _blank(conn):
            conn.execute("BEGIN IMMEDIATE")
            schema.create(conn)  # its `with conn` commits
        else:
            schema.check(conn, path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except schema.ArchiveFileError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        if created:
            path.unlink(missing_ok=True)
        raise ArchiveWriteError(f"cannot write {path}: {exc}") from None
    return conn


def _blank(conn: sqlite3.Connection) -> bool:
    """An empty database (a new or zero-byte file, or one whose creation was interrupted before it committed)."""
    try:
        marker: int = conn.execute("PRAGMA application_id").fetchone()[0]
        return marker == 0 and schema.is_empty(conn)
    except sqlite3.DatabaseError:
        return False


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class ArchiveDatabase:
    """The archive's connection. Its methods block; `call` runs one in a worker thread, one at a time."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = anyio.Lock()

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            try:
                return await anyio.to_thread.run_sync(function, *args)
            except sqlite3.Error as exc:
                raise ArchiveWriteError(f"cannot write {self.path}: {exc}") from exc

    def start_run(
        self,
        started_at: str,
        base_url: str,
        organization: str | None,
        project: str | None,
        tool_version: str,
        filters: dict[str, Any],
    ) -> int:
        with _transaction(self.conn):
            cursor = self.conn.execute(
                "INSERT INTO manifest (started_at, base_url, organization, project, tool_version, filters) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (started_at, base_url, organization, project, tool_version, to_json(filters)),
            )
        run = cursor.lastrowid
        assert run is not None
        return run

    def finish_run(self, run: int, finished_at: str, complete: bool, counts: Counts) -> None:
        with _transaction(self.conn):
            self.conn.execute(
                "UPDATE manifest SET finished_at = ?, complete = ?, jobs = ?, incomplete_jobs = ?, checkpoints = ?, "
                "events = ?, files = ?, bytes = ?, models = ? WHERE run = ?",
                (
                    finished_at,
                    int(complete),
                    counts.jobs,
                    counts.incomplete_jobs,
                    counts.checkpoints,
                    counts.events,
                    counts.files,
                    counts.bytes,
                    counts.models,
                    run,
                ),
            )

    def finished_jobs(self) -> dict[str, bytes]:
        """Job id -> digest of the stored job object, for every job archived completely in a finished status."""
        statuses = sorted(TERMINAL_STATUSES)
        rows = self.conn.execute(
            f"SELECT id, raw FROM jobs WHERE complete = 1 AND status IN ({', '.join('?' * len(statuses))})", statuses
        )
        return {job_id: digest(raw) for job_id, raw in rows}

    def write_job(self, record: JobRecord, run: int, archived_at: str) -> None:
        """The job with its checkpoints, events and files, in one transaction."""
        job = record.job
        with _transaction(self.conn):
            self.conn.execute(
                f"INSERT OR REPLACE INTO jobs ({_JOB_COLUMNS}, complete, problem) VALUES ({_JOB_VALUES}, ?, ?)",
                (*_job_values(job, run, archived_at), int(record.complete), record.problem),
            )
            if record.checkpoints is not None:
                self.conn.execute("DELETE FROM checkpoints WHERE job_id = ?", (job.id,))
                self.conn.executemany(
                    "INSERT OR REPLACE INTO checkpoints (id, job_id, position, step_number, "
                    "fine_tuned_model_checkpoint, created_at, metrics, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            c.id,
                            job.id,
                            position,
                            c.step_number,
                            c.fine_tuned_model_checkpoint,
                            c.created_at,
                            to_json(c.raw["metrics"]) if "metrics" in c.raw else None,
                            to_json(c.raw),
                        )
                        for position, c in enumerate(record.checkpoints)
                    ),
                )
            if record.events is not None:
                self.conn.execute("DELETE FROM events WHERE job_id = ?", (job.id,))
                self.conn.executemany(
                    "INSERT OR REPLACE INTO events (id, job_id, position, created_at, level, type, message, raw) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (e.id, job.id, position, e.created_at, e.level, e.type, e.message, to_json(e.raw))
                        for position, e in enumerate(record.events)
                    ),
                )
            self._insert_files(record.files)

    def update_job(self, job: Job, run: int, archived_at: str) -> None:
        """A complete job's row from a newer job object (its checkpoints, events, files and completeness kept)."""
        with _transaction(self.conn):
            values = _job_values(job, run, archived_at)
            self.conn.execute(f"UPDATE jobs SET {_JOB_UPDATE} WHERE id = ?", (*values[1:], job.id))

    def has_file(self, file_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM files WHERE id = ?", (file_id,)).fetchone() is not None

    def write_file(self, row: FileRow) -> None:
        with _transaction(self.conn):
            self._insert_files([row])

    def _insert_files(self, rows: Sequence[FileRow]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO files (id, purpose, encoding, bytes, sha256, content, served_bytes, served_sha256) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.values for row in rows),
        )

    def write_models(self, models: Sequence[Model], run: int) -> None:
        """Every model listed now, marked with this run; models no longer listed keep their row (and older run)."""
        with _transaction(self.conn):
            self.conn.executemany(
                "INSERT OR REPLACE INTO models (id, created, owned_by, fine_tuned, raw, run) VALUES (?, ?, ?, ?, ?, ?)",
                ((m.id, m.created, m.owned_by, int(m.is_fine_tuned), to_json(m.raw), run) for m in models),
            )

    def totals(self) -> Counts:
        row = self.conn.execute(
            "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM checkpoints), (SELECT count(*) FROM events), "
            "(SELECT count(*) FROM files), (SELECT coalesce(sum(bytes), 0) FROM files), "
            "(SELECT count(*) FROM models), (SELECT count(*) FROM jobs WHERE complete = 0)"
        ).fetchone()
        return Counts(*row)

    def settle(self) -> None:
        """End of a run: fold the WAL into the file and leave WAL mode, so the archive is one self-contained file
        (skipped, harmlessly, while another connection has the file open)."""
        with suppress(sqlite3.OperationalError):
            self.conn.execute("PRAGMA journal_mode = DELETE")

    def close(self) -> None:
        self.conn.close()
