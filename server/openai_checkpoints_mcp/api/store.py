"""`JobStore`: the one gateway to the API, and the owner of every caching rule.

Every read and write of the tools goes through the store; nothing else touches
`OpenAIClient`. The store decides what may be kept in its `CacheBackend` and for how long:

* only what cannot change is kept: a finished job's object (served for `job_ttl` seconds, since
  rare details such as metadata may still change), its complete checkpoint list and its result
  file (until evicted); nothing of a running, queued or paused job;
* a finished job's checkpoints are kept only when they were read after the job was known to be
  finished, or when it finished at least `SETTLED_AFTER` seconds before: a list read in the same
  instant as the job's last checkpoint must not be kept for ever;
* job listings, which do change, are reused for `listing_ttl` seconds from their first page, and
  are dropped by any write;
* ``refresh=True`` reads from the API and stores the fresh answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ..errors import CheckpointsError
from .cache import CacheBackend, CacheKey
from .client import OpenAIClient, count_requests
from .models import Checkpoint, Event, Job, Model, Permission
from .pagination import Collected, OnPage, Page, iterate_pages, page_has_more

if TYPE_CHECKING:
    from pathlib import Path

    import httpx2

    from ..archive.reader import ArchiveOrigin
    from ..config import Settings
    from .selection import JobFilter

SETTLED_AFTER = 300
"""Seconds after `finished_at` from which a finished job's checkpoints are taken as complete."""

MODELS_MAX = 10_000
"""Models one listing reads at most (OpenAI sends them all in one response)."""


@dataclass(frozen=True)
class JobPage:
    jobs: tuple[Job, ...]
    cached_age: float | None
    """Seconds since the page was read, when it came from the cache; None when read just now."""
    more: bool = True
    """Whether another page follows."""


@dataclass(frozen=True)
class _Listing:
    """The pages of a job listing read so far, and where it stopped (None: read to the end)."""

    pages: tuple[tuple[Job, ...], ...]
    next_after: str | None


class Upstream(Protocol):
    """Where the store's answers come from: the API (`client.OpenAIClient`), or an archive file
    (`archive.reader.ArchiveSource`, offline). Every method may raise `CheckpointsError`."""

    async def get_job(self, job_id: str) -> Job: ...

    async def list_checkpoints(
        self, job_id: str, *, after: str | None = None, on_page: OnPage | None = None
    ) -> Collected[Checkpoint]: ...

    async def get_file_content(self, file_id: str) -> bytes: ...

    async def list_jobs_page(
        self,
        *,
        limit: int,
        after: str | None = None,
        metadata: Mapping[str, str] | None = None,
        where: JobFilter | None = None,
    ) -> Page[Job]:
        """`where` may thin the page out (an archive filters in SQL), or be ignored (the API cannot filter, so the
        caller applies it to what comes back)."""
        ...

    async def list_events_page(self, job_id: str, *, limit: int, after: str | None = None) -> Page[Event]: ...

    async def list_models(self, *, max_items: int) -> Collected[Model]: ...

    async def list_checkpoint_permissions(
        self, checkpoint: str, *, project_id: str | None = None, on_page: OnPage | None = None
    ) -> Collected[Permission]: ...

    async def cancel_job(self, job_id: str) -> Job: ...

    async def pause_job(self, job_id: str) -> Job: ...

    async def resume_job(self, job_id: str) -> Job: ...

    async def aclose(self) -> None: ...


class JobStore:
    """The API client with the cache in front. Every method may raise `CheckpointsError`.

    Args:
        client: the API client (its requests are bounded and retried there), or an archive (offline).
        backend: where finished jobs are kept.
        job_ttl: seconds a finished job object is served before it is read again.
        listing_ttl: seconds a job listing is reused.
        clock: wall-clock seconds, so that what another process stored has a meaningful age (tests pass a fake one).
    """

    def __init__(
        self,
        client: Upstream,
        backend: CacheBackend,
        *,
        job_ttl: float,
        listing_ttl: float,
        clock: Callable[[], float] = time.time,
        origin: ArchiveOrigin | None = None,
    ) -> None:
        self._client = client
        self.origin = origin
        """The archive the store answers from (offline), or None: the live API."""
        self._backend = backend
        self._job_ttl = job_ttl
        self._listing_ttl = listing_ttl
        self._clock = clock

    @classmethod
    def open(
        cls,
        settings: Settings,
        backend: CacheBackend,
        transport: httpx2.AsyncBaseTransport | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> JobStore:
        """A store with its own API client, configured by `settings`; `transport` replaces the network (tests, demo
        mode). The HTTP client is made on the first request. Close the store with `aclose`."""
        from .client import create_http_client

        return cls(
            OpenAIClient(lambda: create_http_client(settings, transport), settings),
            backend,
            job_ttl=settings.cache_ttl,
            listing_ttl=settings.listing_ttl,
            clock=clock,
        )

    @classmethod
    def open_archive(cls, path: str | Path) -> JobStore:
        """A store that answers from the archive at `path`: no key, no network, nothing cached (the file is the
        cache). Raises `archive.schema.ArchiveFileError` when the file cannot be used."""
        from ..archive.reader import ArchiveSource
        from .cache import MemoryBackend

        source = ArchiveSource(path)
        return cls(source, MemoryBackend(0), job_ttl=0, listing_ttl=0, origin=source.origin)

    @property
    def offline(self) -> bool:
        """Whether answers come from an archive: listings then filter the whole archive, with no scan limit."""
        return self.origin is not None

    async def aclose(self) -> None:
        """Close the API client's connections, and the cache (writing what it has pending)."""
        try:
            await self._client.aclose()
        finally:
            await self._backend.aclose()

    @staticmethod
    def count_requests() -> AbstractContextManager[list[int]]:
        """Count the API requests (retries included) made in this context and the tasks it starts: ``[n]``."""
        return count_requests()

    # --- the cache rules --------------------------------------------------------------------------------------

    async def _cached(self, key: CacheKey, ttl: float | None = None) -> Any:
        entry = await self._backend.get(key)
        if entry is None:
            return None
        if ttl is not None and self._clock() - entry.stored_at > ttl:
            await self._backend.drop(key)
            return None
        return entry.value

    async def _keep(self, key: CacheKey, value: Any, *, size: int = 0, stored_at: float | None = None) -> None:
        await self._backend.put(key, value, stored_at=self._clock() if stored_at is None else stored_at, size=size)

    async def _cached_job(self, job_id: str) -> Job | None:
        job: Job | None = await self._cached(("job", job_id), self._job_ttl)
        return job

    async def _keep_job(self, job: Job) -> None:
        if job.is_finished:
            await self._keep(("job", job.id), job)

    async def _cached_checkpoints(self, job_id: str) -> list[Checkpoint] | None:
        found = await self._cached(("checkpoints", job_id))
        return None if found is None else list(found)

    async def _keep_checkpoints(self, job_id: str, checkpoints: list[Checkpoint]) -> None:
        """Only for a finished job's complete list (the callers check both)."""
        await self._keep(("checkpoints", job_id), tuple(checkpoints))

    # --- jobs and checkpoints ---------------------------------------------------------------------------------

    async def job(self, job_id: str, *, refresh: bool = False) -> Job:
        """The job object: a finished one from the cache within `job_ttl`, anything else from the API."""
        cached = None if refresh else await self._cached_job(job_id)
        if cached is not None:
            return cached
        job = await self._client.get_job(job_id)
        await self._keep_job(job)
        return job

    async def checkpoints_of(
        self, job: Job, *, refresh: bool = False, on_page: OnPage | None = None
    ) -> Collected[Checkpoint]:
        """Every checkpoint of a job whose object is already in hand (read before this call)."""
        if job.is_finished and not refresh:
            cached = await self._cached_checkpoints(job.id)
            if cached is not None:
                return Collected(items=cached, scanned=len(cached))
        collected = await self._client.list_checkpoints(job.id, on_page=on_page)
        if job.is_finished and not collected.truncated:
            await self._keep_checkpoints(job.id, collected.items)
        return collected

    async def job_and_checkpoints(
        self, job_id: str, *, refresh: bool = False, after: str | None = None, on_page: OnPage | None = None
    ) -> tuple[Job, Collected[Checkpoint]]:
        """The job and its checkpoints; when neither is cached, both are read concurrently (one round trip)."""
        cached = None if refresh else await self._cached_job(job_id)
        if after is None and not refresh and (cached is not None or await self._cached_checkpoints(job_id) is not None):
            # A finished job: its kept checkpoints need no request, and the job object at most one.
            finished = cached or await self.job(job_id)
            return finished, await self.checkpoints_of(finished, on_page=on_page)

        job: Job | None = None
        collected: Collected[Checkpoint] | None = None
        checkpoints_error: CheckpointsError | None = None

        async def read_checkpoints() -> None:
            nonlocal collected, checkpoints_error
            try:
                collected = await self._client.list_checkpoints(job_id, after=after, on_page=on_page)
            except CheckpointsError as exc:  # reported after the job's own answer, which explains it better
                checkpoints_error = exc

        job_error: CheckpointsError | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(read_checkpoints)
            try:
                job = cached or await self._client.get_job(job_id)
            except CheckpointsError as exc:
                job_error = exc
                group.cancel_scope.cancel()
        if job_error is not None:
            raise job_error
        if checkpoints_error is not None:
            raise checkpoints_error
        assert job is not None and collected is not None
        await self._keep_job(job)
        if after is None and not collected.truncated and _settled(job):
            await self._keep_checkpoints(job_id, collected.items)
        return job, collected

    async def result_file(self, job: Job, file_id: str, *, refresh: bool = False) -> bytes:
        """The content of one of `job`'s result files, cached once the job has finished; the file of a job that is
        still going (a paused job may already list one) may yet grow, so it is always read afresh."""
        key: CacheKey = ("file", file_id)
        cached = None if refresh or not job.is_finished else await self._cached(key)
        if cached is not None:
            content: bytes = cached
            return content
        content = await self._client.get_file_content(file_id)
        if job.is_finished:
            await self._keep(key, content, size=len(content))
        return content

    async def file_content(self, file_id: str) -> bytes:
        """The content of any file (a job's training or validation file, for the archive), always from the API:
        never cached, since such files can be large and nothing but the archive reads them."""
        return await self._client.get_file_content(file_id)

    # --- listings -------------------------------------------------------------------------------------------------

    async def jobs_page(
        self,
        *,
        limit: int,
        after: str | None = None,
        metadata: Mapping[str, str] | None = None,
        where: JobFilter | None = None,
    ) -> Page[Job]:
        """One page of the job listing, newest first, always from the API (list_jobs is always fresh). Offline,
        `where` filters the page (the caller still applies it: the API ignores it)."""
        return await self._client.list_jobs_page(limit=limit, after=after, metadata=metadata, where=where)

    async def events_page(self, job_id: str, *, limit: int, after: str | None = None) -> Page[Event]:
        """One page of a job's events, newest first, always from the API (events are never cached)."""
        return await self._client.list_events_page(job_id, limit=limit, after=after)

    async def models(self) -> Collected[Model]:
        """Every model the account can call, always from the API (never cached: a model is deleted or created at
        any time, and the listing is one request)."""
        return await self._client.list_models(max_items=MODELS_MAX)

    async def checkpoint_permissions(
        self, checkpoint: str, *, project_id: str | None = None, on_page: OnPage | None = None
    ) -> Collected[Permission]:
        """Every project a fine-tuned checkpoint (or model) is shared with, all pages, always from the API with the
        admin key (never cached: sharing changes at any time). Offline: ``not_found``, permissions are not
        archived. Without an admin key: ``permission_denied`` before any request."""
        return await self._client.list_checkpoint_permissions(checkpoint, project_id=project_id, on_page=on_page)

    async def job_pages(
        self,
        *,
        page_size: int,
        metadata: Mapping[str, str] | None = None,
        refresh: bool = False,
        where: JobFilter | None = None,
    ) -> AsyncGenerator[JobPage, None]:
        """Pages of the job listing (newest first), reusing a listing read less than the listing TTL ago.

        The consumer may stop early; what was read so far is kept and a later call continues from it. `where` may
        thin the pages out (offline); the consumer still applies it.
        """
        selection = [page_size, sorted((metadata or {}).items())]
        if self.offline and where is not None:
            selection.append(repr(where))
        key: CacheKey = ("listing", json.dumps(selection))
        entry = None if refresh else await self._backend.get(key)
        if entry is not None and self._clock() - entry.stored_at > self._listing_ttl:
            await self._backend.drop(key)
            entry = None
        pages: list[tuple[Job, ...]] = []
        cursor: str | None = None
        since: float | None = None
        if entry is not None:
            listing: _Listing = entry.value
            age = max(0.0, self._clock() - entry.stored_at)
            for index, jobs in enumerate(listing.pages):
                pages.append(jobs)
                yield JobPage(jobs, age, more=index < len(listing.pages) - 1 or listing.next_after is not None)
            if listing.next_after is None:
                return
            cursor = listing.next_after
            since = entry.stored_at  # a continued listing expires with its first page, never looking newer

        async def fetch(after: str | None) -> Page[Job]:
            return await self._client.list_jobs_page(limit=page_size, after=after, metadata=metadata, where=where)

        source = iterate_pages(fetch, after=cursor, what="fine-tuning jobs")
        try:
            async for page in source:
                jobs = tuple(page.items)
                for job in jobs:
                    await self._keep_job(job)  # a listed job is the whole job object
                pages.append(jobs)
                more = page_has_more(page)
                if since is None:
                    since = self._clock()
                await self._keep(key, _Listing(tuple(pages), page.next_cursor if more else None), stored_at=since)
                yield JobPage(jobs, None, more=more)
        finally:
            await source.aclose()

    # --- writes ---------------------------------------------------------------------------------------------------

    async def cancel_job(self, job_id: str) -> Job:
        """Ask the API to cancel the job; returns the job as the API answered."""
        return await self._write(job_id, self._client.cancel_job)

    async def pause_job(self, job_id: str) -> Job:
        """Ask the API to pause a running job; returns the job as the API answered."""
        return await self._write(job_id, self._client.pause_job)

    async def resume_job(self, job_id: str) -> Job:
        """Ask the API to resume a paused job; returns the job as the API answered."""
        return await self._write(job_id, self._client.resume_job)

    async def _write(self, job_id: str, send: Callable[[str], Any]) -> Job:
        """Send a write, then (landed or not) drop the cached listings, which may show the job's old status, and the
        job itself. The cache holds only finished jobs, which no write changes, so nothing else is stale."""
        try:
            job: Job = await send(job_id)
        finally:
            await self._backend.drop_kind("listing")
            await self._backend.drop(("job", job_id))
        return job


def _settled(job: Job) -> bool:
    """Finished long enough ago that its checkpoint list, read alongside the job, is complete."""
    return job.is_finished and job.finished_at is not None and job.finished_at <= time.time() - SETTLED_AFTER
