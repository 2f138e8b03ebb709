"""Choosing the metric and ranking a job's checkpoints by it.

`choose_metric` resolves ``metric="auto"`` (or checks an explicit metric)
against the metrics the checkpoints actually carry; `rank` orders the
checkpoints best first, breaking ties on the complementary metric (accuracy
for a loss, loss for an accuracy) and then on the earlier step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .metrics import CATALOGUE, Goal, auto_order, choose_auto_metric, finite_number

AUTO = "auto"


class MetricChoiceError(ValueError):
    """The requested metric or goal cannot be used; the message says what is accepted."""


@dataclass(frozen=True)
class Candidate:
    """A checkpoint as ranking sees it: its id, step and raw metrics (values may be anything)."""

    id: str
    step: int | None
    metrics: Mapping[str, Any]


@dataclass(frozen=True)
class Exclusion:
    id: str
    step: int | None
    reason: str


@dataclass(frozen=True)
class MetricChoice:
    metric: str
    goal: Goal
    requested: str
    """What the caller asked for: ``auto`` or a metric name."""
    skipped: tuple[str, ...] = ()
    """With ``auto``: the better metrics that no checkpoint had."""


@dataclass(frozen=True)
class Ranking:
    choice: MetricChoice
    ranked: list[Candidate]
    """Checkpoints that have the metric, best first."""
    excluded: list[Exclusion]
    decided_by: str | None = None
    """How the winner beat the runner-up: ``metric``, ``complement``, ``step``, or None with fewer than two."""

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    def value(self, candidate: Candidate, metric: str | None = None) -> float | None:
        return finite_number(candidate.metrics.get(metric or self.choice.metric))


def numeric_keys(candidates: Sequence[Candidate]) -> set[str]:
    """Metric names that at least one checkpoint has as a finite number (``step`` excluded)."""
    return {
        key
        for candidate in candidates
        for key, value in candidate.metrics.items()
        if key != "step" and finite_number(value) is not None
    }


def choose_metric(
    requested: str, goal: Goal | None, *, method_type: str | None, present: set[str], scope: str = "of this job"
) -> MetricChoice | None:
    """Resolve the metric to rank by.

    Returns None when ``auto`` finds none of its metrics on any checkpoint. `goal` has been checked against the
    metric's known direction (`check_goal`, once, before any request).

    Raises:
        MetricChoiceError: an explicit metric that is neither in the catalogue nor present
            on a checkpoint, or a metric outside the catalogue without a `goal`.
    """
    if requested == AUTO:
        metric = choose_auto_metric(method_type, present)
        if metric is None:
            return None
        order = auto_order(method_type)
        skipped = order[: order.index(metric)]
        return MetricChoice(metric, goal or CATALOGUE[metric].goal, AUTO, skipped)
    info = CATALOGUE.get(requested)
    if info is None and requested not in present:
        accepted = ", ".join(["auto", *CATALOGUE, *sorted(present - set(CATALOGUE))])
        raise MetricChoiceError(
            f"metric {requested!r} is not a known metric and no checkpoint {scope} has it. Accepted here: {accepted}."
        )
    if info is None and goal is None:
        raise MetricChoiceError(
            f"metric {requested!r} is not in the catalogue, so its direction is unknown: pass goal='min' "
            "(lower is better) or goal='max' (higher is better)."
        )
    return MetricChoice(requested, goal or info.goal, requested)  # type: ignore[union-attr]


def check_goal(metric: str, goal: Goal | None) -> None:
    """Refuse a goal that contradicts a catalogue metric's direction (it would rank the worst checkpoint first).

    Raises:
        MetricChoiceError: with the metric's direction and what to do.
    """
    info = CATALOGUE.get(metric)
    if info is not None and goal is not None and goal is not info.goal:
        better = "lower" if info.goal is Goal.MIN else "higher"
        raise MetricChoiceError(
            f"{metric} is better when {better} (goal {info.goal.value!r}); goal={goal.value!r} would rank the worst "
            "checkpoint first. Omit goal: for a known metric the direction follows from the metric."
        )


def oriented(value: float | None, direction: Goal | None) -> float:
    """A sort key where smaller is better whatever the direction; a missing value sorts last."""
    if value is None or direction is None:
        return math.inf
    return value if direction is Goal.MIN else -value


def rank(candidates: Sequence[Candidate], choice: MetricChoice) -> Ranking:
    """Order the checkpoints that have a finite value of the chosen metric, best first."""
    metric, goal = choice.metric, choice.goal
    info = CATALOGUE.get(metric)
    complement = info.complement if info else None
    complement_goal = CATALOGUE[complement].goal if complement else None

    ranked: list[Candidate] = []
    excluded: list[Exclusion] = []
    for candidate in candidates:
        raw = candidate.metrics.get(metric)
        if finite_number(raw) is not None:
            ranked.append(candidate)
        elif raw is None:
            excluded.append(Exclusion(candidate.id, candidate.step, f"has no {metric}"))
        else:
            shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
            excluded.append(Exclusion(candidate.id, candidate.step, f"{metric} is not a finite number ({shown})"))

    def key(candidate: Candidate) -> tuple[float, float, float]:
        primary = oriented(finite_number(candidate.metrics.get(metric)), goal)
        secondary = oriented(finite_number(candidate.metrics.get(complement)) if complement else None, complement_goal)
        step = candidate.step if candidate.step is not None else math.inf
        return primary, secondary, step

    ranked.sort(key=key)
    decided_by = None
    if len(ranked) >= 2:
        first, second = key(ranked[0]), key(ranked[1])
        if first[0] != second[0]:
            decided_by = "metric"
        elif first[1] != second[1]:
            decided_by = "complement"
        else:
            decided_by = "step"
    excluded.sort(key=lambda e: e.step if e.step is not None else math.inf)
    return Ranking(choice, ranked, excluded, decided_by)
