"""The archive file's schema: one SQLite file anyone can open (``sqlite3``, datasette, pandas).

Every API object is kept verbatim, as JSON text in a ``raw`` column, beside the columns that queries need, so
nothing the API said is lost and fields it adds later survive. Times are Unix seconds (as the API gives them) in
the object tables and ISO 8601 UTC text in `manifest`. The schema is documented in ``docs/archive.md``; its version
is ``PRAGMA user_version`` and the file is marked by ``PRAGMA application_id``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 1
"""``PRAGMA user_version`` of the archives this code writes and reads."""
APPLICATION_ID = 0x4F46544B
"""``PRAGMA application_id`` of an archive ("OFTK"): tells an archive from any other SQLite file."""

TABLES = (
    # One row per run of the archive command, in order; the newest is what offline answers name.
    """CREATE TABLE manifest (
        run INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        base_url TEXT NOT NULL,
        organization TEXT,
        project TEXT,
        tool_version TEXT NOT NULL,
        filters TEXT NOT NULL,
        complete INTEGER NOT NULL DEFAULT 0,
        jobs INTEGER NOT NULL DEFAULT 0,
        incomplete_jobs INTEGER NOT NULL DEFAULT 0,
        checkpoints INTEGER NOT NULL DEFAULT 0,
        events INTEGER NOT NULL DEFAULT 0,
        files INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        models INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        status TEXT,
        model TEXT,
        fine_tuned_model TEXT,
        suffix TEXT,
        method TEXT NOT NULL,
        created_at INTEGER,
        finished_at INTEGER,
        trained_tokens INTEGER,
        training_file TEXT,
        validation_file TEXT,
        metadata TEXT,
        raw TEXT NOT NULL,
        run INTEGER NOT NULL REFERENCES manifest (run),
        archived_at TEXT NOT NULL,
        complete INTEGER NOT NULL,
        problem TEXT
    )""",
    "CREATE INDEX jobs_newest_first ON jobs (created_at DESC, id DESC)",
    """CREATE TABLE checkpoints (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        position INTEGER NOT NULL,
        step_number INTEGER,
        fine_tuned_model_checkpoint TEXT,
        created_at INTEGER,
        metrics TEXT,
        raw TEXT NOT NULL
    )""",
    "CREATE INDEX checkpoints_of_job ON checkpoints (job_id, position)",
    """CREATE TABLE events (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        position INTEGER NOT NULL,
        created_at INTEGER,
        level TEXT,
        type TEXT,
        message TEXT,
        raw TEXT NOT NULL
    )""",
    "CREATE INDEX events_of_job ON events (job_id, position)",
    """CREATE TABLE files (
        id TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        encoding TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        content BLOB NOT NULL,
        served_bytes INTEGER NOT NULL,
        served_sha256 TEXT NOT NULL
    )""",
    """CREATE TABLE models (
        id TEXT PRIMARY KEY,
        created INTEGER,
        owned_by TEXT,
        fine_tuned INTEGER NOT NULL,
        raw TEXT NOT NULL,
        run INTEGER NOT NULL REFERENCES manifest (run)
    )""",
)
"""The tables, in the order they are created. Column meanings: ``docs/archive.md``."""

TABLE_NAMES = ("manifest", "jobs", "checkpoints", "events", "files", "models")


class ArchiveFileError(Exception):
    """The file is not an archive this version can read (the message says why and what to do)."""


def create(conn: sqlite3.Connection) -> None:
    """Create the tables in an empty database (one transaction)."""
    with conn:
        for statement in TABLES:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def check(conn: sqlite3.Connection, path: Path | str) -> None:
    """Raise `ArchiveFileError` unless `conn` is an archive of `SCHEMA_VERSION`."""
    try:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ArchiveFileError(f"{path} is not a SQLite database ({exc})") from None
    if application_id != APPLICATION_ID:
        raise ArchiveFileError(f"{path} is not an openai-checkpoints-mcp archive (no archive marker in the file)")
    if version != SCHEMA_VERSION:
        newer = version > SCHEMA_VERSION
        raise ArchiveFileError(
            f"{path} is an archive of schema version {version}; this version reads {SCHEMA_VERSION}: "
            + (
                "upgrade openai-checkpoints-mcp"
                if newer
                else "write a new archive with `openai-checkpoints-mcp archive`"
            )
        )


def is_empty(conn: sqlite3.Connection) -> bool:
    count: int = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return count == 0
