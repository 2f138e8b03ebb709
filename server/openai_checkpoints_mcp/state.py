"""What the server's lifespan gives every tool call: the settings and the store (the one gateway to the API).

The store and its HTTP client are created on first use rather than when the server starts:
building them (TLS context, or the demo dataset in demo mode) would otherwise delay the
answer to ``initialize``. It is still one store for the server's whole lifetime, closed
when the lifespan ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Settings

if TYPE_CHECKING:
    import httpx2

    from .api.cache import CacheBackend
    from .api.store import JobStore


@dataclass
class AppState:
    settings: Settings
    transport: httpx2.AsyncBaseTransport | None = None
    """Replaces the network (tests); None: the real network, or the bundled fake API in demo mode."""
    _store: JobStore | None = field(default=None, init=False, repr=False)

    @property
    def store(self) -> JobStore:
        """The one gateway to the API: the client behind the cache of finished jobs, created on first use."""
        if self._store is None:
            from .api.store import JobStore

            if self.settings.archive:
                self._store = _archive_store(self.settings.archive)
                return self._store
            transport = self.transport
            if transport is None and self.settings.demo:
                transport = _demo_transport()
            self._store = JobStore.open(self.settings, _backend(self.settings), transport)
        return self._store

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.aclose()
            self._store = None


def _backend(settings: Settings) -> CacheBackend:
    """The memory cache, with a persistent one behind it: Redis when `cache_url` is set, else the SQLite file unless
    turned off. Neither is opened before the first tool call that needs it."""
    from .api.cache import MemoryBackend

    memory = MemoryBackend(settings.cache_size)
    if settings.cache_size == 0 or not (settings.cache_url or settings.persistent_cache):
        return memory
    from .api.cache import LayeredBackend, account_namespace

    namespace = account_namespace(
        settings.base_url, settings.organization, settings.project, settings.api_key, settings.auth_header
    )
    max_bytes = settings.cache_max_mb * 1024 * 1024
    if settings.cache_url:
        from .api import redis_cache

        back: CacheBackend = redis_cache.RedisBackend(
            settings.cache_url,
            namespace,
            max_bytes=max_bytes,
            job_ttl=settings.cache_ttl,
            retry_after=redis_cache.RETRY_AFTER,  # read now, so that a test may shorten it
            redactor=settings.redactor,
        )
        return LayeredBackend(memory, back)
    from .api.sqlite_cache import FILE_NAME, SQLiteBackend

    path = settings.cache_directory() / FILE_NAME
    return LayeredBackend(memory, SQLiteBackend(path, namespace, max_bytes=max_bytes, redactor=settings.redactor))


def _archive_store(path: str) -> JobStore:
    """The store of ``--archive``: answers from the file; a file that cannot be used (the command line checked it
    at start-up, but it may have gone since) is every tool's `upstream_unavailable`, never a crash."""
    from .api.store import JobStore
    from .archive.schema import ArchiveFileError
    from .errors import CheckpointsError, ErrorCode

    try:
        return JobStore.open_archive(path)
    except ArchiveFileError as exc:
        raise CheckpointsError(ErrorCode.UPSTREAM_UNAVAILABLE, f"{exc}.") from None


def _demo_transport() -> httpx2.AsyncBaseTransport:
    """The bundled demo dataset behind the fake API, in-process: the real HTTP client, no network."""
    import httpx2

    from .fake import FakeOpenAI, demo_data

    return httpx2.ASGITransport(app=FakeOpenAI(demo_data(), api_key=None))
