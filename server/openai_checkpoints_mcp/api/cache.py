"""Where the store keeps what it may reuse: the `CacheBackend` interface and its in-memory implementation.

A backend is a plain container of entries under ``(kind, id)`` keys. It knows nothing of
jobs or their statuses: what may be kept, and for how long it may be served, is decided by
`api.store.JobStore`. The in-memory `MemoryBackend` is one LRU bounded by entry count and by (estimated) bytes,
result files by their own byte bound within it; the persistent ones (`api.sqlite_cache`, `api.redis_cache`) plug
in behind the same interface, each behind a `MemoryBackend` (`LayeredBackend`), and share what is defined here:
the kinds they keep, the account namespace their keys are filed under and the encoding of the values. The methods
are coroutines so that a backend may read from disk or the network without blocking the event loop.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .models import Checkpoint, Job

if TYPE_CHECKING:
    from ..redaction import Redactor

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Result files kept in all, in bytes (the least recently used are evicted first)."""
MAX_MEMORY_BYTES = 256 * 1024 * 1024
"""Everything the memory cache keeps, in (estimated) bytes: as much as the default cache file (``--cache-max-mb``),
some 80,000 checkpoints or 45,000 job objects, far more than the 512 entries of ordinary jobs need, while 24 jobs
of 10,000 checkpoints each (some 700 MB resident) no longer fit."""
JOB_BYTES = 6 * 1024
"""The resident size of a parsed job object, as measured (about 5.4 KB for a typical job)."""
CHECKPOINT_BYTES = 3 * 1024
"""The resident size of a parsed checkpoint, as measured (about 2.8 KB with its seven metrics)."""
ENTRY_BYTES = 256
"""What any entry costs besides its value (the key, the entry, the LRU's links)."""

CacheKey = tuple[str, str]
"""``(kind, id)``: kind is ``job``, ``checkpoints``, ``file`` or ``listing``."""
PERSISTENT_KINDS = frozenset({"job", "checkpoints", "file"})
"""The kinds a persistent backend keeps; listings stay in memory only."""


@dataclass(frozen=True)
class Entry:
    value: Any
    stored_at: float
    """The store's clock when the value was read from the API (wall-clock seconds, as `time.time`)."""
    size: int = 0
    """Bytes, for values whose size is bounded separately (result files); 0 otherwise."""


class CacheBackend(Protocol):
    """The store's cache. No method blocks the event loop; a backend may drop any entry at any time."""

    async def get(self, key: CacheKey) -> Entry | None:
        """The entry under `key` (marking it recently used), or None."""

    async def put(self, key: CacheKey, value: Any, *, stored_at: float, size: int = 0) -> None:
        """Keep `value` under `key`, replacing what was there; a backend may decline (it is full, or it is too big)."""

    async def drop(self, key: CacheKey) -> None:
        """Forget `key`, if present."""

    async def drop_kind(self, kind: str) -> None:
        """Forget every entry of `kind`."""

    async def aclose(self) -> None:
        """Write what is pending and let go of any resource (the store's `aclose` calls it)."""


def estimated_bytes(kind: str, value: Any, size: int = 0) -> int:
    """What an entry costs in memory, cheaply: a file its length, a job or a checkpoint its measured average (see
    `JOB_BYTES`, `CHECKPOINT_BYTES`), a listing its jobs; never a walk of the objects."""
    if kind == "file":
        return ENTRY_BYTES + size
    if kind == "job":
        return ENTRY_BYTES + JOB_BYTES
    if kind == "checkpoints":
        return ENTRY_BYTES + CHECKPOINT_BYTES * len(value)
    pages = getattr(value, "pages", None)
    if pages is not None:  # a listing (`store._Listing`): its pages of jobs
        return ENTRY_BYTES + JOB_BYTES * sum(len(page) for page in pages)
    return ENTRY_BYTES


class MemoryBackend:
    """An LRU of at most `max_entries` entries, whose estimated sizes (`estimated_bytes`) add up to at most
    `max_bytes`, result files at most `max_file_bytes` of it (0 entries keeps nothing)."""

    def __init__(
        self, max_entries: int, *, max_bytes: int = MAX_MEMORY_BYTES, max_file_bytes: int = MAX_FILE_BYTES
    ) -> None:
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._costs: dict[CacheKey, int] = {}
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_file_bytes = max_file_bytes
        self._bytes = 0
        self._file_bytes = 0

    @property
    def bytes(self) -> int:
        """The estimated size of everything kept."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: CacheKey) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    async def put(self, key: CacheKey, value: Any, *, stored_at: float, size: int = 0) -> None:
        cost = estimated_bytes(key[0], value, size)
        if self._max_entries <= 0 or cost > self._max_bytes or size > self._max_file_bytes:
            self._forget(key)  # what was there is stale now
            return
        self._forget(key)
        self._entries[key] = Entry(value, stored_at, size)
        self._costs[key] = cost
        self._bytes += cost
        self._file_bytes += size
        while (
            len(self._entries) > self._max_entries
            or self._bytes > self._max_bytes
            or self._file_bytes > self._max_file_bytes
        ):
            self._forget(next(iter(self._entries)))

    async def drop(self, key: CacheKey) -> None:
        self._forget(key)

    def _forget(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= self._costs.pop(key)
            self._file_bytes -= entry.size

    async def drop_kind(self, kind: str) -> None:
        for key in [key for key in self._entries if key[0] == kind]:
            self._forget(key)

    async def aclose(self) -> None:
        pass


class LayeredBackend:
    """A `MemoryBackend` in front of a persistent backend (SQLite, Redis): every kind in memory, the persistent kinds
    in the back one too. What the back one finds is kept in front, so it is asked once per process."""

    def __init__(self, front: MemoryBackend, back: CacheBackend) -> None:
        self.front = front
        self.back = back

    async def get(self, key: CacheKey) -> Entry | None:
        entry = await self.front.get(key)
        if entry is not None or key[0] not in PERSISTENT_KINDS:
            return entry
        entry = await self.back.get(key)
        if entry is not None:
            await self.front.put(key, entry.value, stored_at=entry.stored_at, size=entry.size)
        return entry

    async def put(self, key: CacheKey, value: Any, *, stored_at: float, size: int = 0) -> None:
        await self.front.put(key, value, stored_at=stored_at, size=size)
        await self.back.put(key, value, stored_at=stored_at, size=size)

    async def drop(self, key: CacheKey) -> None:
        await self.front.drop(key)
        await self.back.drop(key)

    async def drop_kind(self, kind: str) -> None:
        await self.front.drop_kind(kind)
        await self.back.drop_kind(kind)

    async def aclose(self) -> None:
        await self.back.aclose()


# --- shared by the persistent backends ---------------------------------------------------------------------------


def account_namespace(
    base_url: str, organization: str | None, project: str | None, api_key: str | None, auth_header: str
) -> str:
    """The prefix of every key of one account, as its requests authenticate (the header the key goes in
    included): a SHA-256 hex digest; the key itself is never stored."""
    material = json.dumps(
        ["openai-checkpoints-mcp", base_url.rstrip("/"), organization, project, api_key, auth_header.lower()]
    )
    return hashlib.sha256(material.encode()).hexdigest()


def encode(kind: str, value: Any, redactor: Redactor | None = None) -> bytes:
    """A cached value as stored: the API's JSON for jobs and checkpoints (unknown fields kept), bytes for files.

    `redactor`: what the API sent is masked as every answer of the server is, so that an API that echoes the key in
    a job's metadata or a result file does not write it into the cache file (or Redis); a file that is not UTF-8 text
    is stored as it came."""
    if kind == "file":
        blob = bytes(value)
        if not redactor:
            return blob
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError:
            return blob
        masked = redactor.mask(text)
        return blob if masked == text else masked.encode()
    if kind == "job":
        payload: Any = value.model_dump(mode="json", by_alias=True)
    elif kind == "checkpoints":
        payload = [c.model_dump(mode="json", by_alias=True) for c in value]
    else:
        raise ValueError(f"not a persistent kind: {kind}")
    return json.dumps(redactor.mask_value(payload) if redactor else payload).encode()


def decode(kind: str, blob: bytes) -> Any:
    """What `encode` wrote, as the store kept it; ValueError (pydantic's ValidationError included) for anything else."""
    if kind == "file":
        return bytes(blob)
    if kind == "job":
        return Job.model_validate(json.loads(blob))
    if kind == "checkpoints":
        return tuple(Checkpoint.model_validate(c) for c in json.loads(blob))
    raise ValueError(f"not a persistent kind: {kind}")
