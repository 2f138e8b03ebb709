"""Unit tests of analysis.budget: jobs ranked against each other on unequal footing (base model, n_epochs,
batch_size, trained_tokens beyond the tolerance) are named, equal ones are not, unknowns never count, and the
rationale's sentence."""

from __future__ import annotations

from openai_checkpoints_mcp.analysis.budget import (
    TOKENS_TOLERANCE,
    RunBudget,
    budget_warnings,
    footing_sentence,
    leaderboard_budget_warnings,
)
from openai_checkpoints_mcp.analysis.leaderboard import JobCandidate, build_leaderboard
from openai_checkpoints_mcp.analysis.ranking import Candidate

BASE = "gpt-4o-mini-2024-07-18"


def _run(job_id: str, **fields: object) -> RunBudget:
    values: dict[str, object] = {"model": BASE, "n_epochs": 3, "batch_size": 8, "trained_tokens": 1_000_000}
    values.update(fields)
    return RunBudget(job_id, **values)  # type: ignore[arg-type]


def _texts(runs: list[RunBudget]) -> list[str]:
    return [w.text for w in budget_warnings(runs, scope="The runs")]


def test_equal_budgets_give_no_warning():
    assert _texts([_run("a"), _run("b"), _run("c", n_epochs=3.0)]) == []
    assert _texts([_run("a", n_epochs=5)]) == []  # one run compares with nothing


def test_each_difference_is_named_with_its_jobs():
    texts = _texts([_run("a"), _run("b", model="gpt-4.1-mini-2025-04-14", n_epochs=4, batch_size=16), _run("c")])
    assert texts == [
        f"The runs differ in base model: {BASE} (a, c); gpt-4.1-mini-2025-04-14 (b).",
        "The runs differ in n_epochs: 3 (a, c); 4 (b).",
        "The runs differ in batch_size: 8 (a, c); 16 (b).",
    ]


def test_trained_tokens_differ_only_beyond_the_tolerance():
    assert TOKENS_TOLERANCE == 0.10
    assert _texts([_run("a"), _run("b", trained_tokens=1_100_000)]) == []  # exactly 10% more: equal footing
    assert _texts([_run("a"), _run("b", trained_tokens=1_100_001)]) == [
        "The runs differ in trained_tokens by more than 10%: 1,100,001 (b) against 1,000,000 (a), 1.10x."
    ]
    assert (
        _texts(
            [_run("a"), _run("b", trained_tokens=2_000_000)],
        )
        != []
    )
    assert budget_warnings([_run("a"), _run("b", trained_tokens=2_000_000)], scope="x", tokens_tolerance=1.5) == []


def test_unknown_values_are_never_a_difference():
    runs = [_run("a"), _run("b", model=None, n_epochs=None, batch_size=None, trained_tokens=None)]
    assert _texts(runs) == []
    assert _texts([_run("a", n_epochs="auto"), _run("b")]) == ["The runs differ in n_epochs: auto (a); 3 (b)."]


def _job(job_id: str, loss: float, metric: str = "full_valid_loss") -> JobCandidate:
    return JobCandidate(job_id, "supervised", [Candidate(f"{job_id}-ck", 100, {metric: loss})])


def test_only_jobs_ranked_against_each_other_are_compared_and_the_rationale_says_so():
    # b is ranked alone by train_loss (no validation): its 10 epochs are not a difference with a and c.
    board = build_leaderboard([_job("a", 0.3), _job("b", 0.01, "train_loss"), _job("c", 0.4)])
    budgets = {"a": _run("a"), "b": _run("b", n_epochs=10), "c": _run("c")}
    assert leaderboard_budget_warnings(board, budgets) == []
    assert footing_sentence(board, []) is None

    budgets["c"] = _run("c", batch_size=32)
    warnings = leaderboard_budget_warnings(board, budgets)
    assert [(w.aspect, w.group) for w in warnings] == [("batch_size", 0)]
    assert warnings[0].text == "The 2 supervised jobs ranked by full_valid_loss differ in batch_size: 8 (a); 32 (c)."
    sentence = footing_sentence(board, warnings)
    assert sentence is not None and sentence.startswith("Not on equal footing: the jobs ranked with the winner ")
    assert "differ in batch_size (see warnings)" in sentence


def test_a_difference_outside_the_winners_group_is_mentioned_not_blamed_on_the_winner():
    board = build_leaderboard([_job("a", 0.3), _job("t1", 0.1, "train_loss"), _job("t2", 0.2, "train_loss")])
    budgets = {"a": _run("a"), "t1": _run("t1"), "t2": _run("t2", n_epochs=6)}
    warnings = leaderboard_budget_warnings(board, budgets)
    assert [(w.aspect, w.group) for w in warnings] == [("n_epochs", 1)]
    assert footing_sentence(board, warnings) == "The jobs ranked against each other differ in n_epochs (see warnings)."
