"""Settings from the environment (named as openai-python names them) and flags."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .api.retry import (
    DEFAULT_MAX_RETRIES as DEFAULT_MAX_RETRIES,
)  # retries after the first attempt, as openai-python: 3 attempts in all

if TYPE_CHECKING:
    from .redaction import Redactor

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
DEFAULT_MAX_RESPONSE_MB = 32
"""MiB of one JSON answer (a page, a job) read at most: the body is refused beyond it, decompressed bytes counted."""
DEFAULT_MAX_RESULT_FILE_MB = 256
"""MiB of one result file read at most (decompressed): the file is refused beyond it."""
MIB = 1024 * 1024
DEFAULT_CONCURRENCY = 16
"""Requests for different jobs in flight at once (pages of one list are always sequential)."""
DEFAULT_CACHE_SIZE = 512
"""Finished jobs whose job object, checkpoints and result file are kept in memory."""
DEFAULT_CACHE_MAX_MB = 256
"""Megabytes the persistent cache file may hold before its least recently used entries are evicted."""
DEFAULT_CACHE_TTL = 600.0
"""Seconds a cached (finished) job object is served before it is read again."""
DEFAULT_LISTING_TTL = 60.0
"""Seconds a job listing read by compare_jobs is reused (refresh=true re-reads it)."""
DEFAULT_AZURE_API_VERSION = "2024-10-21"
"""The latest GA Azure OpenAI data-plane version (the legacy dated API needs one on every request)."""
AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
"""Hosts of Azure OpenAI resources: an ``OPENAI_BASE_URL`` on one of them is Azure's v1 surface."""
AZURE_KEY_HEADER = "api-key"
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name (RFC 9110 token)."""
MAX_RETRIES = 10
MAX_CONCURRENCY = 64
ALLOW_WRITES_ENV = "OPENAI_CHECKPOINTS_MCP_ALLOW_WRITES"
CACHE_DIR_ENV = "OPENAI_CHECKPOINTS_MCP_CACHE_DIR"
CACHE_URL_ENV = "OPENAI_CHECKPOINTS_MCP_CACHE_URL"
CACHE_URL_SCHEMES = ("redis", "rediss", "unix")
REDIS_EXTRA = "pip install 'openai-checkpoints-mcp[redis]'"
"""How to install what ``--cache-url`` needs (the optional ``redis`` package)."""
SHUTDOWNS_ENV = "OPENAI_CHECKPOINTS_MCP_SHUTDOWNS"
ARCHIVE_ENV = "OPENAI_CHECKPOINTS_MCP_ARCHIVE"
ADMIN_KEY_ENV = "OPENAI_ADMIN_KEY"
"""An admin key (``sk-admin-...``): only list_checkpoint_permissions sends it, and only to its endpoint."""
TOOLSETS_ENV = "OPENAI_CHECKPOINTS_MCP_TOOLSETS"
APP_NAME = "openai-checkpoints-mcp"


class CacheUrlError(ValueError):
    """The cache URL cannot be used (its scheme, its form, or it contradicts ``--no-persistent-cache``); the
    message names the URL with its password masked."""


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
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_MB * MIB
    """Bytes of one JSON answer read at most (``--max-response-mb``); a larger body is ``bad_response``."""
    max_result_file_bytes: int = DEFAULT_MAX_RESULT_FILE_MB * MIB
    """Bytes of one result file read at most (``--max-result-file-mb``); a larger file is ``bad_response``."""
    demo: bool = False
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = DEFAULT_CONCURRENCY
    cache_size: int = DEFAULT_CACHE_SIZE
    """0 disables the cache."""
    cache_ttl: float = DEFAULT_CACHE_TTL
    persistent_cache: bool = False
    """Keep finished jobs in the SQLite file in `cache_dir` too. Off for a bare Settings (tests, embedding);
    `from_env` (the command line) turns it on unless in demo mode or ``--no-persistent-cache``."""
    cache_dir: str | None = None
    """Where the persistent cache lives; None: the platform's user cache directory (see `cache_directory`)."""
    cache_url: str | None = None
    """A Redis database (``redis://HOST:PORT/DB``, ``rediss://...``, ``unix:///PATH``) that keeps finished jobs in
    place of the SQLite file, shared by every server using it; None: the file (if `persistent_cache`). Never printed
    with its password (see `mask_url`)."""
    cache_max_mb: int = DEFAULT_CACHE_MAX_MB
    listing_ttl: float = DEFAULT_LISTING_TTL
    allow_writes: bool = False
    """Register cancel_job, pause_job and resume_job (off unless asked for)."""
    toolsets: tuple[str, ...] | None = None
    """The tool families served (``--toolsets``, see `tools.toolsets`); None: every read tool (and the write tools
    with `allow_writes`)."""
    auth_header: str = "Authorization"
    """The header the key is sent in: ``Authorization`` gets ``Bearer <key>``; any other name gets the bare key."""
    api_version: str | None = None
    """Sent as the ``api-version`` query parameter on every request (Azure's legacy dated API)."""
    azure: bool = False
    """The API is Azure OpenAI (legacy via ``AZURE_OPENAI_ENDPOINT``, or v1 via an Azure ``OPENAI_BASE_URL``)."""
    key_env: str = "OPENAI_API_KEY"
    """The environment variable the key comes from; messages about a missing or rejected key name it."""
    shutdowns_file: str | None = None
    """A JSON file of base-model shutdown dates (``{"model": "YYYY-MM-DD"}``) over the bundled table (see
    `shutdowns`); None: the bundled table only."""
    archive: str | None = None
    """Answer offline from this archive file (``--archive``): no key, no network, no write tools."""
    azure_note: str | None = None
    """How the Azure variables were resolved and which set variables they override, for the startup log."""
    admin_key: str | None = None
    """An admin key (``OPENAI_ADMIN_KEY``), sent as ``Authorization: Bearer`` to the checkpoint permissions
    endpoint only, never with any other request; never printed (see `__repr__`)."""

    def __post_init__(self) -> None:
        if not self.timeout > 0 or not self.deadline > 0:
            raise ValueError("timeout and deadline must be above 0 seconds")
        if not 0 <= self.max_retries <= MAX_RETRIES:
            raise ValueError(f"max_retries must be from 0 to {MAX_RETRIES}")
        if not 1 <= self.page_size <= 1000 or self.max_items < 1:
            raise ValueError("page_size must be from 1 to 1000 and max_items at least 1")
        if self.max_response_bytes < 1 or self.max_result_file_bytes < 1:
            raise ValueError("max_response_bytes and max_result_file_bytes must be at least 1")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be from 1 to {MAX_CONCURRENCY}")
        if self.cache_size < 0 or not self.cache_ttl >= 0 or not self.listing_ttl >= 0:
            raise ValueError("cache_size, cache_ttl and listing_ttl must not be negative")
        if self.cache_max_mb < 1:
            raise ValueError("cache_max_mb must be at least 1")
        if not HEADER_NAME.fullmatch(self.auth_header):
            raise ValueError(f"auth_header must be an HTTP header name (e.g. api-key), got {self.auth_header!r}")
        if self.cache_url is not None:
            check_cache_url(self.cache_url)
        if self.toolsets is not None:
            from .tools.toolsets import parse

            parse(",".join(self.toolsets))

    def __repr__(self) -> str:  # never show the key, even in a traceback
        key = "none needed (demo)" if self.demo else f"{'set' if self.api_key else 'missing'} ({self.key_env})"
        return (
            f"Settings(api_key={key}, base_url={masked_base_url(self.base_url)!r}, organization={self.organization!r}, "
            f"project={self.project!r}, timeout={self.timeout}, max_retries={self.max_retries}, "
            f"deadline={self.deadline}, page_size={self.page_size}, max_items={self.max_items}, "
            f"max_response_bytes={self.max_response_bytes}, max_result_file_bytes={self.max_result_file_bytes}, "
            f"demo={self.demo}, "
            f"concurrency={self.concurrency}, cache_size={self.cache_size}, cache_ttl={self.cache_ttl}, "
            f"listing_ttl={self.listing_ttl}, persistent_cache={self.persistent_cache}, cache_dir={self.cache_dir!r}, "
            f"cache_url={None if self.cache_url is None else mask_url(self.cache_url)!r}, "
            f"cache_max_mb={self.cache_max_mb}, "
            f"allow_writes={self.allow_writes}, {_toolsets_repr(self.toolsets)}"
            f"auth_header={self.auth_header!r}, api_version={self.api_version!r}, "
            f"azure={self.azure}{f' ({self.azure_note})' if self.azure_note else ''}"
            f"{f', archive={self.archive!r}' if self.archive else ''}, "
            f"admin_key={'none needed (demo)' if self.demo else 'set' if self.admin_key else 'missing'} "
            f"({ADMIN_KEY_ENV}))"
        )

    __str__ = __repr__

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never leave the server: the API key, the admin key, the base URL's credentials and the cache
        URL's password."""
        found = [s for s in (self.api_key, self.admin_key) if s] + list(base_url_credentials(self.base_url))
        if self.cache_url:
            found += cache_url_passwords(self.cache_url)
        return tuple(dict.fromkeys(found))

    @cached_property
    def redactor(self) -> Redactor:
        """Masks `secrets` in any text (`redaction.Redactor`); built on first use, once per settings."""
        from .redaction import redactor_for

        return redactor_for(self.secrets)

    def cache_directory(self) -> Path:
        """The directory of the persistent cache: `cache_dir`, or the platform's user cache directory."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return default_cache_dir()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID``, and the
        Azure variables ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_KEY`` and ``OPENAI_API_VERSION``.

        Empty variables count as unset. `overrides` (from flags) win over the environment;
        an override of None is ignored. Demo mode ignores every variable. Azure (see `_azure_values`):
        ``AZURE_OPENAI_ENDPOINT`` wins over ``OPENAI_API_KEY``/``OPENAI_BASE_URL``; an ``OPENAI_BASE_URL`` on an
        Azure host is Azure's v1 surface.

        The cache: ``OPENAI_CHECKPOINTS_MCP_CACHE_URL`` (a Redis URL) replaces the SQLite file; an override of
        ``persistent_cache=False`` (``--no-persistent-cache``) wins over that variable, and together with a
        ``cache_url`` override (``--cache-url``) is refused as contradictory (`CacheUrlError`).

        Toolsets: ``OPENAI_CHECKPOINTS_MCP_TOOLSETS`` or a ``toolsets`` override (``--toolsets``, text as typed) is
        parsed here; an unknown name, or one that contradicts the write setting, is refused (`ToolsetError`).
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
            "persistent_cache": True,
            "cache_dir": read(CACHE_DIR_ENV),
            "cache_url": read(CACHE_URL_ENV),
            "shutdowns_file": read(SHUTDOWNS_ENV),
            "archive": read(ARCHIVE_ENV),
            "admin_key": read(ADMIN_KEY_ENV),
            "toolsets": read(TOOLSETS_ENV),
        }
        if not overrides.get("demo"):
            values |= _azure_values(read, overrides.get("auth_header"))
        if overrides.get("persistent_cache") is False:
            if overrides.get("cache_url") is not None:
                raise CacheUrlError(
                    f"--cache-url {mask_url(str(overrides['cache_url']))} and --no-persistent-cache contradict each "
                    "other: give one of them"
                )
            values["cache_url"] = None  # the flag wins over the variable
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("demo"):  # the bundled fake: no key, no account, never the network
            values |= {
                "api_key": None,
                "admin_key": None,
                "base_url": DEMO_BASE_URL,
                "organization": None,
                "project": None,
            }
            values["shutdowns_file"] = None  # the demo answers the same everywhere
            values["persistent_cache"] = False  # the demo data is in the package: nothing to keep
            values["cache_url"] = None
        if values.get("archive"):  # the archive is the store: nothing to keep, nothing to write
            values |= {"persistent_cache": False, "allow_writes": False, "cache_url": None}
        if isinstance(values["toolsets"], str):
            from .tools.toolsets import ToolsetError, contradiction, parse

            values["toolsets"] = parse(values["toolsets"])
            refusal = contradiction(
                values["toolsets"], allow_writes=bool(values["allow_writes"]), archive=bool(values.get("archive"))
            )
            if refusal:
                raise ToolsetError(refusal)
        return cls(**values)  # type: ignore[arg-type]


def _toolsets_repr(toolsets: tuple[str, ...] | None) -> str:
    return "" if toolsets is None else f"toolsets={','.join(toolsets)}, "


def default_cache_dir() -> Path:
    """The platform's user cache directory for this application (``~/.cache/openai-checkpoints-mcp`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def mask_url(url: str) -> str:
    """`url` with its password (the userinfo after ``user:``, and a ``password=`` query value) as ``***``: safe to
    print, as is anything else of a cache URL."""
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    before_query, question, query = rest.partition("?")
    if "@" in before_query:
        userinfo, _, after = before_query.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        before_query = f"{user}{':***' if colon else ''}@{after}"
    if question:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
    return f"{head}{sep}{before_query}{question}{query}"


def cache_url_passwords(url: str) -> tuple[str, ...]:
    """The passwords of a cache URL, as written and percent-decoded: its userinfo's and any ``password=`` query value
    (redis accepts both; `mask_url` hides both)."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
    except ValueError:
        return ()
    found += [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if key.lower() == "password"]
    found += [unquote(piece) for piece in found]
    return tuple(dict.fromkeys(piece for piece in found if piece))


def masked_base_url(url: str) -> str:
    """The API's base URL safe to show (errors, logs, repr): any ``user:password@`` as ``***@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def base_url_credentials(url: str) -> tuple[str, ...]:
    """The user name and password of a base URL (as written and percent-decoded): secrets to mask wherever they
    might be echoed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return ()
    userinfo = parts.netloc.rpartition("@")[0]
    found = [piece for piece in userinfo.split(":", 1) if piece]
    found += [unquote(piece) for piece in found]
    return tuple(sorted(set(found), key=len, reverse=True))


def check_cache_url(url: str) -> None:
    """Raise `CacheUrlError` unless `url` is a Redis URL the server can use: ``redis://[[USER]:PASSWORD@]HOST[:PORT]
    [/DB]``, the same with ``rediss://`` (TLS), or ``unix://[[USER]:PASSWORD@]/PATH[?db=DB]``."""
    shown = mask_url(url)
    usage = "expected redis://HOST[:PORT][/DB], rediss://HOST[:PORT][/DB] or unix:///PATH/TO/SOCKET"
    if "://" not in url:
        raise CacheUrlError(f"the cache URL {shown} has no scheme; {usage}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # its text may quote part of a password: never shown
        raise CacheUrlError(f"the cache URL {shown} cannot be parsed (its host or port); {usage}") from None
    scheme = parts.scheme.lower()
    if scheme not in CACHE_URL_SCHEMES:
        raise CacheUrlError(f"the cache URL {shown} has scheme {parts.scheme}://; {usage}")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if scheme == "unix":
        if not parts.path or parts.path == "/":
            raise CacheUrlError(f"the cache URL {shown} names no socket path; {usage}")
        db = query.get("db", "0")
    else:
        if not parts.hostname:
            raise CacheUrlError(f"the cache URL {shown} names no host; {usage}")
        if port == 0:
            raise CacheUrlError(f"the cache URL {shown} has port 0; {usage}")
        db = query.get("db") or parts.path.strip("/") or "0"
    if not db.isdigit():
        raise CacheUrlError(f"the cache URL {shown} has database {db!r}, not a number; {usage}")


def is_azure_host(url: str) -> bool:
    """Whether `url` is on an Azure OpenAI resource's host (``*.openai.azure.com`` and the like)."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.endswith(AZURE_HOST_SUFFIXES)


def _azure_values(read: Callable[[str], str | None], auth_header: object) -> dict[str, object]:
    """The settings the Azure variables imply, to apply over the OpenAI ones (empty when not Azure).

    - ``AZURE_OPENAI_ENDPOINT`` set: the legacy dated API, as openai-python's ``AzureOpenAI``: base URL
      ``{endpoint}/openai``, the key from ``AZURE_OPENAI_API_KEY`` in the ``api-key`` header, ``api-version`` from
      ``OPENAI_API_VERSION`` (default `DEFAULT_AZURE_API_VERSION`) on every request. It wins over ``OPENAI_API_KEY``,
      ``OPENAI_BASE_URL``, ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` (never used on Azure); an endpoint that
      already ends in ``/openai/v1`` is the v1 surface (no api-version).
    - Otherwise ``OPENAI_BASE_URL`` on an Azure host (`AZURE_HOST_SUFFIXES`) is the v1 surface: with
      ``AZURE_OPENAI_API_KEY`` set, that key goes in ``api-key``; without it, ``OPENAI_API_KEY`` goes in
      ``Authorization: Bearer`` (v1 accepts a key or an Entra ID token there) or, with ``--auth-header api-key``,
      in ``api-key``. No api-version (v1 needs none), unless the URL ends in ``/openai`` (the legacy path).
    - Any other host with ``--auth-header api-key`` and no ``OPENAI_API_KEY`` uses ``AZURE_OPENAI_API_KEY``
      (a private endpoint or gateway in front of Azure).
    """
    endpoint = read("AZURE_OPENAI_ENDPOINT")
    azure_key = read("AZURE_OPENAI_API_KEY")
    base_url = read("OPENAI_BASE_URL")
    wants_key_header = isinstance(auth_header, str) and auth_header.lower() == AZURE_KEY_HEADER
    if endpoint:
        base = endpoint.rstrip("/")
        v1 = base.endswith("/openai/v1")
        if not v1 and not base.endswith("/openai"):
            base += "/openai"
        unused = [n for n in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID") if read(n)]
        if v1 and read("OPENAI_API_VERSION"):
            unused.append("OPENAI_API_VERSION")
        note = "AZURE_OPENAI_ENDPOINT is set and wins" + (f"; not used: {', '.join(unused)}" if unused else "")
        return {
            "api_key": azure_key,
            "base_url": base,
            "organization": None,
            "project": None,
            "auth_header": AZURE_KEY_HEADER,
            "azure": True,
            "key_env": "AZURE_OPENAI_API_KEY",
            "azure_note": note,
            "api_version": None if v1 else read("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION,
        }
    if base_url and is_azure_host(base_url):
        legacy_path = base_url.rstrip("/").endswith("/openai")
        unused = [n for n in ("OPENAI_ORG_ID", "OPENAI_PROJECT_ID") if read(n)]
        values: dict[str, object] = {"azure": True, "organization": None, "project": None}
        if legacy_path:
            values["api_version"] = read("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
        elif read("OPENAI_API_VERSION"):
            unused.append("OPENAI_API_VERSION")
        if azure_key:
            if read("OPENAI_API_KEY"):
                unused.insert(0, "OPENAI_API_KEY")
            values |= {"api_key": azure_key, "auth_header": AZURE_KEY_HEADER, "key_env": "AZURE_OPENAI_API_KEY"}
        surface = "the legacy API" if legacy_path else "the v1 API"
        values["azure_note"] = f"OPENAI_BASE_URL is an Azure host: {surface}" + (
            f"; not used: {', '.join(unused)}" if unused else ""
        )
        return values
    if wants_key_header and azure_key and not read("OPENAI_API_KEY"):
        return {"api_key": azure_key, "key_env": "AZURE_OPENAI_API_KEY"}
    return {}
