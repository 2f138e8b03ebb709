"""An in-memory cache of what cannot change, so a repeated question costs no request.

Once a job has finished (``succeeded``, ``failed`` or ``cancelled``) its checkpoints and
its result file never change, and its job object changes only in rare details, so the
job object is kept for a TTL and the rest until evicted. Nothing of a running job is
kept. Job listings, which do change, are kept only briefly (`listing_ttl`) and only for
tools that select jobs by a filter. One LRU holds every entry, bounded by count and, for
result files, by bytes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .models import Checkpoint, Job

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
"""Statuses after which a job no longer changes."""
ACTIVE_STATUSES = frozenset({"validating_files", "queued", "running", "paused"})
"""Statuses of a job that has not finished (it may still gain checkpoints, a result file, or fail)."""

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Result files kept in all, in bytes (the oldest are evicted first)."""


def is_finished(job: Job) -> bool:
    return job.status in TERMINAL_STATUSES


@dataclass
class _Entry:
    value: Any
    stored_at: float
    size: int = 0


@dataclass(frozen=True)
class Listing:
    """The pages of a job listing read so far, and where it stopped (None: read to the end)."""

    pages: tuple[tuple[Job, ...], ...]
    next_after: str | None
    stored_at: float


class ResponseCache:
    """LRU of finished jobs, their checkpoints, result files and short-lived job listings.

    Args:
        max_entries: entries kept in all (0 keeps nothing).
        job_ttl: seconds a finished job object is served before it is read again.
        listing_ttl: seconds a job listing is reused.
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self, max_entries: int, *, job_ttl: float, listing_ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self._job_ttl = job_ttl
        self._listing_ttl = listing_ttl
        self._clock = clock
        self._file_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: Hashable, ttl: float | None = None) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if ttl is not None and self._clock() - entry.stored_at > ttl:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def _put(self, key: Hashable, value: Any, size: int = 0, stored_at: float | None = None) -> None:
        if self._max_entries <= 0 or size > MAX_FILE_BYTES:
            return
        self._drop(key)
        self._entries[key] = _Entry(value, self._clock() if stored_at is None else stored_at, size)
        self._file_bytes += size
        while len(self._entries) > self._max_entries or self._file_bytes > MAX_FILE_BYTES:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._file_bytes -= entry.size

    def job(self, job_id: str) -> Job | None:
        return self._get(("job", job_id), self._job_ttl)  # type: ignore[no-any-return]

    def store_job(self, job: Job) -> None:
        """Keep the job only if it has finished."""
        if is_finished(job):
            self._put(("job", job.id), job)

    def checkpoints(self, job_id: str) -> list[Checkpoint] | None:
        found = self._get(("checkpoints", job_id))
        return None if found is None else list(found)

    def store_checkpoints(self, job_id: str, checkpoints: list[Checkpoint]) -> None:
        """Keep a finished job's complete checkpoint list (the caller checks both)."""
        self._put(("checkpoints", job_id), tuple(checkpoints))

    def file(self, file_id: str) -> bytes | None:
        return self._get(("file", file_id))  # type: ignore[no-any-return]

    def store_file(self, file_id: str, content: bytes) -> None:
        self._put(("file", file_id), content, size=len(content))

    def listing(self, key: Hashable) -> Listing | None:
        return self._get(("listing", key), self._listing_ttl)  # type: ignore[no-any-return]

    def store_listing(
        self, key: Hashable, pages: list[tuple[Job, ...]], next_after: str | None, *, since: float | None = None
    ) -> None:
        """Keep a listing's pages. `since`: when its first page was read, for a listing continued from a cached
        one, so that continuing it never makes its older pages look new (they expire with the first)."""
        stored_at = self._clock() if since is None else since
        self._put(("listing", key), Listing(tuple(pages), next_after, stored_at), stored_at=stored_at)

    def forget_listings(self) -> None:
        """Drop every job listing (a write changed some job's status)."""
        for key in [key for key in self._entries if isinstance(key, tuple) and key[0] == "listing"]:
            self._drop(key)

    def age(self, listing: Listing) -> float:
        return max(0.0, self._clock() - listing.stored_at)
