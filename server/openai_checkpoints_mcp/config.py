"""Settings from the environment (named as openai-python names them) and flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .api.retry import DEFAULT_MAX_RETRIES  # retries after the first attempt, as openai-python: 3 attempts in all

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEMO_BASE_URL = "http://demo.openai-checkpoints-mcp.invalid/v1"

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for one HTTP response (connect is capped at 5 s)."""
DEFAULT_DEADLINE = 120.0
"""Seconds one whole tool call may take, retries and every page included."""
DEFAULT_PAGE_SIZE = 100
"""Items asked for per list request; the API documents no maximum, so stay modest."""
DEFAULT_MAX_ITEMS = 10_000
"""Items one list may collect before the result says it was truncated."""
DEFAULT_CONCURRENCY = 8
"""Requests for different jobs in flight at once (pages of one list are always sequential)."""
DEFAULT_CACHE_SIZE = 512
"""Finished jobs whose job object, checkpoints and result file are kept in memory."""
DEFAULT_CACHE_TTL = 600.0
"""Seconds a cached (finished) job object is served before it is read again."""
DEFAULT_AZURE_API_VERSION = "2024-10-21"
"""The latest GA Azure OpenAI data-plane version (the legacy dated API needs one on every request)."""
ALLOW_WRITES_ENV = "OPENAI_CHECKPOINTS_MCP_ALLOW_WRITES"


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to reach the API. The key is never printed (see `__repr__`)."""

    api_key: str | None = None
    base_url: str = DEFAULT_BASE_URL
    organization: str | None = None
    project: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    deadline: float = DEFAULT_DEADLINE
    page_size: int = DEFAULT_PAGE_SIZE
    max_items: int = DEFAULT_MAX_ITEMS
    demo: bool = False
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = DEFAULT_CONCURRENCY
    cache_size: int = DEFAULT_CACHE_SIZE
    """0 disables the cache."""
    cache_ttl: float = DEFAULT_CACHE_TTL
    allow_writes: bool = False
    """Register cancel_job, pause_job and resume_job (off unless asked for)."""
    auth_header: str = "Authorization"
    """The header the key is sent in: ``Authorization`` gets ``Bearer <key>``; any other name gets the bare key."""
    api_version: str | None = None
    """Sent as the ``api-version`` query parameter on every request (Azure's legacy dated API)."""
    azure: bool = False

    def __post_init__(self) -> None:
        if not self.timeout > 0 or not self.deadline > 0:
            raise ValueError("timeout and deadline must be above 0 seconds")
        if not 0 <= self.max_retries <= 10:
            raise ValueError("max_retries must be from 0 to 10")
        if not 1 <= self.page_size <= 1000 or self.max_items < 1:
            raise ValueError("page_size must be from 1 to 1000 and max_items at least 1")
        if not 1 <= self.concurrency <= 64:
            raise ValueError("concurrency must be from 1 to 64")
        if self.cache_size < 0 or not self.cache_ttl >= 0:
            raise ValueError("cache_size and cache_ttl must not be negative")

    def __repr__(self) -> str:  # never show the key, even in a traceback
        key = "set" if self.api_key else "missing"
        return (
            f"Settings(api_key={key}, base_url={self.base_url!r}, organization={self.organization!r}, "
            f"project={self.project!r}, timeout={self.timeout}, max_retries={self.max_retries}, "
            f"deadline={self.deadline}, page_size={self.page_size}, max_items={self.max_items}, demo={self.demo}, "
            f"concurrency={self.concurrency}, cache_size={self.cache_size}, cache_ttl={self.cache_ttl}, "
            f"allow_writes={self.allow_writes}, auth_header={self.auth_header!r}, api_version={self.api_version!r}, "
            f"azure={self.azure})"
        )

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID``.

        Empty variables count as unset. `overrides` (from flags) win over the environment;
        an override of None is ignored.
        """
        env = os.environ if env is None else env

        def read(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        values: dict[str, object] = {
            "api_key": read("OPENAI_API_KEY"),
            "base_url": read("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            "organization": read("OPENAI_ORG_ID"),
            "project": read("OPENAI_PROJECT_ID"),
            "allow_writes": (read(ALLOW_WRITES_ENV) or "").lower() in {"1", "true", "yes", "on"},
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("demo"):  # the bundled fake: no key, no account, never the network
            values |= {"api_key": None, "base_url": DEMO_BASE_URL, "organization": None, "project": None}
        return cls(**values)  # type: ignore[arg-type]
