"""Unit tests of analysis.metrics, ranking and rationale: the metric catalogue, choosing and ordering, ties, reasons."""

from __future__ import annotations

import math
from typing import Any

import pytest

from openai_checkpoints_mcp.analysis.metrics import (
    CATALOGUE,
    NAMED_METRICS,
    Goal,
    auto_order,
    choose_auto_metric,
    default_goal,
    finite_number,
)
from openai_checkpoints_mcp.analysis.ranking import (
    AUTO,
    Candidate,
    MetricChoice,
    MetricChoiceError,
    Ranking,
    check_goal,
    choose_metric,
    numeric_keys,
    rank,
)
from openai_checkpoints_mcp.analysis.rationale import (
    exclusion_note,
    metric_reason,
    winner_sentence,
)


def cand(step_number: int | None, /, **metrics: Any) -> Candidate:
    """A checkpoint at `step_number` whose metrics are the keyword arguments (``step`` included)."""
    return Candidate(id=f"ftckpt_{step_number}", step=step_number, metrics=metrics)


def steps(ranking: Ranking) -> list[int | None]:
    return [c.step for c in ranking.ranked]


def explicit(metric: str, goal: Goal | None = None, present: set[str] | None = None) -> MetricChoice:
    choice = choose_metric(metric, goal, method_type="supervised", present=present or set())
    assert choice is not None
    return choice


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (0.25, 0.25),
        (-3, -3.0),
        (True, None),
        (False, None),
        (math.nan, None),
        (math.inf, None),
        (-math.inf, None),
        ("0.5", None),
        (None, None),
        ({"x": 1}, None),
        ([1], None),
        (10**400, None),
        (-(10**400), None),
        (2**1023, float(2**1023)),
    ],
)
def test_finite_number(value: Any, expected: float | None) -> None:
    assert finite_number(value) == expected


def test_losses_go_down_and_accuracies_and_rewards_go_up() -> None:
    for name in CATALOGUE:
        expected = Goal.MIN if name.endswith("_loss") else Goal.MAX
        assert default_goal(name) is expected, name
    assert default_goal("full_valid_mean_reward") is Goal.MAX
    assert default_goal("pg_loss_sum") is None


def test_every_named_metric_is_in_the_catalogue_with_a_mutual_complement() -> None:
    for name in NAMED_METRICS:
        complement = CATALOGUE[name].complement
        assert complement is not None
        assert CATALOGUE[complement].complement == name
        assert CATALOGUE[complement].goal is not CATALOGUE[name].goal


@pytest.mark.parametrize("method_type", ["supervised", "dpo", None, "something-new"])
def test_auto_order_for_loss_trained_jobs(method_type: str | None) -> None:
    assert auto_order(method_type) == ("full_valid_loss", "valid_loss", "train_loss")


def test_auto_order_for_reinforcement() -> None:
    assert auto_order("reinforcement") == (
        "full_valid_loss",
        "full_valid_mean_reward",
        "valid_loss",
        "train_loss",
        "train_mean_reward",
    )


@pytest.mark.parametrize(
    ("method_type", "present", "expected"),
    [
        (
            "supervised",
            {"full_valid_loss", "valid_loss", "train_loss"},
            "full_valid_loss",
        ),
        (
            "supervised",
            {"valid_loss", "train_loss", "full_valid_mean_token_accuracy"},
            "valid_loss",
        ),
        ("supervised", {"train_loss", "train_mean_token_accuracy"}, "train_loss"),
        ("supervised", {"train_mean_token_accuracy"}, None),
        ("supervised", {"full_valid_mean_reward", "train_loss"}, "train_loss"),
        (
            "reinforcement",
            {"full_valid_mean_reward", "valid_loss", "train_mean_reward"},
            "full_valid_mean_reward",
        ),
        (
            "reinforcement",
            {"full_valid_loss", "full_valid_mean_reward"},
            "full_valid_loss",
        ),
        (
            "reinforcement",
            {"valid_loss", "train_loss", "train_mean_reward"},
            "valid_loss",
        ),
        ("reinforcement", {"train_loss", "train_mean_reward"}, "train_loss"),
        (
            "reinforcement",
            {"train_mean_reward", "completion_tokens_mean"},
            "train_mean_reward",
        ),
        ("reinforcement", set(), None),
    ],
)
def test_choose_auto_metric(method_type: str, present: set[str], expected: str | None) -> None:
    assert choose_auto_metric(method_type, present) == expected


def test_numeric_keys_ignore_step_and_non_numbers() -> None:
    candidates = [
        cand(1, step=1.0, train_loss=0.5, valid_loss=None),
        cand(
            2,
            full_valid_mean_reward=0.7,
            flag=True,
            note="x",
            nested={"a": 1},
            bad=math.nan,
        ),
    ]
    assert numeric_keys(candidates) == {"train_loss", "full_valid_mean_reward"}


def test_auto_picks_full_valid_loss_when_present() -> None:
    choice = choose_metric(AUTO, None, method_type="supervised", present={"full_valid_loss", "valid_loss"})
    assert choice == MetricChoice("full_valid_loss", Goal.MIN, AUTO, ())


def test_auto_reports_the_better_metrics_it_skipped() -> None:
    choice = choose_metric(AUTO, None, method_type="supervised", present={"train_loss"})
    assert choice == MetricChoice("train_loss", Goal.MIN, AUTO, ("full_valid_loss", "valid_loss"))


def test_auto_reinforcement_reward_is_maximised() -> None:
    choice = choose_metric(
        AUTO,
        None,
        method_type="reinforcement",
        present={"full_valid_mean_reward", "train_loss"},
    )
    assert choice == MetricChoice("full_valid_mean_reward", Goal.MAX, AUTO, ("full_valid_loss",))


def test_auto_with_nothing_usable_is_none() -> None:
    assert choose_metric(AUTO, None, method_type="supervised", present={"completion_tokens_mean"}) is None


@pytest.mark.parametrize("metric", [*NAMED_METRICS, "full_valid_mean_reward", "train_mean_reward"])
def test_explicit_catalogue_metric_uses_its_direction_even_if_absent(
    metric: str,
) -> None:
    assert explicit(metric) == MetricChoice(metric, CATALOGUE[metric].goal, metric, ())


def test_a_goal_against_a_known_metric_direction_is_refused() -> None:
    """goal=max on a loss would recommend the worst checkpoint: refused with the reason, not silently obeyed."""
    check_goal("valid_loss", Goal.MIN)  # agreeing with the catalogue is fine
    check_goal("custom_score", Goal.MAX)  # a metric outside the catalogue takes any goal
    assert explicit("valid_loss", Goal.MIN).goal is Goal.MIN
    with pytest.raises(MetricChoiceError) as caught:
        check_goal("valid_loss", Goal.MAX)
    assert str(caught.value) == (
        "valid_loss is better when lower (goal 'min'); goal='max' would rank the worst checkpoint first. Omit goal: "
        "for a known metric the direction follows from the metric."
    )


def test_custom_present_key_with_a_goal() -> None:
    choice = explicit(
        "completion_tokens_mean",
        Goal.MIN,
        present={"completion_tokens_mean", "train_loss"},
    )
    assert choice == MetricChoice("completion_tokens_mean", Goal.MIN, "completion_tokens_mean", ())


def test_custom_key_without_a_goal_asks_for_one() -> None:
    with pytest.raises(MetricChoiceError) as caught:
        choose_metric(
            "completion_tokens_mean",
            None,
            method_type="reinforcement",
            present={"completion_tokens_mean"},
        )
    message = str(caught.value)
    assert "goal='min'" in message and "goal='max'" in message
    assert "completion_tokens_mean" in message


def test_unknown_key_lists_the_accepted_names() -> None:
    with pytest.raises(MetricChoiceError) as caught:
        choose_metric(
            "val_loss",
            None,
            method_type="supervised",
            present={"train_loss", "pg_loss_sum", "entropy"},
        )
    message = str(caught.value)
    assert "'val_loss'" in message
    accepted = message.split("Accepted here: ", 1)[1].rstrip(".").split(", ")
    assert accepted == ["auto", *CATALOGUE, "entropy", "pg_loss_sum"]


def test_unknown_key_is_refused_even_with_a_goal() -> None:
    with pytest.raises(MetricChoiceError):
        choose_metric("val_loss", Goal.MIN, method_type="supervised", present={"train_loss"})


def test_min_goal_puts_the_lowest_first() -> None:
    candidates = [
        cand(120, full_valid_loss=0.5102),
        cand(240, full_valid_loss=0.3705),
        cand(360, full_valid_loss=0.3521),
    ]
    ranking = rank(candidates, explicit("full_valid_loss"))
    assert steps(ranking) == [360, 240, 120]
    assert ranking.best is candidates[2]
    assert ranking.decided_by == "metric"
    assert ranking.excluded == []


def test_max_goal_puts_the_highest_first() -> None:
    candidates = [
        cand(10, full_valid_mean_reward=0.42),
        cand(20, full_valid_mean_reward=0.68),
        cand(30, full_valid_mean_reward=0.55),
    ]
    ranking = rank(candidates, explicit("full_valid_mean_reward"))
    assert steps(ranking) == [20, 30, 10]
    assert ranking.decided_by == "metric"


def test_custom_metric_with_max_goal() -> None:
    candidates = [cand(1, score=-2), cand(2, score=3), cand(3, score=0)]
    ranking = rank(candidates, explicit("score", Goal.MAX, present={"score"}))
    assert steps(ranking) == [2, 3, 1]


def test_ranking_value_reads_the_chosen_metric() -> None:
    ranking = rank([cand(1, valid_loss=0.3, train_loss=0.1)], explicit("valid_loss"))
    assert ranking.value(ranking.ranked[0]) == 0.3
    assert ranking.value(ranking.ranked[0], "train_loss") == 0.1


def test_exclusions_say_missing_or_not_finite() -> None:
    candidates = [
        cand(40, valid_loss=0.30),
        cand(30, train_loss=0.2),  # missing
        cand(20, valid_loss=None),  # null
        cand(10, valid_loss=math.nan),
        cand(50, valid_loss="0.1"),
        cand(60, valid_loss=True),
        cand(70, valid_loss=math.inf),
    ]
    ranking = rank(candidates, explicit("valid_loss"))
    assert steps(ranking) == [40]
    assert [(e.step, e.reason) for e in ranking.excluded] == [
        (10, "valid_loss is not a finite number (nan)"),
        (20, "has no valid_loss"),
        (30, "has no valid_loss"),
        (50, "valid_loss is not a finite number ('0.1')"),
        (60, "valid_loss is not a finite number (True)"),
        (70, "valid_loss is not a finite number (inf)"),
    ]
    assert ranking.excluded[0].id == "ftckpt_10"
    assert ranking.decided_by is None


def test_integer_too_large_for_a_float_is_excluded_not_a_crash() -> None:
    ranking = rank([cand(1, valid_loss=10**400), cand(2, valid_loss=0.2)], explicit("valid_loss"))
    assert steps(ranking) == [2]
    assert [e.step for e in ranking.excluded] == [1]
    assert ranking.excluded[0].reason.startswith("valid_loss is not a finite number (1000")


def test_excluded_without_a_step_come_last() -> None:
    ranking = rank([cand(None), cand(5), cand(1, train_loss=1.0)], explicit("train_loss"))
    assert [e.step for e in ranking.excluded] == [5, None]


def test_nothing_ranked() -> None:
    ranking = rank([cand(1, train_loss=0.1)], explicit("full_valid_loss"))
    assert ranking.ranked == []
    assert ranking.best is None
    assert ranking.decided_by is None


@pytest.mark.parametrize(
    ("candidates", "metric", "expected_steps", "decided_by"),
    [
        pytest.param(
            [
                cand(100, full_valid_loss=0.35, full_valid_mean_token_accuracy=0.89),
                cand(200, full_valid_loss=0.35, full_valid_mean_token_accuracy=0.91),
                cand(300, full_valid_loss=0.40, full_valid_mean_token_accuracy=0.99),
            ],
            "full_valid_loss",
            [200, 100, 300],
            "complement",
            id="tied_loss_is_broken_by_higher_accuracy",
        ),
        pytest.param(
            [
                cand(100, valid_mean_token_accuracy=0.9, valid_loss=0.30),
                cand(200, valid_mean_token_accuracy=0.9, valid_loss=0.25),
                cand(300, valid_mean_token_accuracy=0.8, valid_loss=0.01),
            ],
            "valid_mean_token_accuracy",
            [200, 100, 300],
            "complement",
            id="tied_accuracy_is_broken_by_lower_loss",
        ),
        pytest.param(
            [
                cand(100, train_loss=0.2),
                cand(200, train_loss=0.2, train_mean_token_accuracy=0.1),
            ],
            "train_loss",
            [200, 100],
            "complement",
            id="tied_loss_with_a_missing_complement_loses_to_one_that_has_it",
        ),
        pytest.param(
            [
                cand(300, full_valid_loss=0.35, full_valid_mean_token_accuracy=0.9),
                cand(100, full_valid_loss=0.35, full_valid_mean_token_accuracy=0.9),
                cand(200, full_valid_loss=0.35, full_valid_mean_token_accuracy=0.9),
            ],
            "full_valid_loss",
            [100, 200, 300],
            "step",
            id="full_tie_goes_to_the_earlier_step",
        ),
        pytest.param(
            [cand(20, train_loss=0.5), cand(10, train_loss=0.5)],
            "train_loss",
            [10, 20],
            "step",
            id="tie_without_complements_goes_to_the_earlier_step",
        ),
        pytest.param(  # rewards have no complement in the catalogue: a tie goes straight to the step
            [
                cand(20, full_valid_mean_reward=0.7, full_valid_loss=0.1),
                cand(10, full_valid_mean_reward=0.7),
            ],
            "full_valid_mean_reward",
            [10, 20],
            "step",
            id="reward_ties_go_to_the_earlier_step",
        ),
        pytest.param(
            [cand(None, train_loss=0.5), cand(7, train_loss=0.5)],
            "train_loss",
            [7, None],
            "step",
            id="tie_with_an_unknown_step_puts_it_last",
        ),
    ],
)
def test_tie_breaks(
    candidates: list[Candidate],
    metric: str,
    expected_steps: list[int | None],
    decided_by: str,
) -> None:
    ranking = rank(candidates, explicit(metric))
    assert steps(ranking) == expected_steps
    assert ranking.decided_by == decided_by


def test_tie_below_the_winner_does_not_change_decided_by() -> None:
    candidates = [
        cand(1, valid_loss=0.1),
        cand(2, valid_loss=0.2),
        cand(3, valid_loss=0.2),
    ]
    assert rank(candidates, explicit("valid_loss")).decided_by == "metric"


def test_single_candidate_has_no_decider() -> None:
    assert rank([cand(1, valid_loss=0.1)], explicit("valid_loss")).decided_by is None


def auto_ranking(method_type: str, candidates: list[Candidate]) -> Ranking:
    choice = choose_metric(AUTO, None, method_type=method_type, present=numeric_keys(candidates))
    assert choice is not None
    return rank(candidates, choice)


def test_reason_for_the_preferred_metric() -> None:
    ranking = auto_ranking("supervised", [cand(1, full_valid_loss=0.3)])
    assert metric_reason(ranking, has_validation_file=True) == (
        "Ranked by full_valid_loss (lower is better), computed on the whole validation set."
    )


def test_reason_without_a_validation_file() -> None:
    ranking = auto_ranking("supervised", [cand(1, train_loss=0.3), cand(2, train_loss=0.2)])
    reason = metric_reason(ranking, has_validation_file=False)
    assert "no validation file" in reason
    assert "train_loss" in reason
    assert "cannot detect overfitting" in reason


def test_reason_for_the_noisy_valid_loss_fallback() -> None:
    ranking = auto_ranking("supervised", [cand(1, valid_loss=0.3, train_loss=0.2)])
    reason = metric_reason(ranking, has_validation_file=True)
    assert reason.startswith("No checkpoint has full_valid_loss, so ranked by valid_loss")
    assert "noisy" in reason


def test_reason_for_train_loss_despite_a_validation_file_names_both_missing_metrics() -> None:
    ranking = auto_ranking("supervised", [cand(1, train_loss=0.3)])
    reason = metric_reason(ranking, has_validation_file=True)
    assert "full_valid_loss or valid_loss" in reason
    assert "cannot detect overfitting" in reason


def test_reason_for_the_reinforcement_reward() -> None:
    ranking = auto_ranking("reinforcement", [cand(1, full_valid_mean_reward=0.6)])
    reason = metric_reason(ranking, has_validation_file=True)
    assert reason.startswith("Ranked by full_valid_mean_reward (higher is better)")
    assert "rewards rather than a validation loss" in reason


def test_reason_for_an_explicit_metric() -> None:
    ranking = rank([cand(1, valid_mean_token_accuracy=0.8)], explicit("valid_mean_token_accuracy"))
    reason = metric_reason(ranking, has_validation_file=True)
    assert reason.startswith("Ranked by valid_mean_token_accuracy (higher is better)")
    assert reason.endswith(", as requested.")


def test_reason_for_a_custom_metric_has_no_meaning_clause() -> None:
    ranking = rank([cand(1, score=1.0)], explicit("score", Goal.MAX, present={"score"}))
    assert metric_reason(ranking, has_validation_file=True) == "Ranked by score (higher is better), as requested."


def test_winner_before_the_end_says_to_deploy_it() -> None:
    candidates = [
        cand(120, full_valid_loss=0.51),
        cand(240, full_valid_loss=0.35),
        cand(360, full_valid_loss=0.37),
    ]
    ranking = rank(candidates, explicit("full_valid_loss"))
    sentence = winner_sentence(ranking, last_step=360, best_is_final=False)
    assert sentence.startswith("Step 240 is best of 3 ranked checkpoints with full_valid_loss 0.35")
    assert "last checkpoint (step 360, 0.37)" in sentence
    assert "deploy this checkpoint rather than the final model" in sentence


def test_winner_when_the_last_checkpoint_was_not_ranked() -> None:
    candidates = [
        cand(120, full_valid_loss=0.51),
        cand(240, full_valid_loss=0.35),
        cand(360, train_loss=0.1),
    ]
    ranking = rank(candidates, explicit("full_valid_loss"))
    sentence = winner_sentence(ranking, last_step=360, best_is_final=False)
    assert sentence.endswith("; the last checkpoint (step 360) has no full_valid_loss, so it could not be compared.")
    assert "deploy" not in sentence


def test_winner_tied_with_the_last_checkpoint_does_not_claim_to_be_better() -> None:
    ranking = rank([cand(1, valid_loss=0.3), cand(2, valid_loss=0.3)], explicit("valid_loss"))
    sentence = winner_sentence(ranking, last_step=2, best_is_final=False)
    assert "better" not in sentence
    assert sentence.endswith("; the last checkpoint (step 2) ties on valid_loss, and the tie-break prefers step 1.")


def test_winner_of_a_job_without_a_final_model_yet() -> None:
    candidates = [cand(100, full_valid_loss=0.3), cand(200, full_valid_loss=0.4)]
    ranking = rank(candidates, explicit("full_valid_loss"))
    early = winner_sentence(ranking, last_step=200, best_is_final=False, has_final_model=False)
    assert early.endswith("deploy this checkpoint (the job has no final model yet).")
    latest = winner_sentence(
        rank(candidates[:1], explicit("full_valid_loss")),
        last_step=100,
        best_is_final=True,
        has_final_model=False,
    )
    assert latest.endswith("it is the job's latest checkpoint (the job has no final model yet).")


def test_winner_that_is_the_final_model() -> None:
    ranking = rank([cand(1, train_loss=0.5), cand(2, train_loss=0.25)], explicit("train_loss"))
    sentence = winner_sentence(ranking, last_step=2, best_is_final=True)
    assert sentence == (
        "Step 2 is best of 2 ranked checkpoints with train_loss 0.25; "
        "it is the job's last checkpoint, so the final model is the one to deploy."
    )


def test_winner_by_complement_names_it() -> None:
    candidates = [
        cand(1, valid_loss=0.3, valid_mean_token_accuracy=0.8),
        cand(2, valid_loss=0.3, valid_mean_token_accuracy=0.9),
    ]
    ranking = rank(candidates, explicit("valid_loss"))
    sentence = winner_sentence(ranking, last_step=2, best_is_final=True)
    assert "(tied with step 1; valid_mean_token_accuracy broke the tie)" in sentence


def test_winner_by_step_says_the_earlier_step_wins() -> None:
    ranking = rank([cand(1, valid_loss=0.3), cand(2, valid_loss=0.3)], explicit("valid_loss"))
    sentence = winner_sentence(ranking, last_step=2, best_is_final=False)
    assert sentence.startswith(
        "Step 1 is best of 2 ranked checkpoints with valid_loss 0.3 (tied with step 2; the earlier step wins)"
    )


def test_single_ranked_checkpoint_is_singular() -> None:
    ranking = rank([cand(5, valid_loss=0.123456)], explicit("valid_loss"))
    assert winner_sentence(ranking, last_step=5, best_is_final=True).startswith(
        "Step 5 is best of 1 ranked checkpoint with valid_loss 0.12346;"
    )


def test_no_winner_no_sentence() -> None:
    ranking = rank([cand(1)], explicit("valid_loss"))
    assert winner_sentence(ranking, last_step=1, best_is_final=False) == ""


def test_exclusion_note() -> None:
    choice = explicit("valid_loss")
    assert exclusion_note(rank([cand(1, valid_loss=0.1)], choice)) == ""
    assert exclusion_note(rank([cand(1, valid_loss=0.1), cand(2)], choice)) == (
        "1 checkpoint without valid_loss was not ranked."
    )
    assert exclusion_note(rank([cand(1), cand(2, valid_loss=math.nan)], choice)) == (
        "2 checkpoints without valid_loss were not ranked."
    )
