"""Whether the jobs a leaderboard ranks against each other were trained on equal footing: the same base model and
budget (epochs, batch size, trained tokens).

A run trained for more epochs, on more tokens, with another batch size or from another base model can win for that
reason alone, so a winner declared across such differences must say so. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .leaderboard import Leaderboard

TOKENS_TOLERANCE = 0.10
"""How much more ``trained_tokens`` one run may have than another (a fraction of the smaller) before the budgets
count as different: datasets of equal size tokenise to slightly different counts, and billing rounds."""

Value = int | float | str


@dataclass(frozen=True)
class RunBudget:
    """What a job was given to train with; None: unknown (a running job's tokens, DPO's missing hyperparameters),
    never counted as a difference."""

    job_id: str
    model: str | None = None
    n_epochs: Value | None = None
    batch_size: Value | None = None
    trained_tokens: int | None = None


@dataclass(frozen=True)
class BudgetWarning:
    aspect: str
    """``base model``, ``n_epochs``, ``batch_size`` or ``trained_tokens``."""
    group: int
    """Which group of jobs ranked against each other differs (an index of `Leaderboard.groups`; 0: the winner's)."""
    text: str


def _shown(value: Value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def budget_warnings(
    runs: Sequence[RunBudget], *, scope: str, group: int = 0, tokens_tolerance: float = TOKENS_TOLERANCE
) -> list[BudgetWarning]:
    """Where `runs` (jobs ranked against each other) differ in base model, n_epochs, batch_size, or trained_tokens
    by more than `tokens_tolerance`; `scope` names them in the sentences ("The 3 jobs ranked by full_valid_loss")."""
    if len(runs) < 2:
        return []
    warnings: list[BudgetWarning] = []
    for aspect, values in (
        ("base model", [(run.job_id, run.model) for run in runs]),
        ("n_epochs", [(run.job_id, run.n_epochs) for run in runs]),
        ("batch_size", [(run.job_id, run.batch_size) for run in runs]),
    ):
        groups: dict[str, list[str]] = {}
        for job_id, value in values:
            if value is not None:
                groups.setdefault(_shown(value), []).append(job_id)
        if len(groups) > 1:
            listed = "; ".join(f"{value} ({', '.join(ids)})" for value, ids in groups.items())
            warnings.append(BudgetWarning(aspect, group, f"{scope} differ in {aspect}: {listed}."))
    tokens = [
        (run.trained_tokens, run.job_id) for run in runs if run.trained_tokens is not None and run.trained_tokens > 0
    ]
    if len(tokens) >= 2:
        low, high = min(tokens), max(tokens)
        if high[0] > low[0] * (1 + tokens_tolerance):
            warnings.append(
                BudgetWarning(
                    "trained_tokens",
                    group,
                    f"{scope} differ in trained_tokens by more than {tokens_tolerance:.0%}: {high[0]:,} ({high[1]}) "
                    f"against {low[0]:,} ({low[1]}), {high[0] / low[0]:.2f}x.",
                )
            )
    return warnings


def leaderboard_budget_warnings(
    board: Leaderboard, budgets: Mapping[str, RunBudget], *, tokens_tolerance: float = TOKENS_TOLERANCE
) -> list[BudgetWarning]:
    """`budget_warnings` for each group of two or more jobs ranked against each other, the winner's group first."""
    warnings: list[BudgetWarning] = []
    for index, group in enumerate(board.groups):
        runs = [budgets[entry.job_id] for entry in group.entries if entry.job_id in budgets]
        scope = f"The {len(runs)} {group.method} jobs ranked by {group.metric}"
        warnings.extend(budget_warnings(runs, scope=scope, group=index, tokens_tolerance=tokens_tolerance))
    return warnings


def _listed(aspects: Sequence[str]) -> str:
    distinct = list(dict.fromkeys(aspects))
    return distinct[0] if len(distinct) == 1 else f"{', '.join(distinct[:-1])} and {distinct[-1]}"


def footing_sentence(board: Leaderboard, warnings: Sequence[BudgetWarning]) -> str | None:
    """The rationale's sentence about unequal footing, or None when the ranked jobs are on equal footing."""
    if not warnings:
        return None
    mine = [w.aspect for w in warnings if board.winner is not None and w.group == 0]
    if mine:
        return (
            f"Not on equal footing: the jobs ranked with the winner differ in {_listed(mine)} (see warnings), which "
            "alone can decide the ranking; compare runs of the same base model and budget before crediting the "
            "difference to what the sweep varied."
        )
    return f"The jobs ranked against each other differ in {_listed([w.aspect for w in warnings])} (see warnings)."
