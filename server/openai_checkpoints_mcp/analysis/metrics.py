"""The metric catalogue: what each checkpoint metric means, which way is better, and what `auto` picks.

The ``full_valid_*`` metrics are computed on the whole validation set at the end
of an epoch; the per-step ``valid_*`` metrics on a single validation batch, so
they can be very noisy; the ``train_*`` metrics measure fit to the training data
and cannot reveal overfitting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


def finite_number(value: Any) -> float | None:
    """`value` as a float when it is a finite number (bools are not numbers here), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float (JSON allows any number of digits)
        return None
    return number if math.isfinite(number) else None


class Goal(StrEnum):
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True)
class MetricInfo:
    name: str
    goal: Goal
    complement: str | None
    """The metric that breaks ties (accuracy for a loss, loss for an accuracy)."""
    meaning: str
    """A clause for a rationale: what the metric measures."""


_FULL_VALID = "computed on the whole validation set"
_VALID_BATCH = "measured on a single validation batch per step, so it can be very noisy"
_TRAIN = "measured on training data, so it cannot detect overfitting"

CATALOGUE: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("full_valid_loss", Goal.MIN, "full_valid_mean_token_accuracy", _FULL_VALID),
        MetricInfo("full_valid_mean_token_accuracy", Goal.MAX, "full_valid_loss", _FULL_VALID),
        MetricInfo("valid_loss", Goal.MIN, "valid_mean_token_accuracy", _VALID_BATCH),
        MetricInfo("valid_mean_token_accuracy", Goal.MAX, "valid_loss", _VALID_BATCH),
        MetricInfo("train_loss", Goal.MIN, "train_mean_token_accuracy", _TRAIN),
        MetricInfo("train_mean_token_accuracy", Goal.MAX, "train_loss", _TRAIN),
        MetricInfo("full_valid_mean_reward", Goal.MAX, None, "the mean grader reward " + _FULL_VALID),
        MetricInfo(
            "train_mean_reward",
            Goal.MAX,
            None,
            "the mean grader reward on training samples, so it cannot detect overfitting",
        ),
    )
}
"""Metrics with a known direction. Any other numeric key needs an explicit goal."""

NAMED_METRICS: tuple[str, ...] = (
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
    "train_loss",
    "train_mean_token_accuracy",
)
"""The metrics every job type may have, in the order tools list them."""

FULL_VALID_REWARDS: tuple[str, ...] = ("full_valid_mean_reward",)
"""Full-validation reward metrics of reinforcement jobs (higher is better)."""


def auto_order(method_type: str | None) -> tuple[str, ...]:
    """The metrics `auto` tries, best evidence first.

    ``full_valid_loss``; for reinforcement jobs the full-validation reward; ``valid_loss``;
    ``train_loss``; and, for reinforcement jobs, the training reward as a last resort
    (they usually carry no loss at all).
    """
    if method_type == "reinforcement":
        return ("full_valid_loss", *FULL_VALID_REWARDS, "valid_loss", "train_loss", "train_mean_reward")
    return ("full_valid_loss", "valid_loss", "train_loss")


def choose_auto_metric(method_type: str | None, present: set[str]) -> str | None:
    """The first metric of `auto_order` that at least one checkpoint has, or None."""
    for name in auto_order(method_type):
        if name in present:
            return name
    return None


def default_goal(metric: str) -> Goal | None:
    """The catalogue's direction for `metric`, or None for a metric it does not know."""
    info = CATALOGUE.get(metric)
    return info.goal if info else None
