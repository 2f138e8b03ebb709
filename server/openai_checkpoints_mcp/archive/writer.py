"""The ``archive`` command: the account's whole fine-tuning history, read through the store, into one SQLite file.

`write_archive` reads every job of the listing (or the jobs named with ``--job``), each job's checkpoints, events and
result files (and, when asked, its training and validation files), and the models list, and writes them to the
file `schema` describes:

* **One transaction per job**, with its checkpoints, events and result files, replacing what the file held for that
  job; a part that could not be read keeps what an earlier run wrote of it. An interrupted run (Ctrl-C, kill -9, a
  full disk) leaves a consistent file. While a run writes, the file is in WAL mode (``synchronous=NORMAL``: a crash
  of the process loses nothing committed; a power cut the most recent jobs, never consistency); a run that ends
  turns it back into one self-contained file (``journal_mode=DELETE``).
* **Resumable**: a job the file holds complete (``complete = 1``) with a finished status is not read again beyond
  the listing; its row is updated from the listing's job object when that changed (metadata, say), at no request.
  Unfinished jobs (validating, queued, running, paused) and incomplete ones are read again on every run.
* **Bounded**: at most ``2 x concurrency`` jobs are read at once and each leaves memory once written; the listing
  waits when they are all busy. Requests are bounded by the client's adaptive bound, which honours 429s.
* Training and validation files, which many jobs share, are read once per run (not at all when the file already
  holds them) and written in a transaction of their own, before the jobs that name them. One the API no longer has
  (``not_found``: deleted after training) is a note on its jobs, not a reason to read them again.
* Never the key: the manifest holds the base URL (without any user:password part), organisation and project, and
  what the API sent is masked as every answer of the server is (`redaction`: an API that echoes the key in a job's
  metadata, an event or a result file's header does not get it written); training and validation files are kept as
  served.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..api.models import ApiObject, Event, Job
from ..api.pagination import Page, collect_pages, iterate_pages
from ..errors import CheckpointsError, ErrorCode
from .database import ArchiveDatabase, Counts, FileRow, JobRecord, digest, open_archive, to_json

if TYPE_CHECKING:
    from ..api.store import JobStore
    from ..config import Settings

ARCHIVE_MAX_ITEMS = 1_000_000
"""Checkpoints or events of one job read at most (the store's ``max_items`` for the archive): far more than any job
has, so no list is cut short; a job that has more is marked incomplete."""
TRAINING_FILES_AT_ONCE = 2
"""Training and validation files read at once: they can be hundreds of megabytes each."""


ApiObjectT = TypeVar("ApiObjectT", bound=ApiObject)


# --- what a run reports ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """How far a run has got, passed to the progress callback after every change."""

    selected: int = 0
    """Jobs selected so far: listed (at or after ``--since``), or named with ``--job``."""
    selection_done: bool = False
    """Whether `selected` is final (the listing has ended)."""
    done: int = 0
    """Selected jobs dealt with: archived (completely or not), skipped as already complete, or unreadable."""
    skipped: int = 0
    incomplete: int = 0
    """Jobs not archived completely so far (unreadable ones included)."""


@dataclass(frozen=True)
class JobNote:
    job_id: str
    text: str


@dataclass
class Receipt:
    """What one run did, and what the file holds after it."""

    path: Path
    run: int
    this_run: Counts
    """What this run wrote: jobs read and written (skipped ones not counted), their checkpoints and events, the
    files and their bytes, the models; `incomplete_jobs` counts unreadable jobs too."""
    in_file: Counts
    """Totals in the file after the run (`incomplete_jobs`: rows with ``complete = 0``)."""
    skipped: int
    """Jobs already complete and finished in the file: not read again."""
    updated: int
    """Of the skipped jobs, rows updated because the listing's job object had changed."""
    unfinished: list[tuple[str, str]]
    """(job id, status) of the jobs archived in a status that is not final: read again on the next run."""
    incomplete: list[JobNote]
    """Jobs written with ``complete = 0``, and why."""
    unreadable: list[JobNote]
    """Jobs whose object could not be read (an unknown ``--job`` id): not in the file."""
    notes: list[JobNote]
    """Complete jobs with a note (a result file archived as served because it is neither CSV nor base64 of CSV)."""
    listing_problem: str | None
    """Why the job listing stopped before its end, if it did."""
    models_problem: str | None
    requests: int
    """API requests of the run, retries included."""

    @property
    def complete(self) -> bool:
        """Every selected job archived completely (and the listing and the models list read to the end)."""
        return not (self.incomplete or self.unreadable or self.listing_problem or self.models_problem)

    def render(self) -> str:
        """The receipt as text, for people."""
        done, total = self.this_run, self.in_file
        lines = [
            f"archive {self.path} (run {self.run}): {'complete' if self.complete else 'NOT complete'}",
            f"this run:    {done.jobs:,} jobs read, {self.skipped:,} skipped as already complete"
            + (f" ({self.updated:,} updated from the listing)" if self.updated else "")
            + f"; {_amounts(done)}; {self.requests:,} requests",
            f"in the file: {total.jobs:,} jobs ({total.incomplete_jobs:,} incomplete); {_amounts(total)}",
        ]
        if self.unfinished:
            shown = ", ".join(f"{job_id} ({status})" for job_id, status in self.unfinished[:10])
            more = f" and {len(self.unfinished) - 10:,} more" if len(self.unfinished) > 10 else ""
            lines.append(
                f"still running or not finished: {len(self.unfinished):,} (read again on the next run): {shown}{more}"
            )
        if self.listing_problem:
            lines.append(f"the job listing stopped early: {self.listing_problem}")
        if self.models_problem:
            lines.append(f"the models list: {self.models_problem}")
        for heading, notes in (
            ("not archived completely (run again to retry)", self.incomplete),
            ("not archived at all (the job could not be read)", self.unreadable),
            ("notes", self.notes),
        ):
            if notes:
                lines.append(f"{heading}: {len(notes):,}")
                lines.extend(f"  {note.job_id}: {note.text}" for note in notes)
        return "\n".join(lines)


def _amounts(counts: Counts) -> str:
    return (
        f"{counts.checkpoints:,} checkpoints, {counts.events:,} events, {counts.files:,} files "
        f"({counts.bytes:,} bytes), {counts.models:,} models"
    )


# --- a run ----------------------------------------------------------------------------------------------------------

Progress = Callable[[Tally], None]
_Outcome = tuple[bool, str] | None
"""How reading a shared file ended: None when the file holds it, else (a problem rather than a note, the text)."""


async def write_archive(
    store: JobStore,
    path: Path | str,
    *,
    settings: Settings,
    since: int | None = None,
    job_ids: Sequence[str] = (),
    include_training_files: bool = False,
    progress: Progress | None = None,
) -> Receipt:
    """Archive the account's jobs into the file at `path` (created if absent) and say what was done.

    Args:
        store: the gateway to the API; it should cache nothing (``MemoryBackend(0)``), and its settings'
            ``max_items`` should be large (`ARCHIVE_MAX_ITEMS`), or long checkpoint lists leave jobs incomplete.
        settings: the settings the store was opened with: the manifest's account, the concurrency, page sizes.
        since: only jobs created at or after this Unix time (the listing, newest first, stops at the first older job).
        job_ids: only these jobs, each read with ``store.job`` (not combined with `since`).
        include_training_files: also archive each job's training and validation files.
        progress: called with the `Tally` after every change (from the event loop: it must not block).

    Raises:
        ArchiveFileError: the file exists and is not an archive (nothing was read or written).
        ArchiveWriteError: the file cannot be written (what was committed before stays consistent).
    """
    if since is not None and job_ids:
        raise ValueError("since and job_ids do not combine: name the jobs, or give a date")
    path = Path(path)
    conn = await anyio.to_thread.run_sync(open_archive, path)
    db = ArchiveDatabase(conn, path)
    try:
        archiver = _Archiver(
            store,
            db,
            settings,
            since=since,
            job_ids=tuple(dict.fromkeys(job_ids)),
            include_training_files=include_training_files,
            progress=progress,
        )
        receipt = await archiver.run()
        await db.call(db.settle)
        return receipt
    finally:
        db.close()


class _Archiver:
    """One run of the archive: the selection (listing or ``--job``) feeding a pool of job readers."""

    def __init__(
        self,
        store: JobStore,
        db: ArchiveDatabase,
        settings: Settings,
        *,
        since: int | None,
        job_ids: tuple[str, ...],
        include_training_files: bool,
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.db = db
        self.settings = settings
        self.since = since
        self.job_ids = job_ids
        self.include_training_files = include_training_files
        self.progress = progress
        self.workers = 2 * settings.concurrency
        self.tally = Tally()
        self.run_id = 0
        self.finished: dict[str, bytes] = {}
        self.jobs = self.checkpoints = self.events = self.files = self.bytes = self.models = 0
        self.updated = 0
        self.unfinished: list[tuple[str, str]] = []
        self.incomplete: list[JobNote] = []
        self.unreadable: list[JobNote] = []
        self.notes: list[JobNote] = []
        self.listing_problem: str | None = None
        self.models_problem: str | None = None
        self._shared_files: dict[str, _Outcome] = {}
        """Training or validation file id -> how reading it ended in this run."""
        self._shared_pending: dict[str, anyio.Event] = {}
        self._big_files = anyio.CapacityLimiter(TRAINING_FILES_AT_ONCE)

    async def run(self) -> Receipt:
        from ..server import server_version

        filters = {
            "since": None if self.since is None else _iso(self.since),
            "jobs": list(self.job_ids) or None,
            "include_training_files": self.include_training_files,
        }
        self.run_id = await self.db.call(
            self.db.start_run,
            _iso(time.time()),
            _without_userinfo(self.settings.base_url),
            self.settings.organization,
            self.settings.project,
            server_version(),
            filters,
        )
        self.finished = await self.db.call(self.db.finished_jobs)
        send, receive = anyio.create_memory_object_stream[Job | str](self.workers)
        with self.store.count_requests() as requests:
            async with anyio.create_task_group() as group:
                group.start_soon(self._read_models)
                async with receive:
                    for _ in range(self.workers):
                        group.start_soon(self._work, receive.clone())
                await self._select(send)
        this_run = Counts(
            jobs=self.jobs,
            checkpoints=self.checkpoints,
            events=self.events,
            files=self.files,
            bytes=self.bytes,
            models=self.models,
            incomplete_jobs=len(self.incomplete) + len(self.unreadable),
        )
        receipt = Receipt(
            path=self.db.path,
            run=self.run_id,
            this_run=this_run,
            in_file=Counts(),
            skipped=self.tally.skipped,
            updated=self.updated,
            unfinished=self.unfinished,
            incomplete=self.incomplete,
            unreadable=self.unreadable,
            notes=self.notes,
            listing_problem=self.listing_problem,
            models_problem=self.models_problem,
            requests=requests[0],
        )
        await self.db.call(self.db.finish_run, self.run_id, _iso(time.time()), receipt.complete, this_run)
        receipt.in_file = await self.db.call(self.db.totals)
        return receipt

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.tally)

    # --- the selection --------------------------------------------------------------------------------------------

    async def _select(self, send: MemoryObjectSendStream[Job | str]) -> None:
        """Feed the readers: the named jobs, or the listing down to `since`; the listing waits while they are busy."""
        async with send:
            if self.job_ids:
                self.tally.selected, self.tally.selection_done = len(self.job_ids), True
                self._report()
                for job_id in self.job_ids:
                    await send.send(job_id)
                return
            try:
                await self._list(send)
            except CheckpointsError as exc:
                self.listing_problem = exc.text
            self.tally.selection_done = True
            self._report()

    async def _list(self, send: MemoryObjectSendStream[Job | str]) -> None:
        """The listing, page by page (not the store's `job_pages`, which keeps every page it has read)."""

        async def fetch(cursor: str | None) -> Page[Job]:
            return await self.store.jobs_page(limit=self.settings.page_size, after=cursor)

        async with aclosing(iterate_pages(fetch, what="fine-tuning jobs")) as pages:
            async for page in pages:
                for job in page.items:
                    if self.since is not None and job.created_at is not None and job.created_at < self.since:
                        return  # newest first: every job after this one is older too
                    self.tally.selected += 1
                    if not await self._skipped(job):
                        await send.send(job)
                self._report()

    def _masked(self, item: ApiObjectT) -> ApiObjectT:
        """`item` rebuilt from its payload with any echo of a secret masked; itself when there is none."""
        masked = self.settings.redactor.mask_value(item.raw)
        if masked is item.raw:
            return item
        try:
            return type(item).from_api(masked)
        except ValueError:  # pydantic's ValidationError: the masked payload no longer parses
            return type(item).model_construct(**masked)

    def _masked_file(self, row: FileRow) -> FileRow:
        """A result file's row with any echo of a secret in its CSV masked."""
        try:
            text = row.content.decode("utf-8")
        except UnicodeDecodeError:
            return row
        masked = self.settings.redactor.mask(text).encode()
        if masked == row.content:
            return row
        return replace(row, content=masked, sha256=hashlib.sha256(masked).hexdigest())

    async def _skipped(self, job: Job) -> bool:
        """Whether the file already holds `job` complete and finished (then its row is refreshed if it changed)."""
        stored = self.finished.get(job.id)
        if stored is None or not job.is_finished:
            return False
        job = self._masked(job)
        if digest(to_json(job.raw)) != stored:
            await self.db.call(self.db.update_job, job, self.run_id, _iso(time.time()))
            self.updated += 1
        self.tally.skipped += 1
        self.tally.done += 1
        self._report()
        return True

    # --- one job --------------------------------------------------------------------------------------------------

    async def _work(self, receive: MemoryObjectReceiveStream[Job | str]) -> None:
        async with receive:
            async for item in receive:
                if isinstance(item, str):
                    try:
                        job = await self.store.job(item)
                    except CheckpointsError as exc:
                        self.unreadable.append(JobNote(item, exc.text))
                        self.tally.done += 1
                        self.tally.incomplete += 1
                        self._report()
                        continue
                    if await self._skipped(job):
                        continue
                else:
                    job = item
                await self._archive(job)

    async def _archive(self, job: Job) -> None:
        record = JobRecord(self._masked(job))
        async with anyio.create_task_group() as group:
            group.start_soon(self._read_checkpoints, record)
            group.start_soon(self._read_events, record)
            for result_file in dict.fromkeys(job.result_files):
                group.start_soon(self._read_result_file, record, result_file)
            if self.include_training_files:
                for purpose, file_id in (("training", job.training_file), ("validation", job.validation_file)):
                    if file_id:
                        group.start_soon(self._read_shared_file, record, purpose, file_id)
        mask = self.settings.redactor.mask
        record.problems = [mask(text) for text in record.problems]
        record.notes = [mask(text) for text in record.notes]
        await self.db.call(self.db.write_job, record, self.run_id, _iso(time.time()))
        self.jobs += 1
        self.checkpoints += len(record.checkpoints or ())
        self.events += len(record.events or ())
        self.files += len(record.files)
        self.bytes += sum(len(row.content) for row in record.files)
        if not record.complete:
            self.incomplete.append(JobNote(job.id, "; ".join(sorted(record.problems))))
            self.tally.incomplete += 1
        self.notes.extend(JobNote(job.id, note) for note in sorted(record.notes))
        if not job.is_finished:
            self.unfinished.append((job.id, job.status or "unknown"))
        self.tally.done += 1
        self._report()

    async def _read_checkpoints(self, record: JobRecord) -> None:
        try:
            collected = await self.store.checkpoints_of(record.job)
        except CheckpointsError as exc:
            record.problems.append(f"checkpoints: {exc.text}")
            return
        record.checkpoints = [self._masked(item) for item in collected.items]
        if collected.truncated:
            record.problems.append(f"checkpoints: more than {len(collected.items):,}; only those were read")

    async def _read_events(self, record: JobRecord) -> None:
        job_id = record.job.id

        async def fetch(cursor: str | None) -> Page[Event]:
            return await self.store.events_page(job_id, limit=self.settings.page_size, after=cursor)

        try:
            collected = await collect_pages(fetch, max_items=self.settings.max_items, what=f"events of job {job_id}")
        except CheckpointsError as exc:
            record.problems.append(f"events: {exc.text}")
            return
        record.events = [self._masked(item) for item in collected.items]
        if collected.truncated:
            record.problems.append(f"events: more than {len(collected.items):,}; only the newest were read")

    async def _read_result_file(self, record: JobRecord, file_id: str) -> None:
        try:
            served = await self.store.result_file(record.job, file_id)
        except CheckpointsError as exc:
            record.problems.append(f"result file {file_id}: {exc.text}")
            return
        row, note = FileRow.result(file_id, served)
        record.files.append(await anyio.to_thread.run_sync(self._masked_file, row))  # up to 256 MiB: off the loop
        if note is not None:
            record.notes.append(note)

    async def _read_shared_file(self, record: JobRecord, purpose: str, file_id: str) -> None:
        outcome = await self._shared_file(purpose, file_id)
        if outcome is not None:
            is_problem, text = outcome
            (record.problems if is_problem else record.notes).append(text)

    async def _shared_file(self, purpose: str, file_id: str) -> _Outcome:
        """Make sure a training or validation file is in the file: read once per run, never again once there.

        A file the API no longer has (deleted after training, as many delete them) is a note on its jobs, which are
        otherwise complete; any other failure leaves them incomplete, to be read again."""
        if file_id in self._shared_files:
            return self._shared_files[file_id]
        pending = self._shared_pending.get(file_id)
        if pending is not None:
            await pending.wait()
            return self._shared_files[file_id]
        self._shared_pending[file_id] = done = anyio.Event()
        outcome: _Outcome = (True, f"{purpose} file {file_id}: not read (interrupted)")
        try:
            if await self.db.call(self.db.has_file, file_id):
                outcome = None
            else:
                try:
                    async with self._big_files:
                        served = await self.store.file_content(file_id)
                except CheckpointsError as exc:
                    outcome = (exc.code != ErrorCode.NOT_FOUND, f"{purpose} file {file_id}: {exc.text}")
                else:
                    await self.db.call(self.db.write_file, FileRow.raw(file_id, purpose, served))
                    self.files += 1
                    self.bytes += len(served)
                    outcome = None
        finally:
            self._shared_files[file_id] = outcome
            del self._shared_pending[file_id]
            done.set()
        return outcome

    # --- the models -----------------------------------------------------------------------------------------------

    async def _read_models(self) -> None:
        try:
            collected = await self.store.models()
        except CheckpointsError as exc:
            self.models_problem = self.settings.redactor.mask(exc.text)
            return
        models = [self._masked(item) for item in collected.items]
        await self.db.call(self.db.write_models, models, self.run_id)
        self.models = len(collected.items)
        if collected.truncated:
            self.models_problem = f"more than {self.models:,} models; only those were archived"


def _iso(moment: float) -> str:
    """Unix seconds as ISO 8601 UTC text, as the manifest and ``archived_at`` hold times."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_userinfo(url: str) -> str:
    """`url` without any ``user:password@`` (which would be a secret in the file)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
