"""One cursor paginator for every list endpoint.

The API's lists are cursor pages: ``after`` is the id of the last item of the
previous page, and a page says ``has_more``. Following openai-python, paging
stops when ``has_more`` is false or a page is empty (a missing ``has_more`` on a
non-empty page means "keep going"). What would make that loop forever, or end it
short while the API says more follow, is reported as `bad_response`: a cursor sent
twice, a page after the first that says more follow but holds only items sent
before, or an empty page that says more follow (openai-python would stop there and
present the part as the whole, or an empty listing as complete). An item the server sends again (a spec-valid answer may
repeat an id, even on its last page) is kept once, at its first place, and counted
(`Page.repeated`, `Collected.repeated`, one warning in the log per listing). The
total is capped, with the result saying it was truncated and where to continue.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from ..errors import CheckpointsError, ErrorCode

logger = logging.getLogger(__name__)


class HasId(Protocol):
    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=HasId)


@dataclass(frozen=True)
class Page(Generic[ItemT]):
    """One fetched page: its items (in API order) and whether the API says more follow."""

    items: Sequence[ItemT]
    has_more: bool | None
    next_cursor: str | None = None
    """The cursor of the next page when the API names it (the permission list's ``last_id``, which openai-python
    follows there); None: the last item's id, as for every other list. `iterate_pages` always sets it on the pages it
    yields (the last item it dropped as a repeat may be the cursor)."""
    repeated: int = 0
    """Items of the page as the API sent it that `iterate_pages` dropped because they had been sent before."""


@dataclass
class Collected(Generic[ItemT]):
    """Everything the paginator gathered."""

    items: list[ItemT] = field(default_factory=list)
    pages_fetched: int = 0
    scanned: int = 0
    """Items read from the API, kept or not."""
    truncated: bool = False
    """More items may follow: the cap (or the page limit) stopped paging before the API said it was done."""
    repeated: int = 0
    """Items the API sent again (same id), kept once; not counted in `scanned`."""
    next_after: str | None = None
    """When `truncated`: the cursor to continue from (pass it as ``after``)."""


FetchPage = Callable[[str | None], Awaitable[Page[ItemT]]]
OnPage = Callable[[int, int], Awaitable[None]]


async def iterate_pages(
    fetch_page: FetchPage[ItemT], *, after: str | None = None, what: str = "items"
) -> AsyncGenerator[Page[ItemT], None]:
    """Yield pages in order until ``has_more`` is false or a page is empty; the consumer may stop early.

    Each page is yielded without the items sent before (by id): an item the API repeats is kept once, where it came
    first, and counted in the page's `Page.repeated`. The page's `Page.next_cursor` is the cursor that follows it.

    Raises:
        CheckpointsError: ``bad_response`` when paging would never end: the server leads back to a cursor already
            followed, or says more follow a page that holds nothing new.
    """
    seen_ids: set[str] = set()
    used_cursors: set[str | None] = set()
    cursor = after
    pages = 0
    repeated = 0
    try:
        while True:
            if cursor in used_cursors:
                raise _broken(f"sent the cursor {cursor!r} twice", what, pages)
            used_cursors.add(cursor)
            page = await fetch_page(cursor)
            pages += 1
            fresh = []
            for item in page.items:
                if item.id not in seen_ids:
                    seen_ids.add(item.id)
                    fresh.append(item)
            more = page_has_more(page)
            if not page.items and page.has_more is True:
                raise _broken("said more follow an empty page", what, pages, ENDS_SHORT)
            if more and not fresh:
                again = ", ".join(repr(item.id) for item in page.items[:2]) + (", ..." if len(page.items) > 2 else "")
                raise _broken(f"said more follow a page of items it had all sent before ({again})", what, pages)
            next_cursor = page.next_cursor or (page.items[-1].id if page.items else None)
            repeated += len(page.items) - len(fresh)
            yield Page(fresh, page.has_more, next_cursor, repeated=len(page.items) - len(fresh))
            if not more:
                return
            cursor = next_cursor
    finally:
        if repeated:
            logger.warning(
                "the API sent %d item%s again while listing %s (over %d page%s); each was kept once",
                repeated,
                "s" if repeated != 1 else "",
                what,
                pages,
                "s" if pages != 1 else "",
            )


def page_has_more(page: Page[ItemT]) -> bool:
    """Whether another page follows: a missing ``has_more`` on a non-empty page means yes (as openai-python)."""
    return page.has_more is not False and len(page.items) > 0


async def collect_pages(
    fetch_page: FetchPage[ItemT],
    *,
    max_items: int,
    after: str | None = None,
    what: str = "items",
    on_page: OnPage | None = None,
    keep: Callable[[ItemT], bool] | None = None,
    max_pages: int | None = None,
    stop_at: Callable[[ItemT], bool] | None = None,
) -> Collected[ItemT]:
    """Fetch pages until ``has_more`` is false, a page is empty, or `max_items` are collected.

    Args:
        fetch_page: fetches the page that follows the cursor (None: the first page).
        max_items: the cap; reaching it with more to come sets `truncated` and `next_after`.
        after: a cursor to start from, to continue an earlier truncated listing.
        what: what the items are, for error messages ("checkpoints of job ftjob-...").
        on_page: awaited after each page with (pages fetched, items kept so far), e.g. for progress.
        keep: only items for which it is true are collected (a filter the API cannot apply);
            the cursor still advances over every item.
        max_pages: stop after this many pages even if more follow (`truncated`, `next_after` set).
        stop_at: paging ends (complete, not truncated) at the first item for which it is true, e.g. the
            first job older than a date in a newest-first list; that item is not collected.

    Raises:
        CheckpointsError: ``bad_response`` when paging would never end (see `iterate_pages`); an item sent again is
            kept once and counted in `Collected.repeated`.
    """
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    collected: Collected[ItemT] = Collected()
    pages = iterate_pages(fetch_page, after=after, what=what)
    try:
        async for page in pages:
            collected.pages_fetched += 1
            collected.repeated += page.repeated
            more = page_has_more(page)
            for index, item in enumerate(page.items):
                if stop_at is not None and stop_at(item):
                    more = False
                    break
                collected.scanned += 1
                if keep is not None and not keep(item):
                    continue
                collected.items.append(item)
                if len(collected.items) == max_items:
                    collected.truncated = _more_would_match(page.items[index + 1 :], more, keep, stop_at)
                    if collected.truncated:
                        collected.next_after = item.id
                    more = False
                    break
            if on_page is not None:
                await on_page(collected.pages_fetched, len(collected.items))
            if not more:
                return collected
            if max_pages is not None and collected.pages_fetched >= max_pages:
                collected.truncated = True
                collected.next_after = page.next_cursor
                return collected
    finally:
        await pages.aclose()
    return collected


def _more_would_match(
    rest: Sequence[ItemT],
    more_pages: bool,
    keep: Callable[[ItemT], bool] | None,
    stop_at: Callable[[ItemT], bool] | None,
) -> bool:
    """At the cap: whether continuing could collect anything. The rest of the page is already in hand, so it is
    checked first; only when it neither matches nor ends the listing do the following pages decide."""
    for item in rest:
        if stop_at is not None and stop_at(item):
            return False
        if keep is None or keep(item):
            return True
    return more_pages


NEVER_ENDS = "paging would never end; stopped instead"
ENDS_SHORT = "the listing would end short of what it says follows; the part read is not presented as the whole"


def _broken(did: str, what: str, pages: int, consequence: str = NEVER_ENDS) -> CheckpointsError:
    return CheckpointsError(
        ErrorCode.BAD_RESPONSE,
        f"The API {did} while listing {what} (page {pages}), so its cursor pagination is broken and {consequence}. "
        "Check OPENAI_BASE_URL points at a faithful OpenAI-compatible API.",
    )
