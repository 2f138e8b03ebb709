"""Answers offline: `ArchiveSource` answers the store's questions from an archive file, never the network.

It stands where `api.client.OpenAIClient` stands behind `api.store.JobStore` (the `api.store.Upstream`
interface), so every read tool works unchanged on an archive: the same models are parsed from the same
JSON the API sent (the ``raw`` columns), the same pages in the same order. It differs where an archive can do
better than the API: a job listing is filtered in SQL over the whole archive (`list_jobs_page` takes the
filter), so no scan limit applies. What the archive lacks is ``not_found`` with the advice to archive again;
writes are refused (the write tools are not even served).

The file is opened read-only; every query runs in a worker thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio

from ..api.models import ApiObject, Checkpoint, Event, Job, Model, Permission
from ..api.pagination import Collected, OnPage, Page
from ..api.selection import JobFilter, base_model_matches
from ..config import DEMO_BASE_URL
from ..errors import CheckpointsError, ErrorCode
from . import schema

ObjectT = TypeVar("ObjectT", bound=ApiObject)
T = TypeVar("T")


@dataclass(frozen=True)
class ArchiveOrigin:
    """Where and when the archive was made: its newest run (a row of ``manifest``)."""

    path: Path
    run: int
    made_at: str
    """ISO 8601 UTC: when that run finished, or started when it did not finish."""
    finished: bool
    complete: bool
    base_url: str
    organization: str | None
    project: str | None
    jobs: int
    """Jobs in the whole archive (every run)."""

    @property
    def account(self) -> str:
        """The account in words: organisation and project, as far as the archive knows them."""
        if self.base_url == DEMO_BASE_URL:
            return "the bundled demo dataset (invented jobs, not an OpenAI account)"
        parts = [f"organization {self.organization}" if self.organization else None]
        parts.append(f"project {self.project}" if self.project else None)
        named = " / ".join(p for p in parts if p)
        return (
            f"{named} at {self.base_url}" if named else f"the key's default organization and project at {self.base_url}"
        )

    @property
    def notice(self) -> str:
        """What every offline result says: not live data, from which account, made when."""
        state = "" if self.complete else (" (that run did not finish)" if not self.finished else " (incomplete)")
        return (
            f"FROM THE ARCHIVE {self.path.name}: {self.jobs:,} jobs of {self.account}, archived at {self.made_at}"
            f"{state}. Not live: anything after that time is missing."
        )


def open_archive(path: str | Path) -> sqlite3.Connection:
    """The archive at `path`, opened read-only and checked; raises `schema.ArchiveFileError` (with a sentence that
    says why and what to do) when it is missing, unreadable or not an archive of this schema version."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise schema.ArchiveFileError(
            f"no archive at {path}: write one first with `openai-checkpoints-mcp archive {path}` (with the account's "
            "key), or check the path"
        )
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise schema.ArchiveFileError(f"cannot open the archive {path}: {exc}") from None
    try:
        schema.check(conn, path)
        conn.execute("SELECT count(*) FROM manifest").fetchone()
    except (schema.ArchiveFileError, sqlite3.DatabaseError) as exc:
        conn.close()
        if isinstance(exc, schema.ArchiveFileError):
            raise
        raise schema.ArchiveFileError(f"{path} cannot be read as an archive: {exc}") from None
    return conn


def read_origin(conn: sqlite3.Connection, path: Path) -> ArchiveOrigin:
    row = conn.execute(
        "SELECT run, started_at, finished_at, complete, base_url, organization, project FROM manifest "
        "ORDER BY run DESC LIMIT 1"
    ).fetchone()
    if row is None:
        raise schema.ArchiveFileError(
            f"{path} holds no archive run yet: run `openai-checkpoints-mcp archive {path}` again"
        )
    run, started, finished, complete, base_url, organization, project = row
    jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    return ArchiveOrigin(
        path=path,
        run=run,
        made_at=finished or started,
        finished=finished is not None,
        complete=bool(complete),
        base_url=base_url,
        organization=organization,
        project=project,
        jobs=jobs,
    )


class ArchiveSource:
    """The `Upstream` of a store that answers from the archive at `path` (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._conn = open_archive(self.path)
        self._conn.create_function("base_model_matches", 2, base_model_matches, deterministic=True)
        self._conn.create_function("metadata_has", 2, _metadata_has, deterministic=True)
        self._lock = threading.Lock()
        self.origin = read_origin(self._conn, self.path)

    # --- running queries off the event loop ---------------------------------------------------------------------

    async def _run(self, query: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                if self._conn is None:
                    raise CheckpointsError(ErrorCode.UPSTREAM_UNAVAILABLE, "The archive was closed.")
                try:
                    return query(self._conn)
                except sqlite3.Error as exc:
                    raise CheckpointsError(
                        ErrorCode.BAD_RESPONSE,
                        f"The archive {self.path} could not be read ({type(exc).__name__}: {exc}). Check the file, "
                        "or write it again with `openai-checkpoints-mcp archive`.",
                    ) from None

        return await anyio.to_thread.run_sync(locked)

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None  # type: ignore[assignment]

        await anyio.to_thread.run_sync(close)

    def _missing_job(self, job_id: str) -> CheckpointsError:
        return CheckpointsError(
            ErrorCode.NOT_FOUND,
            f"Job {job_id} is not in the archive {self.path.name} (archived at {self.origin.made_at}). Check the id "
            f"with list_jobs, or, while the API still serves it, add it with `openai-checkpoints-mcp archive "
            f"{self.path} --job {job_id}` (with the account's key).",
        )

    async def _rows_of_job(
        self, table: Literal["checkpoints", "events"], job_id: str, after: str | None, *, limit: int = -1
    ) -> list[str]:
        """The ``raw`` JSON of a job's rows of `table` in API order, after the row `after` (when given), at most
        `limit` (-1: all); `not_found` when the archive lacks the job."""

        def query(conn: sqlite3.Connection) -> list[str] | None:
            if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                return None
            sql = (
                f"SELECT raw FROM {table} WHERE job_id = ? AND position > coalesce("
                f"(SELECT position FROM {table} WHERE id = ? AND job_id = ?), -1) ORDER BY position LIMIT ?"
            )
            return [str(row[0]) for row in conn.execute(sql, (job_id, after, job_id, limit))]

        rows = await self._run(query)
        if rows is None:
            raise self._missing_job(job_id)
        return rows

    # --- the Upstream interface ---------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT raw FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else str(row[0])

        raw = await self._run(query)
        if raw is None:
            raise self._missing_job(job_id)
        return _parse(Job, raw, what=f"job {job_id}")

    async def list_checkpoints(
        self, job_id: str, *, after: str | None = None, on_page: OnPage | None = None
    ) -> Collected[Checkpoint]:
        """Every archived checkpoint of the job, in API order (after the checkpoint `after`, when given)."""

        rows = await self._rows_of_job("checkpoints", job_id, after)
        items = [_parse(Checkpoint, raw, what=f"checkpoints of job {job_id}") for raw in rows]
        if on_page is not None:
            await on_page(1, len(items))
        return Collected(items=items, pages_fetched=1, scanned=len(items))

    async def get_file_content(self, file_id: str) -> bytes:
        """The archived content of a file (a result file as the tools decode it: CSV)."""

        def query(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT content FROM files WHERE id = ?", (file_id,)).fetchone()
            return None if row is None else bytes(row[0])

        content = await self._run(query)
        if content is None:
            raise CheckpointsError(
                ErrorCode.NOT_FOUND,
                f"File {file_id} is not in the archive {self.path.name}: it could not be read when the archive was "
                f"made (see the jobs table's problem column), or the job was still running. While the API still "
                f"serves it, run `openai-checkpoints-mcp archive {self.path}` again.",
            )
        return content

    async def list_jobs_page(
        self,
        *,
        limit: int,
        after: str | None = None,
        metadata: Mapping[str, str] | None = None,
        where: JobFilter | None = None,
    ) -> Page[Job]:
        """One page of archived jobs, newest first, filtered in SQL by `metadata` and `where` (over the whole
        archive: a page holds only matching jobs)."""
        clauses: list[str] = []
        params: list[Any] = []
        if after is not None:
            clauses.append(
                "(coalesce(created_at, 0), id) < (SELECT coalesce(created_at, 0), id FROM jobs WHERE id = ?)"
            )
            params.append(after)
        if metadata:
            clauses.append("metadata_has(metadata, ?)")
            params.append(json.dumps(dict(metadata)))
        if where is not None:
            for column, value in (("status", where.status), ("suffix", where.suffix)):
                if value is not None:
                    clauses.append(f"{column} = ?")
                    params.append(value)
            if where.model is not None:
                clauses.append("base_model_matches(?, model)")
                params.append(where.model)
            if where.created_after is not None:
                clauses.append("created_at >= ?")
                params.append(where.created_after)
            if where.created_before is not None:
                clauses.append("coalesce(created_at, 0) < ?")
                params.append(where.created_before)
        sql = "SELECT raw FROM jobs" + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        sql += " ORDER BY coalesce(created_at, 0) DESC, id DESC LIMIT ?"
        params.append(limit + 1)

        def query(conn: sqlite3.Connection) -> list[str] | None:
            if after is not None and conn.execute("SELECT 1 FROM jobs WHERE id = ?", (after,)).fetchone() is None:
                return None
            return [str(row[0]) for row in conn.execute(sql, params)]

        rows = await self._run(query)
        if rows is None:
            raise CheckpointsError(
                ErrorCode.INVALID_ARGUMENT,
                f"after={after} is not a job of the archive {self.path.name}; pass the next_after of an earlier call.",
            )
        items = [_parse(Job, raw, what="fine-tuning jobs") for raw in rows[:limit]]
        return Page(items=items, has_more=len(rows) > limit)

    async def list_events_page(self, job_id: str, *, limit: int, after: str | None = None) -> Page[Event]:
        """One page of the job's archived events, newest first (API order)."""

        rows = await self._rows_of_job("events", job_id, after, limit=limit + 1)
        items = [_parse(Event, raw, what=f"events of job {job_id}") for raw in rows[:limit]]
        return Page(items=items, has_more=len(rows) > limit)

    async def list_models(self, *, max_items: int) -> Collected[Model]:
        """The models the account could call when the archive was made."""

        def query(conn: sqlite3.Connection) -> list[str]:
            return [str(row[0]) for row in conn.execute("SELECT raw FROM models ORDER BY id LIMIT ?", (max_items + 1,))]

        rows = await self._run(query)
        items = [_parse(Model, raw, what="models") for raw in rows[:max_items]]
        return Collected(items=items, pages_fetched=1, scanned=len(items), truncated=len(rows) > max_items)

    async def list_checkpoint_permissions(
        self, checkpoint: str, *, project_id: str | None = None, on_page: OnPage | None = None
    ) -> Collected[Permission]:
        """Not archived: who a checkpoint is shared with is an admin-key question the archive never asks."""
        raise CheckpointsError(
            ErrorCode.NOT_FOUND,
            f"Checkpoint permissions are not archived: {self.path.name} holds jobs, checkpoints, events, files and "
            f"models, not who {checkpoint} is shared with. Ask the live API (restart without --archive, with "
            "OPENAI_ADMIN_KEY set to an admin key).",
        )

    async def cancel_job(self, job_id: str) -> Job:
        raise _read_only()

    async def pause_job(self, job_id: str) -> Job:
        raise _read_only()

    async def resume_job(self, job_id: str) -> Job:
        raise _read_only()


def _read_only() -> CheckpointsError:
    return CheckpointsError(
        ErrorCode.INVALID_ARGUMENT, "An archive is read-only: writes need the live API (restart without --archive)."
    )


def _parse(model: type[ObjectT], raw: str, *, what: str) -> ObjectT:
    try:
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        return model.from_api(payload)
    except ValueError as exc:  # pydantic's ValidationError included
        raise CheckpointsError(
            ErrorCode.BAD_RESPONSE,
            f"The archive holds a malformed {what} ({type(exc).__name__}); write the archive again with "
            "`openai-checkpoints-mcp archive`.",
        ) from None


def _metadata_has(stored: str | None, wanted: str) -> bool:
    """Whether a job's metadata (JSON text) has every key and value of `wanted`, as the API's filter."""
    if not stored:
        return False
    try:
        have = json.loads(stored)
    except ValueError:
        return False
    expected: dict[str, str] = json.loads(wanted)
    return isinstance(have, dict) and all(have.get(key) == value for key, value in expected.items())


__all__: Sequence[str] = ("ArchiveOrigin", "ArchiveSource", "open_archive", "read_origin")
