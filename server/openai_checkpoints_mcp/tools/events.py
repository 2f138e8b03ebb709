"""The events tool: list_events (what a job did or is doing, newest first, with the numbers of metrics events)."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from ..analysis.metrics import finite_number
from ..api.models import Event
from ..api.pagination import Page, collect_pages
from ..api.store import JobStore
from ..state import AppState
from .arguments import JobId
from .common import Progress, ToolResult, finish, iso, page_progress, store_of, tool


class EventInfo(BaseModel):
    created_at: str | None = Field(description="ISO 8601 UTC.")
    level: str | None = Field(description="info, warn or error.")
    message: str | None
    metrics: dict[str, float] | None = Field(
        default=None, description="For metrics events: the numeric values of its data (step, losses, ...)."
    )


class EventList(ToolResult):
    job_id: str
    events: list[EventInfo] = Field(description="Newest first.")
    has_more: bool = Field(description="Whether older events remain.")
    next_after: str | None = Field(description="Pass as after= to read older events.")
    scanned: int = Field(description="Events read from the API (more than returned when level filters them).")


EVENTS_PAGE_SIZE = 100
"""Events per page when `level` filters them (the API cannot), the largest page the API serves."""
EVENTS_SCAN_MAX_PAGES = 10


def _event_metrics(event: Event) -> dict[str, float] | None:
    """The numeric top-level values of a metrics event's data (nested breakdowns of reinforcement jobs are left out)."""
    data = event.data or {}
    numbers = {key: number for key, value in data.items() if (number := finite_number(value)) is not None}
    return numbers or None


async def read_events(
    store: JobStore,
    job_id: str,
    *,
    level: str | None,
    limit: int,
    after: str | None,
    progress: Progress | None = None,
) -> EventList:
    """The job's events, newest first. With `level` (the API cannot filter), pages of 100 are scanned."""

    async def fetch(cursor: str | None) -> Page[Event]:
        return await store.events_page(job_id, limit=limit if level is None else EVENTS_PAGE_SIZE, after=cursor)

    collected = await collect_pages(
        fetch,
        max_items=limit,
        after=after,
        what=f"events of job {job_id}",
        keep=None if level is None else (lambda event: event.level == level),
        max_pages=1 if level is None else EVENTS_SCAN_MAX_PAGES,
        on_page=None if level is None else page_progress(progress, "matching events"),
    )
    return EventList(
        job_id=job_id,
        events=[
            EventInfo(created_at=iso(e.created_at), level=e.level, message=e.message, metrics=_event_metrics(e))
            for e in collected.items
        ],
        has_more=collected.truncated,
        next_after=collected.next_after,
        scanned=collected.scanned,
    )


LIST_EVENTS = """List a job's events, newest first: time (ISO 8601 UTC), level (info, warn, error), message, and for
metrics events their numbers (step, train_loss, valid_loss, ...). Use it for what a job is doing now, why it failed,
or per-step metrics of a running job. Page with after=<next_after> while has_more is true."""


@tool(title="List a job's events", description=LIST_EVENTS)
async def list_events(
    ctx: Context[AppState],
    job_id: JobId,
    level: Annotated[
        Literal["info", "warn", "error"] | None, Field(description="Only events of this level; omit for all.")
    ] = None,
    limit: Annotated[int, Field(description="How many events to return (1-100).", ge=1, le=100)] = 50,
    after: Annotated[
        str | None,
        Field(
            description="Cursor: the next_after of an earlier call, to read older events.",
            pattern=r"^[A-Za-z0-9_-]+$",
            max_length=100,
        ),
    ] = None,
) -> EventList:
    result = await read_events(
        store_of(ctx), job_id, level=level, limit=limit, after=after, progress=ctx.report_progress
    )
    return finish(ctx, result)
