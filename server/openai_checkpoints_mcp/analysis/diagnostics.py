"""Deeper diagnostics of a training curve: loss spikes, a plateau, and how much of the curve the figures rest on.

Pure: input is (step, value) points (any order; None, NaN and infinities are ignored) or a parsed `ResultTable`,
output plain dataclasses with a sentence each. The definitions, with their thresholds:

* **Spike** (a Hampel filter): a point whose distance from the median of its centred window of up to
  `SPIKE_WINDOW` points, in the worse direction (up for a loss, down for a reward; both ways when the goal is
  unknown), exceeds `SPIKE_THRESHOLD` times the window's robust spread, ``1.4826 * MAD`` (the median absolute
  deviation from that median), floored at `SPIKE_FLOOR` of the local median so that a flat stretch does not make a
  hair's breadth a spike. A point is judged only with at least `SPIKE_MIN_REACH` points on each side (the first and
  last three are not), and a series only with `MIN_SPIKE_POINTS` points. The median of a centred window of a
  monotone series is the point itself, so a monotone curve has no spikes. A curve is *unstable* with at least
  `UNSTABLE_SPIKES` spikes; its score is the share of judged points that are spikes.
* **Plateau**: the curve is smoothed by a centred rolling median of `plateau_window` points (about a sixth of them,
  5 to 21; the window shrinks symmetrically at the ends; ``full_valid_*``, computed on the whole validation set, is
  not smoothed). Its per-point noise is ``1.4826 * median |second difference| / sqrt(6)`` (a straight line has
  none); a smoothed value of m points has
  noise ``1.2533 * noise / sqrt(m)``. An improvement is *meaningful* when it exceeds ``max(
  PLATEAU_MIN_IMPROVEMENT * |level|, PLATEAU_NOISE_GUARD * the later smoothed value's noise)``: 1% of the level, or
  twice the smoothed curve's own noise when that is larger. The plateau starts at the earliest step whose smoothed
  level no later smoothed value improves on meaningfully; it is reported when it covers at least
  `PLATEAU_MIN_SHARE` of the run's steps (else the curve was still improving near the end).
* **Coverage**: per metric, the steps with a value out of the rows of the file and whether they come every step,
  every K steps or irregularly; whether the best validation step rests on the whole validation set
  (``full_valid_*``) or on one batch per evaluation (``valid_*``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from .metrics import Goal
from .rationale import format_value
from .result_file import ResultTable

SPIKE_WINDOW = 21
"""Points in a spike's centred window (10 either side), fewer near the ends."""
SPIKE_MIN_REACH = 3
"""A point is judged only with at least this many points on each side."""
SPIKE_THRESHOLD = 6.0
"""A spike is this many robust standard deviations (1.4826 * MAD) from its window's median."""
SPIKE_FLOOR = 0.01
"""The robust spread is at least this share of the local median (so a spike is at least 6% off the local level)."""
MIN_SPIKE_POINTS = 15
"""Fewest points of a series to look for spikes in."""
UNSTABLE_SPIKES = 3
"""Spikes that make a curve unstable."""
MAX_LISTED_SPIKES = 10
"""Spike steps listed (the largest); `count` has them all."""

PLATEAU_MIN_POINTS = 8
"""Fewest points of a series to look for a plateau in."""
PLATEAU_MIN_IMPROVEMENT = 0.01
"""An improvement smaller than 1% of the level is never meaningful."""
PLATEAU_NOISE_GUARD = 2.0
"""Nor one smaller than twice the noise of the smoothed curve."""
PLATEAU_MIN_SHARE = 0.2
"""A plateau is reported when it covers at least this share of the run's steps."""

_MAD_SIGMA = 1.4826
"""MAD times this is the standard deviation of normal noise."""
_MEDIAN_SE = 1.2533
"""The standard error of a median of n normal values is this times sigma / sqrt(n)."""
_EPS = 1e-12

Sampling = Literal["every_step", "every_k_steps", "irregular", "single"]
Basis = Literal["full_validation_set", "validation_batch"]


@dataclass(frozen=True)
class Spike:
    step: int
    value: float
    local_median: float
    score: float
    """Distance from the local median in robust standard deviations."""


@dataclass(frozen=True)
class SpikeReport:
    """Spikes of one metric (see the module docstring for the rule)."""

    metric: str
    points: int
    judged: int
    """Points with enough neighbours to be judged."""
    count: int
    spikes: tuple[Spike, ...]
    """The largest `MAX_LISTED_SPIKES`, by step."""
    unstable: bool
    score: float
    """Share of judged points that are spikes (0 to 1)."""
    noise: float
    """Median relative local spread: 1.4826 * MAD / |median| over the judged windows (0.05: about 5% per step)."""
    sentence: str

    @property
    def steps(self) -> list[int]:
        return [spike.step for spike in self.spikes]


@dataclass(frozen=True)
class Plateau:
    """Where a curve stopped improving meaningfully (see the module docstring for the rule)."""

    metric: str
    detected: bool
    start_step: int
    """The earliest step whose smoothed level is never improved on later by more than the tolerance."""
    last_step: int
    run_first_step: int
    level: float
    """The smoothed level at `start_step`."""
    best_after: float
    """The best smoothed level after it."""
    threshold: float
    """The tolerance at `start_step` as a share of `level` (0.047: an improvement of 4.7% was needed)."""
    noise_bound: bool
    """Whether the tolerance is twice the smoothed curve's noise (True) or the 1% floor (False)."""
    share: float
    """Share of the run's steps after `start_step`."""
    window: int
    """Points in the rolling median."""
    sentence: str


@dataclass(frozen=True)
class MetricCoverage:
    name: str
    points: int
    """Steps with a value."""
    steps: int
    """Rows (steps) of the result file."""
    sampling: Sampling
    every: int | None
    """The interval in steps when sampled regularly (1: every step)."""


@dataclass(frozen=True)
class Coverage:
    metrics: tuple[MetricCoverage, ...]
    best_basis: Basis | None
    """What the best validation step rests on; None without validation metrics."""
    sentence: str


# --- helpers --------------------------------------------------------------------------------------------------------


def clean(points: Iterable[tuple[int, float | None]]) -> list[tuple[int, float]]:
    """Finite values only, one per step (the last given), ascending by step."""
    kept: dict[int, float] = {}
    for step, value in points:
        if value is not None and isinstance(value, int | float) and math.isfinite(value):
            kept[step] = float(value)
    return sorted(kept.items())


def _worse(goal: Goal | None, value: float, median: float) -> float:
    """How far `value` is from `median` in the worse direction (both ways when the goal is unknown)."""
    if goal is Goal.MIN:
        return value - median
    if goal is Goal.MAX:
        return median - value
    return abs(value - median)


def centred_median(values: Sequence[float], window: int) -> list[float]:
    """The median of a centred window of up to `window` points around each point, shrinking symmetrically at the
    ends (the first and last values are their own). On a monotone series it is the series itself."""
    n = len(values)
    half = max(0, window // 2)
    result = []
    for i in range(n):
        reach = min(half, i, n - 1 - i)
        result.append(statistics.median(values[i - reach : i + reach + 1]))
    return result


def curve_noise(values: Sequence[float]) -> float:
    """Per-point noise, robustly and free of a local linear trend: ``1.4826 * median |second difference| / sqrt(6)``
    (the second difference of independent noise has variance 6 sigma^2; of a straight line, 0)."""
    second = [abs(a - 2 * b + c) for a, b, c in zip(values, values[1:], values[2:], strict=False)]
    return _MAD_SIGMA * statistics.median(second) / math.sqrt(6) if second else 0.0


def plateau_window(points: int) -> int:
    """About a sixth of the points, odd, between 5 and 21."""
    return min(21, max(5, (points // 6) | 1))


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


# --- spikes ---------------------------------------------------------------------------------------------------------


def find_spikes(metric: str, points: Iterable[tuple[int, float | None]], goal: Goal | None) -> SpikeReport | None:
    """The spikes of one series; None when it has fewer than `MIN_SPIKE_POINTS` values."""
    series = clean(points)
    n = len(series)
    if n < MIN_SPIKE_POINTS:
        return None
    values = [value for _, value in series]
    half = SPIKE_WINDOW // 2
    found: list[Spike] = []
    spreads: list[float] = []
    judged = 0
    for i, (step, value) in enumerate(series):
        reach = min(half, i, n - 1 - i)
        if reach < SPIKE_MIN_REACH:
            continue
        judged += 1
        window = values[i - reach : i + reach + 1]
        median = statistics.median(window)
        mad = statistics.median(abs(v - median) for v in window)
        spread = max(_MAD_SIGMA * mad, SPIKE_FLOOR * abs(median), _EPS)
        spreads.append(_MAD_SIGMA * mad / max(abs(median), _EPS))
        score = _worse(goal, value, median) / spread
        if score > SPIKE_THRESHOLD:
            found.append(Spike(step=step, value=value, local_median=median, score=score))
    listed = sorted(sorted(found, key=lambda s: -s.score)[:MAX_LISTED_SPIKES], key=lambda s: s.step)
    count = len(found)
    unstable = count >= UNSTABLE_SPIKES
    noise = statistics.median(spreads) if spreads else 0.0
    return SpikeReport(
        metric=metric,
        points=n,
        judged=judged,
        count=count,
        spikes=tuple(listed),
        unstable=unstable,
        score=count / judged if judged else 0.0,
        noise=noise,
        sentence=_spike_sentence(metric, count, listed, judged, unstable, noise),
    )


def _spike_sentence(metric: str, count: int, listed: list[Spike], judged: int, unstable: bool, noise: float) -> str:
    rule = (
        f"more than {SPIKE_THRESHOLD:g} robust standard deviations (1.4826 x MAD) worse than the median of "
        f"its {SPIKE_WINDOW} neighbouring points"
    )
    if count == 0:
        return f"No spikes in {metric}: none of {judged} points judged is {rule}; typical noise {_pct(noise)}."
    top = max(listed, key=lambda s: s.score)
    steps = ", ".join(str(s.step) for s in listed) + (f" and {count - len(listed)} more" if count > len(listed) else "")
    head = f"{metric} is unstable" if unstable else f"{metric} has {'a spike' if count == 1 else f'{count} spikes'}"
    return (
        f"{head}: {count} of {judged} points {'is' if count == 1 else 'are'} {rule} (step{'s' if count > 1 else ''} "
        f"{steps}; the largest at step {top.step}, {format_value(top.value)} against a local "
        f"{format_value(top.local_median)}). "
        + (
            "Repeated spikes suggest a learning rate too high for the data or bad examples; a rerun could lower "
            "learning_rate_multiplier."
            if unstable
            else "A lone spike is usually one unusual batch; check the examples around that step if it recurs."
        )
    )


# --- plateau --------------------------------------------------------------------------------------------------------


def find_plateau(
    metric: str,
    points: Iterable[tuple[int, float | None]],
    goal: Goal,
    *,
    run: tuple[int, int] | None = None,
    exact: bool = False,
) -> Plateau | None:
    """Where `metric` stopped improving meaningfully; None with fewer than `PLATEAU_MIN_POINTS` values.

    `run` is the first and last step of the whole run (the result file's), else the series' own. `exact` series
    (``full_valid_*``: the whole validation set, no sampling noise) are not smoothed and have only the 1% floor.
    """
    series = clean(points)
    n = len(series)
    if n < PLATEAU_MIN_POINTS:
        return None
    first, last = run if run is not None else (series[0][0], series[-1][0])
    first, last = min(first, series[0][0]), max(last, series[-1][0])
    sign = 1.0 if goal is Goal.MIN else -1.0
    values = [value for _, value in series]
    window = 1 if exact else plateau_window(n)
    half = window // 2
    smooth = centred_median(values, window)
    noise = curve_noise(values)

    def guard(j: int) -> float:
        """Twice the noise of smoothed value j, a median of its centred window (smaller near the ends)."""
        size = 2 * min(half, j, n - 1 - j) + 1
        return PLATEAU_NOISE_GUARD * _MEDIAN_SE * noise / math.sqrt(size)

    # per distinct guard (the window shrinks near the end): the best smoothed value after i, as sign * value
    guards = sorted({guard(j) for j in range(n)})
    best_later = {g: [math.inf] * n for g in guards}
    for i in range(n - 2, -1, -1):
        for g in guards:
            best_later[g][i] = best_later[g][i + 1]
        later = sign * smooth[i + 1]
        g_next = guard(i + 1)
        best_later[g_next][i] = min(best_later[g_next][i], later)
    start = n - 1
    for i in range(n):
        floor = PLATEAU_MIN_IMPROVEMENT * abs(smooth[i])
        if all(sign * smooth[i] - best_later[g][i] <= max(floor, g) for g in guards):
            start = i
            break
    start_step = series[start][0]
    level = smooth[start]
    after = [sign * value for value in smooth[start + 1 :]]
    best_after = sign * min(after) if after else level
    share = (last - start_step) / max(last - first, 1)
    detected = share >= PLATEAU_MIN_SHARE
    interior = PLATEAU_NOISE_GUARD * _MEDIAN_SE * noise / math.sqrt(window)
    tolerance = max(PLATEAU_MIN_IMPROVEMENT * abs(level), interior)
    threshold = tolerance / max(abs(level), _EPS)
    noise_bound = interior > PLATEAU_MIN_IMPROVEMENT * abs(level)
    return Plateau(
        metric=metric,
        detected=detected,
        start_step=start_step,
        last_step=last,
        run_first_step=first,
        level=level,
        best_after=best_after,
        threshold=threshold,
        noise_bound=noise_bound,
        share=share,
        window=window,
        sentence=_plateau_sentence(
            metric, detected, start_step, last, threshold, noise_bound, share, (level, best_after)
        ),
    )


def _plateau_sentence(
    metric: str,
    detected: bool,
    start: int,
    last: int,
    threshold: float,
    noise_bound: bool,
    share: float,
    levels: tuple[float, float],
) -> str:
    level, best = levels
    smoothed = f"smoothed level {format_value(level)} there, best later {format_value(best)}"
    why = "twice the noise of its smoothed curve" if noise_bound else "the 1% floor; its noise is smaller"
    if not detected:
        return (
            f"No plateau: {metric} kept improving by more than {_pct(threshold)} ({why}) until step {start} of "
            f"{last}, within the last {_pct(PLATEAU_MIN_SHARE)} of training: it had not stopped improving, so more "
            "steps might still help."
        )
    return (
        f"Plateau: {metric} stopped improving by more than {_pct(threshold)} ({why}) after step "
        f"{start} of {last} ({smoothed}): the last {_pct(share)} of training added no meaningful improvement, so a "
        f"rerun could stop around step {start}, or use fewer epochs."
    )


# --- coverage -------------------------------------------------------------------------------------------------------


def metric_coverage(name: str, table: ResultTable) -> MetricCoverage:
    """How often `name` has a value among the table's steps."""
    steps = [step for step, _ in clean(table.values(name))]
    rows = len(table.steps)
    if len(steps) <= 1:
        return MetricCoverage(name, len(steps), rows, "single", None)
    if len(steps) == rows:
        gaps = {b - a for a, b in pairwise(steps)}
        if gaps == {1}:
            return MetricCoverage(name, len(steps), rows, "every_step", 1)
    gaps_list = [b - a for a, b in pairwise(steps)]
    every = statistics.mode(gaps_list)
    # regular: every gap is the interval, except a shorter last one (the final step evaluated too)
    regular = (
        all(gap == every for gap in gaps_list[:-1])
        and gaps_list[-1] <= every
        and (len(gaps_list) == 1 or gaps_list.count(every) >= 2)
    )
    if regular and every == 1:
        return MetricCoverage(name, len(steps), rows, "every_step", 1)
    return MetricCoverage(
        name, len(steps), rows, "every_k_steps" if regular else "irregular", every if regular else None
    )


def coverage(table: ResultTable, names: Sequence[str], best_metric: str | None) -> Coverage:
    """Coverage of `names` (the metrics that speak for the job), and what the best validation step rests on."""
    metrics = tuple(metric_coverage(name, table) for name in names if table.values(name))
    basis: Basis | None = None
    if best_metric is not None:
        basis = "full_validation_set" if best_metric.startswith("full_valid") else "validation_batch"
    parts = [_coverage_words(m) for m in metrics]
    sentence = "Coverage: " + "; ".join(parts) + "." if parts else "Coverage: no metric has a value."
    if best_metric is not None and basis == "validation_batch":
        sentence += (
            f" The best validation step rests on {best_metric}, one validation batch per evaluation, not the full "
            "validation set."
        )
    elif best_metric is not None:
        sentence += f" The best validation step rests on {best_metric}, computed on the full validation set."
    return Coverage(metrics=metrics, best_basis=basis, sentence=sentence)


def _coverage_words(m: MetricCoverage) -> str:
    if m.sampling == "every_step":
        return f"{m.name} at every step ({m.points} of {m.steps})"
    if m.sampling == "every_k_steps":
        return f"{m.name} at {m.points} of {m.steps} steps (every {m.every} steps)"
    if m.sampling == "single":
        return f"{m.name} at {m.points} of {m.steps} steps"
    return f"{m.name} at {m.points} of {m.steps} steps (irregularly)"
