"""Unit tests of api.pagination: following cursors, stopping, repeated ids and cursors, the item cap, on_page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import pytest

from openai_checkpoints_mcp.api.pagination import Page, collect_pages
from openai_checkpoints_mcp.errors import CheckpointsError, ErrorCode

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Item:
    id: str


def items(*ids: str) -> list[Item]:
    return [Item(i) for i in ids]


def ids(collected: Sequence[Item]) -> list[str]:
    return [item.id for item in collected]


class ScriptedServer:
    """Answers each fetch with the next scripted page and records the cursor it was given.

    Fetching more pages than were scripted fails the test, so a paginator that does not stop
    cannot loop forever.
    """

    def __init__(self, *pages: Page[Item]) -> None:
        self.pages = list(pages)
        self.cursors: list[str | None] = []

    async def __call__(self, cursor: str | None) -> Page[Item]:
        self.cursors.append(cursor)
        if len(self.cursors) > len(self.pages):
            raise AssertionError(f"fetched page {len(self.cursors)} but only {len(self.pages)} were scripted")
        return self.pages[len(self.cursors) - 1]


class ListServer:
    """A faithful server over a fixed list: ``after`` is honoured, pages hold `limit` items."""

    def __init__(self, all_ids: Sequence[str], limit: int) -> None:
        self.all = items(*all_ids)
        self.limit = limit
        self.cursors: list[str | None] = []

    async def __call__(self, cursor: str | None) -> Page[Item]:
        self.cursors.append(cursor)
        if len(self.cursors) > 100:
            raise AssertionError("more than 100 fetches")
        start = 0 if cursor is None else [i.id for i in self.all].index(cursor) + 1
        chunk = self.all[start : start + self.limit]
        return Page(chunk, has_more=start + self.limit < len(self.all))


async def test_follows_pages_with_the_last_items_id_as_cursor() -> None:
    server = ScriptedServer(
        Page(items("c9", "c8", "c7"), has_more=True),
        Page(items("c6", "c5", "c4"), has_more=True),
        Page(items("c3", "c2"), has_more=False),
    )
    collected = await collect_pages(server, max_items=100)
    assert server.cursors == [None, "c7", "c4"]
    assert ids(collected.items) == ["c9", "c8", "c7", "c6", "c5", "c4", "c3", "c2"]
    assert collected.pages_fetched == 3
    assert collected.truncated is False
    assert collected.next_after is None


async def test_single_page_without_more() -> None:
    server = ScriptedServer(Page(items("a", "b"), has_more=False))
    collected = await collect_pages(server, max_items=100)
    assert server.cursors == [None]
    assert ids(collected.items) == ["a", "b"]
    assert collected.pages_fetched == 1


async def test_an_empty_page_that_says_more_follow_is_refused_not_taken_as_the_end() -> None:
    """openai-python stops here and presents the part as the whole; the API said more follow, so it is broken."""
    server = ScriptedServer(Page(items("a", "b"), has_more=True), Page(items(), has_more=True))
    with pytest.raises(CheckpointsError) as caught:
        await collect_pages(server, max_items=100)
    assert caught.value.code is ErrorCode.BAD_RESPONSE and "said more follow an empty page" in caught.value.message
    assert "never end" not in caught.value.message  # it ends short, not never: the sentence says what happened
    assert server.cursors == [None, "b"]


async def test_an_empty_page_without_has_more_ends_the_listing() -> None:
    server = ScriptedServer(Page(items("a", "b"), has_more=True), Page(items(), has_more=None))
    collected = await collect_pages(server, max_items=100)
    assert ids(collected.items) == ["a", "b"] and collected.truncated is False


async def test_empty_first_page() -> None:
    server = ScriptedServer(Page(items(), has_more=None))
    collected = await collect_pages(server, max_items=100)
    assert collected.items == []
    assert collected.pages_fetched == 1
    assert collected.truncated is False


async def test_missing_has_more_on_a_non_empty_page_keeps_paging() -> None:
    server = ScriptedServer(
        Page(items("a", "b"), has_more=None),
        Page(items("c"), has_more=None),
        Page(items(), has_more=None),
    )
    collected = await collect_pages(server, max_items=100)
    assert server.cursors == [None, "b", "c"]
    assert ids(collected.items) == ["a", "b", "c"]


async def test_faithful_server_is_read_to_the_end() -> None:
    all_ids = [f"ftckpt_{n:03d}" for n in range(23)]
    server = ListServer(all_ids, limit=5)
    collected = await collect_pages(server, max_items=1000)
    assert ids(collected.items) == all_ids
    assert server.cursors == [
        None,
        "ftckpt_004",
        "ftckpt_009",
        "ftckpt_014",
        "ftckpt_019",
    ]
    assert collected.pages_fetched == 5


async def test_after_is_the_first_cursor() -> None:
    server = ListServer(["a", "b", "c", "d", "e"], limit=2)
    collected = await collect_pages(server, max_items=100, after="b")
    assert server.cursors == ["b", "d"]
    assert ids(collected.items) == ["c", "d", "e"]


async def test_server_that_ignores_after_is_stopped_on_the_repeated_id() -> None:
    page = Page(items("a", "b"), has_more=True)
    server = ScriptedServer(*[page] * 5)
    with anyio.fail_after(5):
        with pytest.raises(CheckpointsError) as caught:
            await collect_pages(server, max_items=1000, what="checkpoints of job ftjob-x")
    assert caught.value.code is ErrorCode.BAD_RESPONSE
    assert "'a'" in caught.value.message
    assert "checkpoints of job ftjob-x" in caught.value.message
    assert len(server.cursors) == 2


async def test_id_repeated_on_a_later_page_is_kept_once_and_counted() -> None:
    server = ScriptedServer(Page(items("a", "b"), has_more=True), Page(items("c", "a", "d"), has_more=False))
    collected = await collect_pages(server, max_items=1000)
    assert ids(collected.items) == ["a", "b", "c", "d"]
    assert collected.repeated == 1 and collected.scanned == 4 and not collected.truncated
    assert server.cursors == [None, "b"]


async def test_id_repeated_within_one_page_is_kept_once_and_counted() -> None:
    server = ScriptedServer(Page(items("a", "b", "a"), has_more=False))
    collected = await collect_pages(server, max_items=1000)
    assert ids(collected.items) == ["a", "b"]
    assert collected.repeated == 1


async def test_the_cursor_after_a_page_that_ends_in_a_repeat_is_the_id_the_api_ended_it_with() -> None:
    # The page's last item, "a", is a repeat (dropped), yet the API's next page follows it.
    server = ScriptedServer(
        Page(items("a", "b"), has_more=True), Page(items("c", "a"), has_more=True), Page(items("d"), has_more=False)
    )
    collected = await collect_pages(server, max_items=1000)
    assert ids(collected.items) == ["a", "b", "c", "d"]
    assert server.cursors == [None, "b", "a"]


async def test_a_page_of_nothing_new_that_says_more_follow_is_a_bad_response() -> None:
    server = ScriptedServer(
        Page(items("a", "b", "c"), has_more=True),
        Page(items("b", "c"), has_more=None),
        Page(items("d"), has_more=False),
    )
    with pytest.raises(CheckpointsError) as caught:
        await collect_pages(server, max_items=1000, what="fine-tuning jobs")
    assert caught.value.code is ErrorCode.BAD_RESPONSE
    assert "page 2" in caught.value.message and "'b', 'c'" in caught.value.message
    assert len(server.cursors) == 2


async def test_a_final_page_of_nothing_new_ends_the_listing() -> None:
    server = ScriptedServer(Page(items("a", "b"), has_more=True), Page(items("b"), has_more=False))
    collected = await collect_pages(server, max_items=1000)
    assert ids(collected.items) == ["a", "b"]
    assert collected.repeated == 1 and not collected.truncated


async def test_repeated_cursor_is_a_bad_response_and_never_loops() -> None:
    # Asked for what follows "x", the server answers with a page that ends in "x" itself: the next
    # cursor would again be "x", so following it would repeat the same request forever.
    server = ScriptedServer(*[Page(items("w", "x"), has_more=True)] * 5)
    with anyio.fail_after(5):
        with pytest.raises(CheckpointsError) as caught:
            await collect_pages(server, max_items=1000, after="x", what="fine-tuning jobs")
    assert caught.value.code is ErrorCode.BAD_RESPONSE
    assert "cursor 'x' twice" in caught.value.message
    assert "fine-tuning jobs" in caught.value.message
    assert server.cursors == ["x"]


async def test_cap_reached_at_a_page_boundary_with_more_to_come() -> None:
    server = ListServer([f"i{n}" for n in range(10)], limit=2)
    collected = await collect_pages(server, max_items=4)
    assert ids(collected.items) == ["i0", "i1", "i2", "i3"]
    assert collected.truncated is True
    assert collected.next_after == "i3"
    assert server.cursors == [None, "i1"]


async def test_cap_inside_a_page_larger_than_the_remaining_room() -> None:
    server = ScriptedServer(
        Page(items("a", "b", "c"), has_more=True),
        Page(items("d", "e", "f"), has_more=True),
    )
    collected = await collect_pages(server, max_items=4)
    assert ids(collected.items) == ["a", "b", "c", "d"]
    assert collected.truncated is True
    assert collected.next_after == "d"
    assert collected.pages_fetched == 2


async def test_cap_inside_the_last_page_is_still_truncated() -> None:
    # The page says nothing follows it, but two of its items did not fit.
    server = ScriptedServer(Page(items("a", "b", "c", "d", "e"), has_more=False))
    collected = await collect_pages(server, max_items=3)
    assert ids(collected.items) == ["a", "b", "c"]
    assert collected.truncated is True
    assert collected.next_after == "c"


async def test_exactly_max_items_and_nothing_more_is_not_truncated() -> None:
    server = ScriptedServer(Page(items("a", "b"), has_more=True), Page(items("c", "d"), has_more=False))
    collected = await collect_pages(server, max_items=4)
    assert ids(collected.items) == ["a", "b", "c", "d"]
    assert collected.truncated is False
    assert collected.next_after is None


async def test_continuing_from_next_after_yields_the_rest() -> None:
    all_ids = [f"i{n}" for n in range(7)]
    first = await collect_pages(ListServer(all_ids, limit=3), max_items=4)
    assert first.truncated is True
    rest = await collect_pages(ListServer(all_ids, limit=3), max_items=4, after=first.next_after)
    assert ids(first.items) + ids(rest.items) == all_ids
    assert rest.truncated is False


async def test_on_page_gets_pages_fetched_and_items_so_far() -> None:
    calls: list[tuple[int, int]] = []

    async def on_page(pages: int, count: int) -> None:
        calls.append((pages, count))

    server = ScriptedServer(
        Page(items("a", "b", "c"), has_more=True),
        Page(items("d", "e"), has_more=None),
        Page(items(), has_more=None),
    )
    await collect_pages(server, max_items=100, on_page=on_page)
    assert calls == [(1, 3), (2, 5), (3, 5)]


async def test_on_page_counts_only_the_items_kept_under_the_cap() -> None:
    calls: list[tuple[int, int]] = []

    async def on_page(pages: int, count: int) -> None:
        calls.append((pages, count))

    server = ScriptedServer(
        Page(items("a", "b", "c"), has_more=True),
        Page(items("d", "e", "f"), has_more=True),
    )
    await collect_pages(server, max_items=4, on_page=on_page)
    assert calls == [(1, 3), (2, 4)]


async def test_an_empty_first_page_that_says_more_follow_is_refused_too() -> None:
    """The first page of a continuation (``after`` from an earlier truncated answer) is a later page of the list:
    empty with ``has_more: true`` it would otherwise be a complete, empty listing."""
    for after in (None, "b"):
        server = ScriptedServer(Page(items(), has_more=True))
        with pytest.raises(CheckpointsError) as caught:
            await collect_pages(server, max_items=100, after=after)
        assert caught.value.code is ErrorCode.BAD_RESPONSE and server.cursors == [after]
