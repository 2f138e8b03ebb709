"""Properties (hypothesis) of the pure logic an upstream's data flows through: ranking checkpoints, following cursor
pages, parsing result files. Each states what must hold for any input, not for the examples a test thought of.

(The properties of the spike and plateau detectors are in test_analysis_diagnostics.)
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from openai_checkpoints_mcp.analysis.metrics import CATALOGUE, Goal, auto_order
from openai_checkpoints_mcp.analysis.ranking import (
    AUTO,
    Candidate,
    MetricChoiceError,
    choose_metric,
    numeric_keys,
    rank,
)
from openai_checkpoints_mcp.analysis.result_file import ResultFileError, parse_result_file
from openai_checkpoints_mcp.api.pagination import Page, collect_pages
from openai_checkpoints_mcp.errors import CheckpointsError, ErrorCode

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- ranking ---------------------------------------------------------------------------------------------------------

METRIC_NAMES = [*CATALOGUE, "custom_score", "step"]
METHODS = [None, "supervised", "dpo", "reinforcement"]

# Few distinct numbers, so that ties (on the metric, then on its complement) are common.
tie_prone = st.sampled_from([0.0, 0.25, 0.5, 1.0, -1.0])
metric_values = st.one_of(
    tie_prone,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),  # past float's range: not a usable number
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    """Checkpoints with any subset of metrics, any values, steps that may repeat or be missing."""
    count = draw(st.integers(min_value=0, max_value=12))
    return [
        Candidate(
            id=f"ftckpt_{n}",
            step=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=6))),
            metrics=draw(st.dictionaries(st.sampled_from(METRIC_NAMES), metric_values, max_size=6)),
        )
        for n in range(count)
    ]


def usable(value: Any) -> float | None:
    """The test's own reading of "a finite number": an int or float (not a bool) that is finite as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def better_first(value: float | None, goal: Goal | None) -> float:
    if value is None or goal is None:
        return math.inf
    return value if goal is Goal.MIN else -value


@PROPERTY
@given(
    checkpoints=candidates(),
    requested=st.sampled_from([AUTO, *CATALOGUE, "custom_score"]),
    goal=st.sampled_from([None, Goal.MIN, Goal.MAX]),
    method=st.sampled_from(METHODS),
)
def test_ranking_is_total_optimal_and_breaks_ties_as_stated(
    checkpoints: list[Candidate], requested: str, goal: Goal | None, method: str | None
) -> None:
    present = numeric_keys(checkpoints)
    assert present == {
        key for c in checkpoints for key, value in c.metrics.items() if key != "step" and usable(value) is not None
    }
    # A known metric's direction follows from it (check_goal refuses a contrary goal before ranking).
    goal_asked = None if requested in CATALOGUE or requested == AUTO else goal
    try:
        choice = choose_metric(requested, goal_asked, method_type=method, present=present)
    except MetricChoiceError:
        # Only a metric outside the catalogue may be refused: absent from every checkpoint, or without a goal.
        assert requested == "custom_score" and (requested not in present or goal_asked is None)
        return
    if choice is None:
        assert requested == AUTO and not present & set(auto_order(method))
        return
    if requested == AUTO:
        assert choice.metric == next(name for name in auto_order(method) if name in present)

    ranking = rank(checkpoints, choice)
    metric = choice.metric

    # Ranked plus excluded account for every checkpoint exactly once; ranked are those with the metric.
    ranked_ids = [c.id for c in ranking.ranked]
    excluded_ids = [e.id for e in ranking.excluded]
    assert sorted(ranked_ids + excluded_ids) == sorted(c.id for c in checkpoints)
    assert len(set(ranked_ids + excluded_ids)) == len(checkpoints)
    assert set(ranked_ids) == {c.id for c in checkpoints if usable(c.metrics.get(metric)) is not None}
    for exclusion in ranking.excluded:
        assert metric in exclusion.reason

    if not ranking.ranked:
        assert ranking.best is None and ranking.decided_by is None
        return

    # The winner is optimal for the metric and goal among those that have it.
    values = [usable(c.metrics.get(metric)) for c in ranking.ranked]
    best = usable(ranking.ranked[0].metrics.get(metric))
    assert best == (min if choice.goal is Goal.MIN else max)(v for v in values if v is not None)

    # Ties: the complement (accuracy for a loss, loss for an accuracy), then the earlier step, then the API's order.
    info = CATALOGUE.get(metric)
    complement = info.complement if info else None
    complement_goal = CATALOGUE[complement].goal if complement else None

    def key(c: Candidate) -> tuple[float, float, float]:
        return (
            better_first(usable(c.metrics.get(metric)), choice.goal),
            better_first(usable(c.metrics.get(complement)) if complement else None, complement_goal),
            c.step if c.step is not None else math.inf,
        )

    keys = [key(c) for c in ranking.ranked]
    assert keys == sorted(keys)
    order = {c.id: n for n, c in enumerate(checkpoints)}
    for first, second in zip(ranking.ranked, ranking.ranked[1:], strict=False):
        if key(first) == key(second):
            assert order[first.id] < order[second.id]  # a full tie keeps the API's order
    if len(ranking.ranked) >= 2:
        a, b = keys[0], keys[1]
        expected = "metric" if a[0] != b[0] else "complement" if a[1] != b[1] else "step"
        assert ranking.decided_by == expected


# --- pagination ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: str


class FaithfulServer:
    """A list of `count` items served in pages of the given sizes (the last size repeats), with `has_more` as the
    API sends it, or left out (None) as some compatible servers do."""

    def __init__(self, count: int, sizes: Sequence[int], has_more_sent: bool) -> None:
        self.items = [Item(f"item-{n}") for n in range(count)]
        self.sizes = list(sizes)
        self.has_more_sent = has_more_sent
        self.cursors: list[str | None] = []

    async def __call__(self, cursor: str | None) -> Page[Item]:
        self.cursors.append(cursor)
        assert len(self.cursors) <= len(self.items) + 2, "paging did not stop"
        start = 0 if cursor is None else [item.id for item in self.items].index(cursor) + 1
        size = self.sizes[min(len(self.cursors) - 1, len(self.sizes) - 1)]
        page = self.items[start : start + size]
        more = start + size < len(self.items)
        return Page(items=page, has_more=more if self.has_more_sent else None)


def pages_needed(count: int, sizes: Sequence[int], cap: int | None = None) -> int:
    """How many pages hold the first min(count, cap) items, with these page sizes (at least one page)."""
    wanted = count if cap is None else min(count, cap)
    pages = served = 0
    while True:
        served += sizes[min(pages, len(sizes) - 1)]
        pages += 1
        if served >= wanted:
            return pages


@PROPERTY
@given(
    count=st.integers(min_value=0, max_value=60),
    sizes=st.lists(st.integers(min_value=1, max_value=15), min_size=1, max_size=8),
    has_more_sent=st.booleans(),
    cap=st.one_of(st.none(), st.integers(min_value=1, max_value=70)),
)
def test_pagination_gives_every_item_once_in_order_in_the_fewest_requests(
    count: int, sizes: list[int], has_more_sent: bool, cap: int | None
) -> None:
    server = FaithfulServer(count, sizes, has_more_sent)
    collected = anyio.run(lambda: collect_pages(server, max_items=cap or 10_000))
    wanted = count if cap is None else min(count, cap)
    assert [item.id for item in collected.items] == [item.id for item in server.items[:wanted]]
    # Without has_more, only an empty page says the list ended (as openai-python reads it): a cap reached at the
    # very last item cannot know that nothing follows, so it says more may (and asks for no page to find out).
    unknowable = not has_more_sent and cap is not None and count == cap
    truncated = wanted < count or unknowable
    assert collected.truncated is truncated
    assert collected.next_after == (server.items[wanted - 1].id if truncated else None)
    fewest = pages_needed(count, sizes, cap)
    if not has_more_sent and wanted == count and count > 0 and not unknowable:
        fewest += 1  # the empty page that ends the list
    assert len(server.cursors) == collected.pages_fetched == fewest
    # Each request continues from the last item of the one before.
    assert server.cursors[0] is None
    assert len(set(server.cursors)) == len(server.cursors)


class ArbitraryServer:
    """Pages drawn by hypothesis, forever: items from a small pool of ids (so repeats happen), any has_more, and
    sometimes a cursor of the page's own choosing (as the permission list's ``last_id``)."""

    FAILSAFE = 500

    def __init__(self, data: st.DataObject, pool: int) -> None:
        self.data = data
        self.pool = pool
        self.fetches = 0

    async def __call__(self, cursor: str | None) -> Page[Item]:
        self.fetches += 1
        assert self.fetches <= self.FAILSAFE, "paging did not terminate"
        ids = self.data.draw(st.lists(st.integers(min_value=0, max_value=self.pool - 1), max_size=5))
        has_more = self.data.draw(st.sampled_from([True, True, None, False]))
        next_cursor = self.data.draw(st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"])))
        return Page(items=[Item(f"id-{n}") for n in ids], has_more=has_more, next_cursor=next_cursor)


@PROPERTY
@given(data=st.data(), pool=st.integers(min_value=1, max_value=12), cap=st.integers(min_value=1, max_value=40))
def test_every_malformed_page_sequence_terminates(data: st.DataObject, pool: int, cap: int) -> None:
    server = ArbitraryServer(data, pool)

    async def run() -> Any:
        try:
            return await collect_pages(server, max_items=cap, what="items")
        except CheckpointsError as exc:
            return exc

    outcome = anyio.run(run)
    # Every page that does not end the list brings a new id or a new cursor, or paging stops: so it ends within
    # the pool of ids and cursors, whatever the server sends.
    assert server.fetches <= pool + 3 + 1
    if isinstance(outcome, CheckpointsError):
        assert outcome.code is ErrorCode.BAD_RESPONSE
        assert "its cursor pagination is broken" in outcome.message
    else:
        ids = [item.id for item in outcome.items]
        assert len(ids) == len(set(ids)) <= cap


# --- result files ----------------------------------------------------------------------------------------------------

PARSE_BOUND_SECONDS = 2.0
"""Far above what any of these inputs (at most a few KB) takes; a parser that backtracks or loops breaks it."""

csv_alphabet = st.sampled_from(list("step,train_loss valid_loss\r\n\"'0123456789.-+eEnaifNAIF_;\t\ufeff\x00\xff"))
csv_like = st.text(alphabet=csv_alphabet, max_size=3000).map(lambda text: text.encode("utf-8", "surrogatepass"))
bodies = st.one_of(
    st.binary(max_size=3000),
    csv_like,
    csv_like.map(base64.b64encode),
    st.binary(max_size=2000).map(base64.b64encode),
    csv_like.map(lambda body: b"step,train_loss\n" + body),
)


@PROPERTY
@given(body=bodies)
@example(body=b'step,train_loss\n1,"' + b"9" * 140_000 + b'"\n')  # a cell past the csv module's field limit
def test_any_bytes_parse_or_raise_the_parsers_own_error_in_bounded_time(body: bytes) -> None:
    started = time.monotonic()
    try:
        table = parse_result_file(body)
    except ResultFileError as exc:
        assert str(exc)
    else:
        assert list(table.steps) == sorted(set(table.steps))
        assert all(step >= 0 for step in table.steps)
        for values in table.columns.values():
            assert len(values) == len(table.steps)
            assert all(v is None or math.isfinite(v) for v in values)
    assert time.monotonic() - started < PARSE_BOUND_SECONDS


COLUMN_NAMES = [*CATALOGUE, "custom_score", "reward_variance"]
cell_values = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150))


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[int], dict[str, list[float | None]]]:
    steps = draw(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30, unique=True))
    names = draw(st.lists(st.sampled_from(COLUMN_NAMES), min_size=1, max_size=5, unique=True))
    columns = {name: draw(st.lists(cell_values, min_size=len(steps), max_size=len(steps))) for name in names}
    return steps, columns


@PROPERTY
@given(table=tables(), encoded=st.booleans(), crlf=st.booleans())
def test_valid_result_files_round_trip_their_numbers(
    table: tuple[list[int], dict[str, list[float | None]]], encoded: bool, crlf: bool
) -> None:
    steps, columns = table
    end = "\r\n" if crlf else "\n"
    lines = [",".join(["step", *columns])]
    for row, step in enumerate(steps):
        cells = ["" if values[row] is None else repr(values[row]) for values in columns.values()]
        lines.append(",".join([str(step), *cells]))
    body = (end.join(lines) + end).encode()
    parsed = parse_result_file(base64.b64encode(body) if encoded else body)
    assert parsed.encoding == ("base64" if encoded else "csv")
    order = sorted(range(len(steps)), key=lambda row: steps[row])
    assert list(parsed.steps) == [steps[row] for row in order]
    assert set(parsed.columns) == set(columns)
    for name, values in columns.items():
        assert list(parsed.columns[name]) == [values[row] for row in order]
    assert parsed.skipped_rows == 0 and parsed.duplicate_rows == 0


@pytest.mark.parametrize("body", [b"step\n" + b"1\n" * 10, b"STEP,Train_Loss\n1,0.5\n"])
def test_examples_the_properties_rely_on(body: bytes) -> None:
    """A one-column file and a header in capitals parse (the strategies above produce such files rarely)."""
    assert parse_result_file(body).steps
