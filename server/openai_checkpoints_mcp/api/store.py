"""Reads jobs, checkpoints, result files and job listings through the `ResponseCache`.

A finished job's checkpoints are cached only when they were read after the job was
known to be finished (from the cache or a listing), or when the job finished long
enough ago that no checkpoint can still be on its way: a listing read in the same
instant as the job's last checkpoint must not be kept for ever.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

import anyio

from ..errors import CheckpointsError
from .cache import ResponseCache, is_finished
from .client import OpenAIClient
from .models import Checkpoint, Job
from .pagination import Collected, OnPage, Page, iterate_pages, page_has_more

SETTLED_AFTER = 300
"""Seconds after `finished_at` from which a finished job's checkpoints are taken as complete."""


@dataclass(frozen=True)
class JobPage:
    jobs: tuple[Job, ...]
    cached_age: float | None
    """Seconds since the page was read, when it came from the cache; None when read just now."""
    more: bool = True
    """Whether another page follows."""


class JobStore:
    """The API client with the cache in front. Every method may raise `CheckpointsError`."""

    def __init__(self, client: OpenAIClient, cache: ResponseCache) -> None:
        self.client = client
        self.cache = cache

    def job_changed(self, job_id: str) -> None:
        """A write was sent for `job_id`: listings that may show its old status are dropped."""
        self.cache.forget_listings()

    async def job(self, job_id: str, *, refresh: bool = False) -> Job:
        cached = None if refresh else self.cache.job(job_id)
        if cached is not None:
            return cached
        job = await self.client.get_job(job_id)
        self.cache.store_job(job)
        return job

    async def checkpoints_of(
        self, job: Job, *, refresh: bool = False, on_page: OnPage | None = None
    ) -> Collected[Checkpoint]:
        """Every checkpoint of a job whose object is already in hand (read before this call)."""
        if is_finished(job) and not refresh:
            cached = self.cache.checkpoints(job.id)
            if cached is not None:
                return Collected(items=cached, scanned=len(cached))
        collected = await self.client.list_checkpoints(job.id, on_page=on_page)
        if is_finished(job) and not collected.truncated:
            self.cache.store_checkpoints(job.id, collected.items)
        return collected

    async def job_and_checkpoints(
        self, job_id: str, *, refresh: bool = False, after: str | None = None, on_page: OnPage | None = None
    ) -> tuple[Job, Collected[Checkpoint]]:
        """The job and its checkpoints; when neither is cached, both are read concurrently (one round trip)."""
        cached = None if refresh else self.cache.job(job_id)
        if after is None and not refresh and (cached is not None or self.cache.checkpoints(job_id) is not None):
            # A finished job: its kept checkpoints need no request, and the job object at most one.
            finished = cached or await self.job(job_id)
            return finished, await self.checkpoints_of(finished, on_page=on_page)

        job: Job | None = None
        collected: Collected[Checkpoint] | None = None
        checkpoints_error: CheckpointsError | None = None

        async def read_checkpoints() -> None:
            nonlocal collected, checkpoints_error
            try:
                collected = await self.client.list_checkpoints(job_id, after=after, on_page=on_page)
            except CheckpointsError as exc:  # reported after the job's own answer, which explains it better
                checkpoints_error = exc

        job_error: CheckpointsError | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(read_checkpoints)
            try:
                job = cached or await self.client.get_job(job_id)
            except CheckpointsError as exc:
                job_error = exc
                group.cancel_scope.cancel()
        if job_error is not None:
            raise job_error
        if checkpoints_error is not None:
            raise checkpoints_error
        assert job is not None and collected is not None
        self.cache.store_job(job)
        if after is None and not collected.truncated and _settled(job):
            self.cache.store_checkpoints(job_id, collected.items)
        return job, collected

    async def result_file(self, file_id: str, *, finished: bool, refresh: bool = False) -> bytes:
        """A file's content, cached by id once its job has finished (`finished`); the file of a job that is still
        going (a paused job may already list one) may yet grow, so it is always read afresh."""
        cached = None if refresh or not finished else self.cache.file(file_id)
        if cached is not None:
            return cached
        content = await self.client.get_file_content(file_id)
        if finished:
            self.cache.store_file(file_id, content)
        return content

    async def job_pages(
        self, *, page_size: int, metadata: Mapping[str, str] | None = None, refresh: bool = False
    ) -> AsyncGenerator[JobPage, None]:
        """Pages of the job listing (newest first), reusing a listing read less than the listing TTL ago.

        The consumer may stop early; what was read so far is kept and a later call continues from it.
        """
        key = (page_size, tuple(sorted((metadata or {}).items())))
        listing = None if refresh else self.cache.listing(key)
        pages: list[tuple[Job, ...]] = []
        cursor: str | None = None
        since: float | None = None
        if listing is not None:
            age = self.cache.age(listing)
            for index, jobs in enumerate(listing.pages):
                pages.append(jobs)
                yield JobPage(jobs, age, more=index < len(listing.pages) - 1 or listing.next_after is not None)
            if listing.next_after is None:
                return
            cursor = listing.next_after
            since = listing.stored_at

        async def fetch(after: str | None) -> Page[Job]:
            return await self.client.list_jobs_page(limit=page_size, after=after, metadata=metadata)

        source = iterate_pages(fetch, after=cursor, what="fine-tuning jobs")
        try:
            async for page in source:
                jobs = tuple(page.items)
                for job in jobs:
                    self.cache.store_job(job)  # a listed job is the whole job object
                pages.append(jobs)
                more = page_has_more(page)
                self.cache.store_listing(key, pages, jobs[-1].id if more else None, since=since)
                yield JobPage(jobs, None, more=more)
        finally:
            await source.aclose()


def _settled(job: Job) -> bool:
    """Finished long enough ago that its checkpoint list, read alongside the job, is complete."""
    if not is_finished(job):
        return False
    return job.finished_at is not None and job.finished_at <= time.time() - SETTLED_AFTER
