"""Shrink a training curve to at most N rows without losing what matters.

Plain striding (every k-th row) misses spikes; `downsample_rows` always keeps the first and last row,
the rows the caller names (the best validation step, the kept checkpoints), the minimum and maximum of
every column, and fills the rest with Largest-Triangle-Three-Buckets (`lttb`), which keeps the points
that shape the curve.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

from .result_file import ResultTable

PRIMARY_ORDER: tuple[str, ...] = (
    "full_valid_loss",
    "valid_loss",
    "full_valid_mean_reward",
    "train_loss",
    "train_mean_reward",
)
"""The series the fill follows: the first of these with a value, else the first column with a value."""


def lttb(xs: Sequence[float], ys: Sequence[float], points: int) -> list[int]:
    """Largest-Triangle-Three-Buckets (Steinarsson, 2013): the indices of `points` of the (x, y) points.

    Returns ascending indices, always the first and the last; every index when ``points >= len(xs)``.
    The inner points are split into ``points - 2`` equal buckets, and from each bucket the point that
    makes the largest triangle with the previously kept point and the mean of the next bucket is kept
    (the first such point on a tie). `xs` must be ascending; all values must be finite.
    Raises ValueError when ``points < 2`` or the sequences differ in length.
    """
    n = len(xs)
    if len(ys) != n:
        raise ValueError(f"xs and ys differ in length ({n} and {len(ys)})")
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if points >= n:
        return list(range(n))
    if points == 2:
        return [0, n - 1]
    buckets = points - 2
    inner = n - 2

    def bucket_start(i: int) -> int:  # the first index of bucket i (bucket `buckets` starts at the last point)
        return i * inner // buckets + 1

    kept = [0]
    previous = 0
    for i in range(buckets):
        next_start = bucket_start(i + 1)
        next_end = bucket_start(i + 2) if i + 1 < buckets else n  # the last point stands for the bucket after the last
        count = next_end - next_start
        mean_x = sum(xs[next_start:next_end]) / count
        mean_y = sum(ys[next_start:next_end]) / count
        ax, ay = xs[previous], ys[previous]
        best, best_area = bucket_start(i), -1.0
        for j in range(bucket_start(i), bucket_start(i + 1)):
            area = abs((ax - mean_x) * (ys[j] - ay) - (ax - xs[j]) * (mean_y - ay))
            if area > best_area:
                best, best_area = j, area
        kept.append(best)
        previous = best
    kept.append(n - 1)
    return kept


def primary_metric(table: ResultTable) -> str | None:
    """The series the fill follows: validation loss, else validation reward, else train loss/reward,
    else the first column with a value; None when no column has one."""
    for name in (*PRIMARY_ORDER, *table.columns):
        if any(value is not None for value in table.columns.get(name, ())):
            return name
    return None


def downsample_rows(table: ResultTable, points: int, *, must_keep: Iterable[int] = ()) -> list[int]:
    """Row indices (ascending) of at most `points` rows of `table`, and at least ``min(points, rows)``.

    `must_keep` holds **steps** (not row indices), such as the best validation step and the steps of
    kept checkpoints; steps absent from the table are ignored. Rows are chosen in this order of
    priority until `points` are chosen:

    1. the first and the last row;
    2. the rows of `must_keep`, in the order given (put the most important first);
    3. the rows of the minimum and the maximum of every column (the earliest on a tie), the primary
       series (`primary_metric`) first, then the others in column order;
    4. the rest by LTTB on the primary series, among the rows where it has a value: the chosen rows
       split the series into segments, each segment gets a share of the remaining budget proportional
       to its free rows, and LTTB picks them between the segment's chosen ends; if the primary series
       runs out of rows, the next series (`PRIMARY_ORDER`, then column order) continues the same way;
    5. if rows are still missing (rows with no value in any column), evenly spaced remaining rows.

    Returns every row when ``points >= rows``. Raises ValueError when ``points < 2``.
    """
    n = len(table.steps)
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if points >= n:
        return list(range(n))
    chosen: set[int] = set()

    def take(row: int) -> None:
        if len(chosen) < points:
            chosen.add(row)

    take(0)
    take(n - 1)
    row_of = {step: row for row, step in enumerate(table.steps)}
    for step in must_keep:
        if step in row_of:
            take(row_of[step])

    # The primary series first (the names before it have no values), each name once.
    order = [name for name in dict.fromkeys((*PRIMARY_ORDER, *table.columns)) if name in table.columns]
    series = {name: [row for row, value in enumerate(table.columns[name]) if value is not None] for name in order}
    for name in order:
        rows = series[name]
        if rows:
            column = table.columns[name]
            take(min(rows, key=lambda row: (column[row], row)))
            take(max(rows, key=lambda row: (column[row], -row)))

    for name in order:
        if len(chosen) >= points:
            break
        column = table.columns[name]
        rows = series[name]
        chosen.update(
            _fill(
                rows,
                [float(table.steps[row]) for row in rows],
                [_value(column[row]) for row in rows],
                chosen,
                points - len(chosen),
            )
        )

    if len(chosen) < points:
        rest = [row for row in range(n) if row not in chosen]
        need = points - len(chosen)
        chosen.update(rest[i * len(rest) // need] for i in range(need))
    return sorted(chosen)


def _value(value: float | None) -> float:
    assert value is not None
    return value


def _fill(rows: list[int], xs: list[float], ys: list[float], chosen: set[int], budget: int) -> list[int]:
    """Up to `budget` rows of one series, not in `chosen`, by LTTB between the already chosen rows."""
    free = [p for p, row in enumerate(rows) if row not in chosen]
    if len(free) <= budget:
        return [rows[p] for p in free]
    picked: list[int] = []
    anchored = {p for p, row in enumerate(rows) if row in chosen}
    for end in (0, len(rows) - 1):  # the series' own ends first, so every segment has two
        if end not in anchored and len(picked) < budget:
            anchored.add(end)
            picked.append(end)
    budget -= len(picked)
    if budget == 0:
        return [rows[p] for p in picked]
    anchors = sorted(anchored)
    segments = [(a, b) for a, b in pairwise(anchors) if b - a > 1]
    sizes = [b - a - 1 for a, b in segments]
    total = sum(sizes)  # > budget, as more rows are free than the budget allows
    shares = [budget * size // total for size in sizes]
    spare = budget - sum(shares)
    by_remainder = sorted(range(len(segments)), key=lambda i: (-(budget * sizes[i] % total), i))
    for i in by_remainder:
        if spare == 0:
            break
        if shares[i] < sizes[i]:
            shares[i] += 1
            spare -= 1
    for (a, b), share in zip(segments, shares, strict=True):
        if share:
            inside = lttb(xs[a : b + 1], ys[a : b + 1], share + 2)[1:-1]
            picked.extend(a + p for p in inside)
    return [rows[p] for p in picked]
