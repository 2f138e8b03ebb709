"""Unit tests of analysis.downsample: LTTB and the row selection that keeps extremes and must-keep steps."""

from __future__ import annotations

import math
import random

import pytest

from openai_checkpoints_mcp.analysis.downsample import (
    downsample_rows,
    lttb,
    primary_metric,
)
from openai_checkpoints_mcp.analysis.result_file import ResultTable

from .helpers import Column, table


def extremes(column: Column) -> set[int]:
    rows = [row for row, value in enumerate(column) if value is not None]
    return {
        min(rows, key=lambda row: (column[row], row)),
        max(rows, key=lambda row: (column[row], -row)),
    }


@pytest.mark.parametrize(
    ("ys", "points", "expected"),
    [
        ([0, 0, 0, 10, 0, 0, 0], 3, [0, 3, 6]),
        # buckets {1, 2} and {3, 4, 5}: from (0, 0) towards the mean of the next bucket (4, 3.33) row 2 wins
        ([0, 0, 0, 10, 0, 0, 0], 4, [0, 2, 3, 6]),
        ([0, 5, 0, 0, 5, 0], 4, [0, 1, 4, 5]),  # both peaks
        ([1, 2, 3, 4, 5], 2, [0, 4]),
        ([1, 2, 3], 3, [0, 1, 2]),
        ([1, 2, 3], 10, [0, 1, 2]),
        ([], 5, []),
        ([4.0], 2, [0]),
    ],
)
def test_lttb_known_answers(ys: list[float], points: int, expected: list[int]) -> None:
    assert lttb([float(x) for x in range(len(ys))], ys, points) == expected


@pytest.mark.parametrize(("n", "points"), [(10, 3), (100, 7), (1000, 50), (1001, 1000), (5000, 123)])
def test_lttb_shape(n: int, points: int) -> None:
    rng = random.Random(f"lttb {n} {points}")
    ys = [rng.gauss(0, 1) for _ in range(n)]
    kept = lttb([float(x) for x in range(n)], ys, points)
    assert len(kept) == points
    assert kept == sorted(set(kept))
    assert (kept[0], kept[-1]) == (0, n - 1)


def test_lttb_keeps_a_spike_that_striding_misses() -> None:
    ys = [math.sin(x / 50) for x in range(1000)]
    ys[537] = 30.0
    assert 537 not in range(0, 1000, 1000 // 20)
    assert 537 in lttb([float(x) for x in range(1000)], ys, 20)


def test_lttb_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="points must be at least 2, got 1"):
        lttb([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], 1)
    with pytest.raises(ValueError, match="differ in length"):
        lttb([0.0, 1.0], [0.0], 2)


@pytest.mark.parametrize(
    ("columns", "primary"),
    [
        (
            {"train_loss": [1.0], "valid_loss": [2.0], "full_valid_loss": [3.0]},
            "full_valid_loss",
        ),
        (
            {"train_loss": [1.0], "valid_loss": [2.0], "full_valid_loss": [None]},
            "valid_loss",
        ),
        (
            {"train_mean_reward": [1.0], "full_valid_mean_reward": [0.5]},
            "full_valid_mean_reward",
        ),
        ({"grad_norm": [1.0], "train_loss": [1.0], "valid_loss": [None]}, "train_loss"),
        ({"empty": [None], "grad_norm": [1.0], "pg_loss_sum": [2.0]}, "grad_norm"),
        ({"empty": [None]}, None),
        ({}, None),
    ],
)
def test_primary_metric(columns: dict[str, Column], primary: str | None) -> None:
    assert primary_metric(table([1], **columns)) == primary


def spiky_job() -> ResultTable:
    """1000 steps; each series has a spike or a dip on a row that a stride of 25 never visits."""
    rows = range(1000)
    train: list[float | None] = [2.0 * math.exp(-row / 300) + 0.3 for row in rows]
    train[333], train[777] = 5.0, 0.01
    valid: list[float | None] = [1.5 - row / 1000 if row % 10 == 9 else None for row in rows]
    valid[509] = 9.0
    grad: list[float | None] = [None if row % 7 == 0 else 1.0 + 0.1 * math.sin(row) for row in rows]
    grad[401], grad[613] = 50.0, -3.0
    return table([row + 1 for row in rows], train_loss=train, valid_loss=valid, grad_norm=grad)


def test_extremes_of_every_series_survive() -> None:
    job = spiky_job()
    spikes = {333, 777, 509, 401, 613}
    assert not spikes & set(range(0, 1000, 25))  # plain striding to 40 rows would lose every one of them
    kept = downsample_rows(job, 40)
    assert len(kept) == 40
    for name, column in job.columns.items():
        assert extremes(column) <= set(kept), name
    assert spikes <= set(kept)


def test_fill_is_lttb_so_a_second_spike_survives() -> None:
    """The higher spike is the maximum (kept as an extreme); the lower one survives only through LTTB."""
    ys: list[float | None] = [0.0] * 1000
    ys[300], ys[730] = 10.0, 8.0
    kept = downsample_rows(table(range(1, 1001), train_loss=ys), 10)
    assert {300, 730} <= set(kept)
    assert 730 not in range(0, 1000, 100)


@pytest.mark.parametrize("n", [3, 10, 101, 1000])
@pytest.mark.parametrize("points", [2, 3, 5, 17, 99, 2000])
def test_length_bounds_and_ends(n: int, points: int) -> None:
    rng = random.Random(f"rows {n} {points}")
    steps = range(1, n + 1)
    job = table(
        steps,
        train_loss=[rng.random() for _ in steps],
        valid_loss=[rng.random() if rng.random() < 0.2 else None for _ in steps],
    )
    middle = (n + 1) // 2  # a step whose row is neither the first nor the last, for every n (n = 3: step 2, row 1)
    kept = downsample_rows(job, points, must_keep=[middle, n + 50])  # step n + 50 is not in the table
    assert len(kept) == min(points, n)
    assert kept == sorted(set(kept))
    assert {0, n - 1} <= set(kept)
    if points == 2:
        assert kept == [
            0,
            n - 1,
        ]  # the first and last rows come before any must-keep row
    else:
        assert middle - 1 in kept  # the row of step `middle` (n >= 10 with 3 or 5 points: only must_keep keeps it)


def test_points_at_least_the_row_count_returns_every_row() -> None:
    job = table([5, 6, 7], train_loss=[1.0, None, 0.5])
    assert downsample_rows(job, 3) == [0, 1, 2]
    assert downsample_rows(job, 300) == [0, 1, 2]
    assert downsample_rows(table([]), 5) == []


def test_must_keep_are_steps_and_are_honoured() -> None:
    steps = range(10, 10_001, 10)
    job = table(steps, train_loss=[1 / step for step in steps])
    kept = downsample_rows(job, 30, must_keep=[130, 4_700, 99_999])
    assert {12, 469} <= set(kept)  # the rows of steps 130 and 4700; step 99999 is not in the table
    assert len(kept) == 30


def test_must_keep_beyond_the_budget_goes_first_last_then_in_order() -> None:
    steps = range(1, 101)
    job = table(steps, train_loss=[math.sin(step) for step in steps])
    assert downsample_rows(job, 4, must_keep=[50, 60, 70, 80, 90]) == [0, 49, 59, 99]
    # with room for one more, an extreme of the series comes before any LTTB pick
    kept = downsample_rows(job, 5, must_keep=[50, 60])
    assert kept[:1] + kept[-1:] == [0, 99] and {49, 59} <= set(kept)
    assert set(kept) - {0, 49, 59, 99} <= extremes(job.columns["train_loss"])


def test_fill_follows_the_primary_series_and_skips_its_missing_cells() -> None:
    steps = range(1, 201)
    job = table(
        steps,
        train_loss=[2.0 - step / 200 for step in steps],
        valid_loss=[1.0 + math.sin(step / 9) if step % 4 == 0 else None for step in steps],
    )
    kept = downsample_rows(job, 20)
    assert len(kept) == 20
    inner = [row for row in kept if row not in (0, 199)]
    assert all(job.columns["valid_loss"][row] is not None for row in inner)
    # more points than the primary series has: all of its 50 rows, then train_loss rows
    kept = downsample_rows(job, 80)
    valid_rows = {row for row, value in enumerate(job.columns["valid_loss"]) if value is not None}
    assert len(kept) == 80 and valid_rows <= set(kept)


@pytest.mark.parametrize(
    "columns",
    [
        {},
        {"train_loss": [None] * 10},
        {"train_loss": [None] * 9 + [0.5], "valid_loss": [None] * 10},
    ],
    ids=["no-columns", "all-missing", "one-value"],
)
def test_rows_without_values_are_spread_evenly(columns: dict[str, Column]) -> None:
    kept = downsample_rows(table(range(1, 11), **columns), 4)
    assert len(kept) == 4 and {0, 9} <= set(kept)
    assert kept == sorted(set(kept))


def test_downsample_rejects_fewer_than_two_points() -> None:
    with pytest.raises(ValueError, match="points must be at least 2, got 0"):
        downsample_rows(table([1, 2, 3], train_loss=[1.0, 2.0, 3.0]), 0)
