"""Sessions of the streamable HTTP transport, bounded: at the cap, the session idle longest makes room.

The SDK's session manager keeps up to 10,000 sessions for 30 idle minutes each and then answers every new client
``503``: 10,000 abandoned ``initialize`` calls took 466 MB and locked everyone else out for half an hour.
`EvictingSessionManager` keeps the SDK's rules (a session's credential, its idle timeout, ``404`` for an unknown
id) and changes what happens at the cap: the session that has gone longest without a request in flight is closed,
as its idle timeout would have closed it, and the new client is let in. Its id then answers ``404 Session not
found``, which tells its client to initialize again. Only when every session is busy (a request or a GET stream
in flight) is the new client refused with ``503``.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

if TYPE_CHECKING:
    from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
    from mcp.server.streamable_http import StreamableHTTPServerTransport
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.routing import Route

logger = logging.getLogger(__name__)


class EvictingSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, except that reaching `max_sessions` evicts the idlest session (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.max_sessions is not None and self.session_idle_timeout is None:
            raise ValueError("evicting idle sessions needs an idle timeout")  # the idle clock ranks the sessions
        self.evicted = 0
        """Sessions evicted since start (for tests and benches)."""

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        if self.max_sessions is not None and len(self._server_instances) >= self.max_sessions:
            self._evict_idlest()
        return super()._admit_session(requestor)

    def _evict_idlest(self) -> None:
        """Close the session whose idle countdown ends first, if any session is idle at all.

        A session's idle scope has a finite deadline only while no request of it is in flight, and that deadline
        is when it went idle plus the idle timeout: the smallest is the least recently used.
        """
        idle = {
            session_id: scope
            for session_id, transport in self._server_instances.items()
            if (scope := transport.idle_scope) is not None and math.isfinite(scope.deadline)
        }
        if not idle:
            return
        session_id = min(idle, key=lambda candidate: idle[candidate].deadline)
        scope = idle[session_id]
        deadline = scope.deadline
        del self._server_instances[session_id]  # from now on its id answers 404
        self._session_owners.pop(session_id, None)
        scope.cancel()  # ends its server task as the idle timeout does; that terminates the transport
        self.evicted += 1
        idle_for = (self.session_idle_timeout or 0.0) - (deadline - _now())
        logger.info(
            "evicted the session idle longest (%.0f s) to open a new one: %d sessions is the most kept "
            "(--max-sessions)",
            idle_for,
            self.max_sessions,
        )


def _now() -> float:
    import anyio

    return anyio.current_time()


def streamable_http_app(
    server: Any,
    *,
    path: str,
    stateless: bool,
    security: TransportSecuritySettings,
    max_sessions: int,
    session_idle_timeout: float,
    routes: list[Route],
) -> tuple[Starlette, EvictingSessionManager]:
    """The Starlette app of the SDK's ``streamable_http_app`` (MCP at `path`, SSE answers, the session manager's
    lifespan) with an `EvictingSessionManager`, and that manager. `server` is an ``MCPServer``; `routes` are added
    as they are (``/healthz``)."""
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
    from starlette.applications import Starlette
    from starlette.routing import Route

    manager = EvictingSessionManager(
        app=server._lowlevel_server,  # what MCPServer.streamable_http_app hands its manager
        json_response=False,  # plain JSON responses would lose progress, and cancellation for 2026-07-28 clients
        stateless=stateless,
        security_settings=security,
        session_idle_timeout=session_idle_timeout,
        max_sessions=max_sessions,
    )
    app = Starlette(
        routes=[Route(path, endpoint=StreamableHTTPASGIApp(manager)), *routes],
        lifespan=lambda _: manager.run(),
    )
    return app, manager
