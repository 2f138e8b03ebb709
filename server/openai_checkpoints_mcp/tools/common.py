"""What every tool family shares: the result base class, the annotations, the declaration of a tool, progress, and
results with resource links.

A tool is declared once, in its family's module, with `tool(...)`; `server.tool_table()` lists them all. The resource
templates have their own table, `resources.TEMPLATES`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import pydantic_core
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from ..api.pagination import OnPage
from ..api.store import JobStore
from ..state import AppState

T = TypeVar("T")

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
"""Every read tool: it changes nothing, and asking twice gives the same answer."""
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)
"""A tool that changes a job for real: served only with --allow-writes."""

DEMO_NOTICE = (
    "DEMO DATA: invented jobs from the bundled demo dataset (--demo), not an OpenAI account. "
    "Restart without --demo and with OPENAI_API_KEY set to see real jobs."
)

Progress = Callable[[float, float | None, str], Awaitable[None]]
"""``progress(value, total, message)``: an MCP progress notification (`Context.report_progress`)."""


class ToolResult(BaseModel):
    notice: str | None = Field(
        default=None,
        description="Set only when the data is not live: demo mode, or answered offline from an archive (which "
        "account, archived when); quote it to the user.",
    )


ToolFunction = Callable[..., Awaitable[ToolResult | CallToolResult]]
"""A tool: returns its result model, or a `CallToolResult` whose structured content is that model (`linked`: the model
with resource links; plot_training_curve: a picture beside the numbers), annotated ``Annotated[CallToolResult, Model]``
so that the output schema is still the model's."""


@dataclass(frozen=True)
class ToolSpec:
    """One tool as the server registers it: the function (its signature is the input schema, its return type the
    output schema), the title, the description the model reads, and the annotations that decide where it is served."""

    fn: ToolFunction
    title: str
    description: str
    annotations: ToolAnnotations

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def read_only(self) -> bool:
        return bool(self.annotations.read_only_hint)


def tool(
    *, title: str, description: str, annotations: ToolAnnotations = READ_ONLY
) -> Callable[[ToolFunction], ToolSpec]:
    """Declare a tool: ``@tool(title=..., description=...)`` over ``async def name(ctx, ...) -> Result``."""

    def declare(fn: ToolFunction) -> ToolSpec:
        return ToolSpec(fn=fn, title=title, description=one_line(description), annotations=annotations)

    return declare


def one_line(text: str) -> str:
    """Descriptions are written wrapped in source; the model gets them as one paragraph."""
    return " ".join(text.split())


ResultT = TypeVar("ResultT", bound=ToolResult)


def finish(ctx: Context[AppState, Any], result: ResultT) -> ResultT:
    """The result as the assistant gets it: with the demo notice in demo mode, and the archive's (which account,
    archived when) when answered offline."""
    state = ctx.request_context.lifespan_context
    if state.settings.demo:
        result.notice = DEMO_NOTICE
    elif state.settings.archive:
        origin = state.store.origin
        result.notice = origin.notice if origin is not None else None
    return result


def linked(result: ToolResult, links: Sequence[ResourceLink]) -> CallToolResult:
    """`result` as the SDK would send it (structuredContent, and the same JSON as a text block), followed by resource
    links: the client can read those resources without another tool call."""
    text = pydantic_core.to_json(result, fallback=str, indent=2).decode()
    return CallToolResult(
        content=[TextContent(type="text", text=text), *links],
        structured_content=result.model_dump(mode="json", by_alias=True),
    )


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a worker thread, for CPU-heavy work (parsing a result file, analysing it, serialising a
    big result): the event loop stays free to answer pings and other calls meanwhile. A cancelled call (its deadline
    passed) returns at once and leaves the thread behind; work that checks ``anyio.from_thread.check_cancelled``
    stops at its next check."""
    return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)


def store_of(ctx: Context[AppState, Any]) -> JobStore:
    """The one gateway to the API."""
    return ctx.request_context.lifespan_context.store


def page_progress(progress: Progress | None, noun: str) -> OnPage | None:
    """Report each fetched page as an MCP progress notification (total unknown)."""
    if progress is None:
        return None
    report = progress

    async def on_page(pages: int, items: int) -> None:
        await report(pages, None, f"read {pages} page{'s' if pages != 1 else ''}, {items} {noun}")

    return on_page


def iso(timestamp: int | None) -> str | None:
    """Unix seconds as ISO 8601 UTC (``2025-08-01T08:00:00Z``), or None."""
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None
