"""A tool result as it leaves the server: every text in it at most `MAX_TEXT` characters, and its JSON text block
compact.

The API's free texts (a job's ``error.message``, its ``metadata`` and ``suffix``, an event's ``message``) reach the
results as the API sent them, and a hostile or broken upstream may send megabytes in one of them: an assistant can do
nothing with that but pay for it in context. Lists are bounded where they are made (``max_items``, ``points``, a
result file's rows and columns); this bounds the texts, at the one exit every tool result passes
(`server.CheckpointsServer.call_tool`). A cut text says so, and how much was cut, at its end.
"""

from __future__ import annotations

import json
from typing import Any

MAX_TEXT = 4000
"""Characters of one text in a tool result (a key of an object too); the longest this server writes itself (a
rationale, a notice) is under a thousand."""


def cut_text(text: str, limit: int = MAX_TEXT) -> str:
    """`text`, or its first `limit` characters followed by what was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut: {len(text) - limit:,} more characters]"


def bounded_value(value: Any, limit: int = MAX_TEXT) -> Any:
    """`value` (JSON-like) with every text longer than `limit` cut; the same object when nothing was."""
    if isinstance(value, str):
        return cut_text(value, limit)
    if isinstance(value, dict):
        items = [(bounded_value(k, limit), bounded_value(v, limit)) for k, v in value.items()]
        if all(k is k0 and v is v0 for (k, v), (k0, v0) in zip(items, value.items(), strict=True)):
            return value
        return dict(items)
    if isinstance(value, list):
        bounded = [bounded_value(item, limit) for item in value]
        return value if all(b is v for b, v in zip(bounded, value, strict=True)) else bounded
    return value


def as_sent(result: Any, limit: int = MAX_TEXT) -> Any:
    """A tool result (`CallToolResult`) as the server sends it: every text of its structured content cut to
    `limit`, and its JSON text block (the same content, for clients that read only text) written again from it as
    compact JSON. The SDK indents that block, which costs the assistant's context a third more for nothing it
    reads. A first block that is not the structured content (an error's text) is left as it is."""
    from mcp.types import CallToolResult, TextContent

    if not isinstance(result, CallToolResult) or result.structured_content is None:
        return result
    structured = bounded_value(result.structured_content, limit)
    first = result.content[0] if result.content else None
    if isinstance(first, TextContent) and first.text.startswith("{"):
        try:
            same = json.loads(first.text) == result.structured_content
        except ValueError:
            same = False
        if same:
            text = json.dumps(structured, separators=(",", ":"), ensure_ascii=False)
            result.content[0] = TextContent(type="text", text=text)
    result.structured_content = structured
    return result
