"""Unit tests of analysis.leaderboard: each job represented by its best checkpoint, like-with-like groups, unranked
jobs and their reasons."""

from __future__ import annotations

import pytest

from openai_checkpoints_mcp.analysis.leaderboard import (
    JobCandidate,
    build_leaderboard,
    leaderboard_rationale,
)
from openai_checkpoints_mcp.analysis.metrics import Goal
from openai_checkpoints_mcp.analysis.ranking import Candidate, MetricChoiceError


def _job(
    job_id: str,
    *losses: float,
    metric: str = "full_valid_loss",
    method: str = "supervised",
) -> JobCandidate:
    checkpoints = [
        Candidate(f"{job_id}-ck{i}", 100 * (i + 1), {metric: loss, "train_loss": 0.1}) for i, loss in enumerate(losses)
    ]
    return JobCandidate(job_id, method, checkpoints)


def test_each_job_is_represented_by_its_best_checkpoint_and_jobs_ranked_by_it():
    board = build_leaderboard([_job("a", 0.5, 0.4, 0.45), _job("b", 0.3, 0.35), _job("c", 0.6)])
    assert [(e.job_id, e.best.step, e.value) for e in board.ranked] == [
        ("b", 100, 0.3),
        ("a", 200, 0.4),
        ("c", 100, 0.6),
    ]
    assert board.winner.job_id == "b" and board.unranked == []


def test_train_only_jobs_form_their_own_group_after_validation_ones():
    board = build_leaderboard([_job("t", 0.01, metric="train_loss"), _job("v", 0.5), _job("w", 0.4)])
    assert [(g.metric, [e.job_id for e in g.entries]) for g in board.groups] == [
        ("full_valid_loss", ["w", "v"]),
        ("train_loss", ["t"]),
    ]
    text = leaderboard_rationale(board)
    assert text.startswith("w wins with the lowest full_valid_loss") and "ranked separately by train_loss" in text


def test_methods_are_not_mixed():
    board = build_leaderboard([_job("s", 0.5), _job("d", 0.1, method="dpo")])
    # Equally trusted metrics of different methods: no overall winner, and each method's best is named.
    assert [(g.method, g.metric) for g in board.groups] == [
        ("dpo", "full_valid_loss"),
        ("supervised", "full_valid_loss"),
    ]
    assert board.undecided and board.winner is None
    text = leaderboard_rationale(board)
    assert text.startswith("No overall winner: these jobs use different fine-tuning methods (dpo, supervised)")
    assert "best dpo job by full_valid_loss: d, 0.1 at step 100; best supervised job by full_valid_loss: s" in text


def test_a_less_trusted_group_of_another_method_does_not_block_the_winner():
    board = build_leaderboard([_job("s", 0.5), _job("d", 0.1, method="dpo", metric="train_loss")])
    assert not board.undecided and board.winner.job_id == "s"


def test_jobs_without_checkpoints_or_metrics_are_unranked_with_a_reason():
    empty = JobCandidate("e", "supervised", [])
    odd = JobCandidate("o", "supervised", [Candidate("o1", 1, {"custom": 1.0})])
    board = build_leaderboard([empty, odd, _job("a", 0.4)])
    assert [(e.job_id, e.note) for e in board.unranked] == [
        ("e", "no checkpoints"),
        ("o", "no checkpoint has any of full_valid_loss, valid_loss, train_loss"),
    ]
    assert "Not ranked: e: no checkpoints" in leaderboard_rationale(board)


def test_an_explicit_metric_and_goal_and_ties():
    jobs = [
        _job("a", 0.9, metric="full_valid_mean_token_accuracy"),
        _job("b", 0.9, metric="full_valid_mean_token_accuracy"),
    ]
    board = build_leaderboard(jobs, metric="full_valid_mean_token_accuracy")
    assert board.groups[0].goal is Goal.MAX and [e.job_id for e in board.ranked] == [
        "a",
        "b",
    ]  # tie: listing order
    assert "tied on full_valid_mean_token_accuracy" in leaderboard_rationale(board)
    with pytest.raises(MetricChoiceError, match="goal"):
        build_leaderboard([_job("a", 1.0, metric="custom")], metric="custom")
    custom = build_leaderboard(
        [_job("a", 1.0, metric="custom"), _job("b", 2.0, metric="custom")],
        metric="custom",
        goal=Goal.MAX,
    )
    assert custom.winner.job_id == "b"


def test_no_rankable_job_says_so():
    assert leaderboard_rationale(build_leaderboard([])).startswith("No job could be ranked")


def test_an_unknown_metric_is_refused_naming_the_compared_jobs():
    with pytest.raises(MetricChoiceError, match="no checkpoint of the compared jobs has it"):
        build_leaderboard([_job("a", 0.4), _job("b", 0.5)], metric="bleu_score")
