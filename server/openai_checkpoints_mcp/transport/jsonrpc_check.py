"""Malformed JSON-RPC over streamable HTTP: the same checks as stdio (`jsonrpc.check_line`), before the SDK.

The SDK answers every malformed POST at once, but misreads some: a request whose id is a float, boolean, object, array
or null is taken as a *notification* (``202 Accepted``, the request is run, and its answer never comes), a missing
method or ``"jsonrpc": "1.0"`` is ``-32602`` with id ``null`` and pydantic's error text, and deep nesting is a parse
error. `JsonRpcCheck` reads the body of each ``POST`` to the MCP path (at most `jsonrpc.MAX_LINE_BYTES`, the SDK's own
bound), and answers a body that `jsonrpc.check_line` refuses with that error (HTTP 400, the JSON-RPC error as JSON,
with the request's id when it has a valid one). Every other body, and every body over the bound, is handed to the SDK
as it came. Pure ASGI, imported when the HTTP app is built.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anyio

from .jsonrpc import CHECK_IN_THREAD, MAX_LINE_BYTES, Refuse, check_line

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


class JsonRpcCheck:
    """Wraps the SDK's app; answers the malformed JSON-RPC bodies of ``POST path`` itself."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > MAX_LINE_BYTES:
            await self.app(scope, receive, send)  # the SDK refuses it (413) before reading it
            return
        body = bytearray()
        complete = False
        first: list[Message] = []
        while len(body) <= MAX_LINE_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                first.append(message)  # a disconnect: the SDK sees it as it would have
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                complete = True
                break
        if complete and len(body) <= MAX_LINE_BYTES:
            if len(body) > CHECK_IN_THREAD:
                verdict = await anyio.to_thread.run_sync(check_line, bytes(body))
            else:
                verdict = check_line(bytes(body))
            if isinstance(verdict, Refuse):
                await _answer(send, verdict)
                return
        await self.app(scope, _replay(bytes(body), complete, first, receive), send)


def _replay(body: bytes, complete: bool, after: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives what was read (`body`, then any other message read) and then the rest, from `receive`."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": not complete}, *after]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _answer(send: Send, verdict: Refuse) -> None:
    error = {"jsonrpc": "2.0", "id": verdict.id, "error": {"code": verdict.code, "message": verdict.message}}
    body = json.dumps(error).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
