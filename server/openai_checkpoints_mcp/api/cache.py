"""Where the store keeps what it may reuse: the `CacheBackend` interface and its in-memory implementation.

A backend is a plain container of entries under ``(kind, id)`` keys. It knows nothing of
jobs or their statuses: what may be kept, and for how long it may be served, is decided by
`api.store.JobStore`. The in-memory `MemoryBackend` is one LRU bounded by entry count and,
for result files, by bytes; the persistent one (`api.sqlite_cache`) plugs in behind the same interface. The
methods are coroutines so that a backend may read from disk in a worker thread, never blocking the event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Result files kept in all, in bytes (the least recently used are evicted first)."""

CacheKey = tuple[str, str]
"""``(kind, id)``: kind is ``job``, ``checkpoints``, ``file`` or ``listing``."""


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


class MemoryBackend:
    """An LRU of at most `max_entries` entries, whose sizes add up to at most `max_bytes` (0 entries keeps nothing)."""

    def __init__(self, max_entries: int, *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: CacheKey) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    async def put(self, key: CacheKey, value: Any, *, stored_at: float, size: int = 0) -> None:
        if self._max_entries <= 0 or size > self._max_bytes:
            return
        self._forget(key)
        self._entries[key] = Entry(value, stored_at, size)
        self._bytes += size
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._forget(next(iter(self._entries)))

    async def drop(self, key: CacheKey) -> None:
        self._forget(key)

    def _forget(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size

    async def drop_kind(self, kind: str) -> None:
        for key in [key for key in self._entries if key[0] == kind]:
            self._forget(key)

    async def aclose(self) -> None:
        pass
