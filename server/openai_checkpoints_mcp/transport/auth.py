"""Who may use the HTTP transport: a static bearer token, checked in constant time, and loopback detection.

Pure ASGI and the standard library, so importing it costs nothing; the HTTP transport (`http.py`) wraps the
SDK's Starlette app in `BearerAuth`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

AUTH_TOKEN_ENV = "MCP_AUTH_TOKEN"
REALM = "openai-checkpoints-mcp"


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only: 127.0.0.0/8, ::1 (also as ``[::1]`` or IPv4-mapped), localhost.

    Other names are not resolved, so they count as reachable from elsewhere.
    """
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_token(token: str) -> str:
    """`token` if it can travel in an ``Authorization`` header (printable ASCII, no spaces); else `ValueError`.

    The message never repeats the token.
    """
    if not token:
        raise ValueError("the bearer token is empty")
    if any(not (33 <= ord(char) <= 126) for char in token):
        raise ValueError(
            "the bearer token must be printable ASCII without spaces (e.g. the output of `openssl rand -hex 32`)"
        )
    return token


class BearerAuth:
    """ASGI middleware: HTTP requests must carry ``Authorization: Bearer <token>``, except to `public_paths`.

    The token is compared with `hmac.compare_digest`. A missing or wrong token gets ``401`` with
    ``WWW-Authenticate: Bearer ...`` and a JSON body that says what to send; neither the expected nor the
    presented token is ever logged or echoed.

    With no token configured (allowed only on loopback), requests that arrive on a socket bound to a non-loopback
    address get ``403``: this keeps ``uvicorn --factory ... --host 0.0.0.0`` without a token from serving
    the network, since the factory cannot see which address uvicorn binds. Unix-socket connections are local.
    """

    def __init__(self, app: ASGIApp, token: str | None, *, public_paths: Iterable[str] = ()) -> None:
        self.app = app
        self._token = None if token is None else check_token(token).encode("ascii")
        self._public = frozenset(public_paths)
        self._warned_open = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        if self._token is None:
            server = scope.get("server")
            if server is None or is_loopback(str(server[0])):
                await self.app(scope, receive, send)
                return
            if not self._warned_open:
                self._warned_open = True
                logger.error(
                    "refused a request that arrived on %s: no %s is set, so only loopback connections are served",
                    server[0],
                    AUTH_TOKEN_ENV,
                )
            await _reply(
                send,
                403,
                {
                    "error": "forbidden",
                    "error_description": f"This server has no bearer token configured, so it serves only loopback "
                    f"connections. Set {AUTH_TOKEN_ENV} on the server to accept others.",
                },
            )
            return
        presented = _bearer_credentials(scope)
        if presented is not None and hmac.compare_digest(presented, self._token):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        logger.warning(  # the path is the client's, decoded: escaped so that it cannot forge log lines
            "rejected %s %s from %s: %s bearer token",
            scope.get("method"),
            scope["path"].encode("unicode_escape").decode("ascii")[:200],
            client[0] if client else "?",
            "missing" if presented is None else "wrong",
        )
        challenge = f'Bearer realm="{REALM}"' if presented is None else f'Bearer realm="{REALM}", error="invalid_token"'
        await _reply(
            send,
            401,
            {
                "error": "invalid_token",
                "error_description": "Send the server's token as 'Authorization: Bearer <token>'."
                if presented is None
                else "The bearer token is not the one this server was started with.",
            },
            [(b"www-authenticate", challenge.encode("ascii"))],
        )


def _bearer_credentials(scope: Scope) -> bytes | None:
    """The credentials of the first ``Authorization: Bearer ...`` header, or None when there is none."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            return credentials.strip() if scheme.lower() == b"bearer" and credentials.strip() else None
    return None


async def _reply(send: Send, status: int, body: dict[str, str], headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
