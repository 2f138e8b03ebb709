"""Malformed JSON-RPC over streamable HTTP gets the same errors as over stdio (`test_stdio_protocol`): HTTP 400 with
the JSON-RPC error, the exact code and the request's id when it has a valid one. Without our check the SDK took a
request with a float, boolean, object, array or null id for a notification (``202``, no answer ever), and answered
the others ``-32602`` with id null or a parse error."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from .helpers import INITIALIZE, MCP_HEADERS, TOKEN, demo_server
from .test_stdio_protocol import MALFORMED, _call

pytestmark = pytest.mark.anyio

HEADERS = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}


def _message(response: httpx2.Response) -> dict[str, Any]:
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return dict(json.loads(data[-1]))
    return dict(response.json())


@pytest.mark.parametrize("stateless", [False, True])
async def test_malformed_posts_get_their_errors(stateless: bool) -> None:
    with demo_server(stateless=stateless) as root:
        async with httpx2.AsyncClient(timeout=30) as http:
            opened = await http.post(f"{root}/mcp", json=INITIALIZE, headers=HEADERS)
            headers = {**HEADERS, "mcp-protocol-version": "2025-11-25"}
            if "mcp-session-id" in opened.headers:
                headers["mcp-session-id"] = opened.headers["mcp-session-id"]
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await http.post(f"{root}/mcp", json=initialized, headers=headers)
            wrong = {}
            for name, (body, code, id_) in MALFORMED.items():
                response = await http.post(f"{root}/mcp", content=body, headers=headers)
                message = _message(response) if response.content else {}
                if (message.get("id", "absent"), message.get("error", {}).get("code")) != (id_, code):
                    wrong[name] = (response.status_code, message)
            valid = await http.post(f"{root}/mcp", content=_call('{"job_id": "ftjob-abc"}', 99), headers=headers)
    assert wrong == {}
    assert _message(valid)["id"] == 99 and _message(valid)["result"]["isError"] is True  # not found: still answered
