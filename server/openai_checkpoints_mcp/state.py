"""What the server's lifespan gives every tool call: the settings and the store (the one gateway to the API).

The HTTP client is created on first use rather than when the server starts: building
it (TLS context, or the demo dataset in demo mode) would otherwise delay the answer to
``initialize``. It is still one client for the server's whole lifetime, closed when the
lifespan ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import Settings

if TYPE_CHECKING:
    import httpx2

    from .api.client import OpenAIClient
    from .api.store import JobStore


@dataclass
class AppState:
    settings: Settings
    transport: httpx2.AsyncBaseTransport | None = None
    """Replaces the network (tests); None: the real network, or the bundled fake API in demo mode."""
    _http: httpx2.AsyncClient | None = field(default=None, init=False, repr=False)
    _client: OpenAIClient | None = field(default=None, init=False, repr=False)
    _store: JobStore | None = field(default=None, init=False, repr=False)

    def _api_client(self) -> OpenAIClient:
        """The API client, created on first use; only the store uses it."""
        if self._client is None:
            from .api.client import OpenAIClient, create_http_client

            transport = self.transport
            if transport is None and self.settings.demo:
                transport = _demo_transport()
            self._http = create_http_client(self.settings, transport)
            self._client = OpenAIClient(self._http, self.settings)
        return self._client

    @property
    def store(self) -> JobStore:
        """The one gateway to the API: the client behind the cache of finished jobs, created on first use."""
        if self._store is None:
            from .api.cache import MemoryBackend
            from .api.store import JobStore

            settings = self.settings
            self._store = JobStore(
                self._api_client(),
                MemoryBackend(settings.cache_size),
                job_ttl=settings.cache_ttl,
                listing_ttl=settings.listing_ttl,
            )
        return self._store

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._client = None
            self._store = None


def _demo_transport() -> httpx2.AsyncBaseTransport:
    """The bundled demo dataset behind the fake API, in-process: the real HTTP client, no network."""
    import httpx2

    from .fake import FakeOpenAI, demo_data

    return httpx2.ASGITransport(app=FakeOpenAI(demo_data(), api_key=None))
