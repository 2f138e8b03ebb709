"""The streamable HTTP transport: the same `create_server(settings)` as stdio, served at ``/mcp`` by uvicorn.

    openai-checkpoints-mcp --transport streamable-http [--host 127.0.0.1] [--port 8000] [--auth-token-file PATH]
        [--allowed-host HOST]... [--allowed-origin ORIGIN]... [--stateless]
    uvicorn --factory openai_checkpoints_mcp.transport.http:create_app --workers 4      # settings from the environment

* Bearer-token auth (`auth.BearerAuth`) on everything but ``GET /healthz``; without a token the server only
  listens on (and only answers connections to) loopback addresses.
* DNS-rebinding protection is always configured: the SDK switches it off for non-loopback hosts unless told.
* The SDK's defaults that keep progress and cancellation are kept: SSE responses (``json_response=False``) and
  sessions; ``stateless`` is an explicit choice for multi-worker deployments (legacy clients lose cancellation).
* Nothing a client does holds the server: a header timeout, an idle timeout and a bound on open connections
  (`connections`), log lines about them once per cause per minute (`logs`), and sessions bounded in number, the
  idlest evicted to make room (`sessions`).

Only the standard library is imported at module level: the stdio path never loads this module, and the SDK's
HTTP machinery (Starlette, uvicorn) is imported when an app is built.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from ..config import Settings
from .auth import AUTH_TOKEN_ENV, BearerAuth, check_token, is_loopback
from .connections import (
    LISTEN_QUEUE,
    ConnectionGuard,
    ConnectionLimits,
    default_limits,
    descriptor_limit,
    guarded_protocol,
    install_log_limits,
)
from .limits import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_TIMEOUT,
    MAX_SESSIONS_ENV,
    SESSION_IDLE_TIMEOUT_ENV,
)

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.types import ASGIApp

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
SHUTDOWN_GRACE = 5
"""Seconds uvicorn waits for open streams (SSE) to finish on shutdown before closing them."""

AUTH_TOKEN_FILE_ENV = "MCP_AUTH_TOKEN_FILE"
STATELESS_ENV = "OPENAI_CHECKPOINTS_MCP_STATELESS"
ALLOWED_HOSTS_ENV = "OPENAI_CHECKPOINTS_MCP_ALLOWED_HOSTS"
ALLOWED_ORIGINS_ENV = "OPENAI_CHECKPOINTS_MCP_ALLOWED_ORIGINS"
DEMO_ENV = "OPENAI_CHECKPOINTS_MCP_DEMO"
"""Demo mode for `create_app` (the CLI has ``--demo``)."""

LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
"""Bound addresses that `LOOPBACK_HOSTS` already covers."""
_TRUE = frozenset({"1", "true", "yes", "on"})


class HttpConfigError(ValueError):
    """A setting of the HTTP transport that cannot work; the message says which and what to do."""


@dataclass(frozen=True)
class HttpOptions:
    """How the HTTP transport listens and whom it serves. The token is never printed (see `__repr__`)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    auth_token: str | None = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = ()
    """Extra ``Host`` header values, beyond loopback and the bound address (``name`` or ``name:port``)."""
    allowed_origins: tuple[str, ...] = ()
    """Extra ``Origin`` header values, beyond loopback and the bound address (``https://app.example``)."""
    stateless: bool = False
    """No ``Mcp-Session-Id`` sessions: any worker can answer any request; legacy clients lose cancellation."""
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    """Seconds a client has to send a request's head and body (from connecting, or from the request's first byte)."""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Seconds a kept-alive connection may wait for its next request."""
    max_connections: int | None = None
    """Connections open at once; None: as many as the descriptor limit leaves room for (`default_limits`)."""
    max_sessions: int = DEFAULT_MAX_SESSIONS
    session_idle_timeout: float = DEFAULT_SESSION_IDLE_TIMEOUT

    def __post_init__(self) -> None:
        if self.auth_token is not None:
            try:
                check_token(self.auth_token)
            except ValueError as exc:
                raise HttpConfigError(str(exc)) from None
        if not 1 <= self.port <= 65535:
            raise HttpConfigError(f"port must be from 1 to 65535, got {self.port}")
        for name in ("header_timeout", "idle_timeout", "session_idle_timeout"):
            value = getattr(self, name)
            if not (0 < value < math.inf):
                raise HttpConfigError(f"{name.replace('_', ' ')} must be a positive number of seconds, got {value}")
        if self.max_sessions < 1 or (self.max_connections is not None and self.max_connections < 1):
            raise HttpConfigError("the most sessions and connections must be at least 1")

    def connection_limits(self) -> ConnectionLimits:
        """The limits the server's connections keep to, the bound fitted to the descriptor limit when not given."""
        return default_limits(
            header_timeout=self.header_timeout, idle_timeout=self.idle_timeout, max_connections=self.max_connections
        )

    def __repr__(self) -> str:
        token = "set" if self.auth_token else "missing"
        return (
            f"HttpOptions(host={self.host!r}, port={self.port}, auth_token={token}, "
            f"allowed_hosts={self.allowed_hosts!r}, allowed_origins={self.allowed_origins!r}, "
            f"stateless={self.stateless}, header_timeout={self.header_timeout:g}, idle_timeout={self.idle_timeout:g}, "
            f"max_connections={self.max_connections}, max_sessions={self.max_sessions}, "
            f"session_idle_timeout={self.session_idle_timeout:g})"
        )

    __str__ = __repr__

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        auth_token_file: str | None = None,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        stateless: bool | None = None,
        header_timeout: float | None = None,
        idle_timeout: float | None = None,
        max_connections: int | None = None,
        max_sessions: int | None = None,
        session_idle_timeout: float | None = None,
    ) -> HttpOptions:
        """Options from flags (the keyword arguments, None meaning "not given") and the environment.

        The token comes from `auth_token_file`, else the file named by ``MCP_AUTH_TOKEN_FILE``, else
        ``MCP_AUTH_TOKEN`` (empty counts as unset). Allowed hosts and origins from the flags are added to the
        comma-separated ``OPENAI_CHECKPOINTS_MCP_ALLOWED_HOSTS`` / ``..._ORIGINS``; ``stateless`` falls back to
        ``OPENAI_CHECKPOINTS_MCP_STATELESS=1``; ``max_sessions`` and ``session_idle_timeout`` to
        ``OPENAI_CHECKPOINTS_MCP_MAX_SESSIONS`` and ``..._SESSION_IDLE_TIMEOUT``. Raises `HttpConfigError` for anything
        that cannot work.
        """
        env = os.environ if env is None else env

        def read(name: str) -> str:
            return env.get(name, "").strip()

        token_file = auth_token_file or read(AUTH_TOKEN_FILE_ENV) or None
        token = read_token_file(token_file) if token_file else (read(AUTH_TOKEN_ENV) or None)
        hosts = [*_split(read(ALLOWED_HOSTS_ENV)), *allowed_hosts]
        origins = [*_split(read(ALLOWED_ORIGINS_ENV)), *allowed_origins]
        return cls(
            host=DEFAULT_HOST if host is None else host,
            port=DEFAULT_PORT if port is None else port,
            auth_token=token,
            allowed_hosts=tuple(_dedupe(value for raw in hosts for value in host_patterns(raw))),
            allowed_origins=tuple(_dedupe(origin_pattern(raw) for raw in origins)),
            stateless=(read(STATELESS_ENV).lower() in _TRUE) if stateless is None else stateless,
            header_timeout=DEFAULT_HEADER_TIMEOUT if header_timeout is None else header_timeout,
            idle_timeout=DEFAULT_IDLE_TIMEOUT if idle_timeout is None else idle_timeout,
            max_connections=max_connections,
            max_sessions=_env_number(env, MAX_SESSIONS_ENV, int, DEFAULT_MAX_SESSIONS)
            if max_sessions is None
            else max_sessions,
            session_idle_timeout=_env_number(env, SESSION_IDLE_TIMEOUT_ENV, float, DEFAULT_SESSION_IDLE_TIMEOUT)
            if session_idle_timeout is None
            else session_idle_timeout,
        )


def _env_number(env: Mapping[str, str], name: str, kind: type[int] | type[float], default: float) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise HttpConfigError(
            f"{name} must be {'a whole number' if kind is int else 'a number'}, got {raw!r}"
        ) from None


MAX_TOKEN_FILE_BYTES = 4096
"""The most a token file is read: a bearer token is a line; ``/dev/zero`` or a log file named by mistake is refused
after this many bytes instead of being read whole."""


def read_token_file(path: str) -> str:
    """The token in `path`, surrounding whitespace stripped. Errors name the file, never its content."""
    try:
        with Path(path).open("rb") as file:
            raw = file.read(MAX_TOKEN_FILE_BYTES + 1)
        if len(raw) > MAX_TOKEN_FILE_BYTES:
            raise HttpConfigError(
                f"the token file {path} is longer than {MAX_TOKEN_FILE_BYTES} bytes; put only the bearer token in it"
            )
        token = raw.decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise HttpConfigError(f"cannot read the token file {path}: {reason}") from None
    if not token:
        raise HttpConfigError(f"the token file {path} is empty; put the bearer token in it")
    try:
        return check_token(token)
    except ValueError as exc:
        raise HttpConfigError(f"the token in {path} cannot be used: {exc}") from None


def bind_refusal(options: HttpOptions) -> str | None:
    """Why the server must not start with these options (one line for stderr), or None if it may.

    Listening on anything but loopback (127.0.0.0/8, ::1, localhost) needs a bearer token.
    """
    if options.auth_token or is_loopback(options.host):
        return None
    where = options.host or "all interfaces"
    return (
        f"error: refusing to listen on {where} without a bearer token: anyone who can reach port {options.port} "
        f"could use this server and its OpenAI key. Set {AUTH_TOKEN_ENV} or pass --auth-token-file PATH "
        f"(or listen on --host 127.0.0.1)."
    )


def host_patterns(value: str) -> list[str]:
    """An ``--allowed-host`` value as ``Host`` header patterns: ``name`` without a port allows any port too.

    ``mcp.example.com`` -> ``mcp.example.com`` and ``mcp.example.com:*``; ``mcp.example.com:8443`` and
    ``[2001:db8::1]:*`` stay as given. IPv6 addresses go in brackets.
    """
    host = value.strip()
    if not host or any(char.isspace() or char in "/@?#" for char in host):
        raise HttpConfigError(
            f"--allowed-host takes a host name or address with an optional port (e.g. mcp.example.com or "
            f"mcp.example.com:8443), not a URL; got {value!r}"
        )
    if host.startswith("["):
        end = host.find("]")
        suffix = host[end + 1 :] if end > 1 else None
        if suffix is None or (suffix and not _is_port_suffix(suffix)):
            raise HttpConfigError(f"--allowed-host: a bracketed IPv6 address is [addr] or [addr]:port; got {value!r}")
        has_port = bool(suffix)
    elif host.count(":") > 1:
        raise HttpConfigError(
            f"--allowed-host: write IPv6 addresses in brackets, e.g. [2001:db8::1]:8000; got {value!r}"
        )
    else:
        name, sep, port = host.partition(":")
        if not name or "*" in name:
            raise HttpConfigError(f"--allowed-host: name each host (only the port can be *); got {value!r}")
        if sep and not _is_port_suffix(sep + port):
            raise HttpConfigError(f"--allowed-host: the port must be a number or *; got {value!r}")
        has_port = bool(sep)
    return [host] if has_port else [host, f"{host}:*"]


def _is_port_suffix(suffix: str) -> bool:
    return suffix.startswith(":") and (suffix[1:] == "*" or suffix[1:].isdigit())


def origin_pattern(value: str) -> str:
    """An ``--allowed-origin`` value, checked: ``scheme://host[:port]`` with no path (``:*`` for any port)."""
    origin = value.strip().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or any(c in rest for c in "/?#@ "):
        raise HttpConfigError(
            f"--allowed-origin takes an origin as browsers send it, scheme://host[:port] with no path "
            f"(e.g. https://app.example.com or http://localhost:*); got {value!r}"
        )
    return origin


def transport_security(options: HttpOptions) -> TransportSecuritySettings:
    """DNS-rebinding protection, always on: loopback, the bound address when it is a specific one, and extras."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = list(LOOPBACK_HOSTS)
    origins = list(LOOPBACK_ORIGINS)
    bound = options.host.strip()
    if bound not in _WILDCARD_BINDS and bound.lower() not in _LOOPBACK_NAMES:  # e.g. 10.1.2.3, or 127.0.0.2
        name = _url_host(bound)
        hosts.append(f"{name}:{options.port}")
        origins += [f"http://{name}:{options.port}", f"https://{name}:{options.port}"]
        if options.port == 80:
            hosts.append(name)
            origins.append(f"http://{name}")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=_dedupe([*hosts, *options.allowed_hosts]),
        allowed_origins=_dedupe([*origins, *options.allowed_origins]),
    )


SECRET_QUERY_NAMES = frozenset({"token", "access_token", "api_key", "apikey", "key", "auth", "password", "secret"})
"""Query parameters whose values the access log shows as ``***`` (compared case-insensitively, ``-`` as ``_``)."""


def mask_query(path: str) -> str:
    """`path` (with its query string) with the value of every parameter named in `SECRET_QUERY_NAMES` as ``***``."""
    before, question, query = path.partition("?")
    if not question:
        return path
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        secret = unquote_plus(name).strip().lower().replace("-", "_") in SECRET_QUERY_NAMES
        pairs.append(f"{name}=***" if secret and equals else pair)
    return f"{before}?{'&'.join(pairs)}"


class _AccessLogMask(logging.Filter):
    """On uvicorn's access log: a token sent as a query parameter (``?token=...``) is never written."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], mask_query(args[2]), *args[3:])
        return True


def mask_access_log() -> None:
    """Install `_AccessLogMask` on ``uvicorn.access``, once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(existing, _AccessLogMask) for existing in access.filters):
        access.addFilter(_AccessLogMask())


def build_app(settings: Settings, options: HttpOptions, *, log_level: str = "INFO") -> ASGIApp:
    """The ASGI app: MCP at ``/mcp`` (bearer-protected when a token is set) and ``GET /healthz``.

    Its lifespan (uvicorn runs it) starts the session manager and the server's own lifespan, once per process.
    """
    mask_access_log()
    install_log_limits()
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from ..redaction import install_log_masking
    from ..server import create_server, server_version
    from .sessions import streamable_http_app

    server = create_server(settings, log_level=log_level)
    install_log_masking(settings.redactor)  # the SDK may have added a handler (uvicorn --factory)
    version = server_version()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": version})

    app, _ = streamable_http_app(
        server,
        path=MCP_PATH,
        stateless=options.stateless,
        security=transport_security(options),
        max_sessions=options.max_sessions,
        session_idle_timeout=options.session_idle_timeout,
        routes=[Route(HEALTH_PATH, healthz, methods=["GET"], include_in_schema=False)],
    )
    from .jsonrpc_check import JsonRpcCheck

    return BearerAuth(JsonRpcCheck(app, MCP_PATH), options.auth_token, public_paths=[HEALTH_PATH])


def create_app(settings: Settings | None = None, options: HttpOptions | None = None) -> ASGIApp:
    """ASGI app factory for ``uvicorn --factory openai_checkpoints_mcp.transport.http:create_app``.

    With no arguments everything comes from the environment: ``OPENAI_API_KEY`` & co. (`Settings.from_env`),
    ``OPENAI_CHECKPOINTS_MCP_DEMO=1`` for demo mode, and the HTTP options of `HttpOptions.from_env`.
    uvicorn's ``--host`` is invisible here, so without a token the app answers only connections that arrive
    on a loopback address (see `BearerAuth`).
    """
    try:
        if settings is None:
            settings = Settings.from_env(demo=os.environ.get(DEMO_ENV, "").strip().lower() in _TRUE or None)
        if options is None:
            options = HttpOptions.from_env()
    except ValueError as exc:  # a variable that cannot be used (a cache URL, a toolset, a limit): one line, as the CLI
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not options.auth_token:
        logger.warning("%s is not set: serving only connections that arrive on a loopback address", AUTH_TOKEN_ENV)
    from ..server import warn_if_no_key

    warn_if_no_key(settings)
    return build_app(settings, options)


async def serve_http(settings: Settings, options: HttpOptions, *, log_level: str = "INFO") -> None:
    """Serve over streamable HTTP with uvicorn until interrupted. Check `bind_refusal(options)` first."""
    import anyio
    import uvicorn

    from ..server import warn_if_no_key

    warn_if_no_key(settings)
    sock = bind_socket(options)  # before the start-up line, which would otherwise announce an address not held
    logger.info(
        "serving MCP over streamable HTTP at http://%s:%d%s (%s, %s): %s",
        _url_host(options.host),
        options.port,
        MCP_PATH,
        "bearer token required" if options.auth_token else "no token: loopback only",
        "stateless" if options.stateless else "sessions",
        settings,
    )
    config = uvicorn_config(build_app(settings, options, log_level=log_level), options, log_level=log_level)
    limits = options.connection_limits()
    logger.info(
        "connections: header timeout %g s, idle timeout %g s, at most %d open (descriptor limit %d); "
        "at most %d sessions, each closed after %g idle seconds",
        limits.header_timeout,
        limits.idle_timeout,
        limits.max_connections,
        descriptor_limit(),
        options.max_sessions,
        options.session_idle_timeout,
    )
    server = uvicorn.Server(config)

    async def lengthen_listen_queue() -> None:
        """Once uvicorn listens (with the small backlog that bounds asyncio's accepts per turn), let the kernel
        queue as many connections as uvicorn's default does: queued connections hold no descriptor of ours, and a
        short queue drops real clients' connections among a burst of slow ones."""
        while not server.started:
            await anyio.sleep(0.05)
        sock.listen(LISTEN_QUEUE)

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lengthen_listen_queue)
            await server.serve(sockets=[sock])
            tasks.cancel_scope.cancel()
    finally:
        sock.close()


def uvicorn_config(app: ASGIApp, options: HttpOptions, *, log_level: str = "INFO") -> Any:
    """uvicorn's configuration for `app`: its h11 protocol under a `ConnectionGuard` (header timeout, connection
    bound), the idle timeout as uvicorn's keep-alive timeout, the backlog fitted to the descriptor limit."""
    import uvicorn

    limits = options.connection_limits()
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        http=guarded_protocol(ConnectionGuard(limits)),
        timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type]  # a float works: it goes to call_later
        backlog=limits.backlog,
        log_config=None,  # uvicorn's records go through our logging setup, to stderr
        log_level=log_level.lower(),
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )


class BindError(Exception):
    """The address cannot be listened on (in use, not local, not permitted): one line, exit status 1."""


def bind_socket(options: HttpOptions) -> socket.socket:
    """A TCP socket bound to the options' host and port (as uvicorn binds one: ``SO_REUSEADDR``), or `BindError`."""
    where = f"{_url_host(options.host)}:{options.port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            options.host, options.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise BindError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; choose another --port or stop what holds it" if exc.errno == errno.EADDRINUSE else ""
        raise BindError(f"cannot listen on {where}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    """`host` as it stands in a URL: an IPv6 address in brackets (once)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
