"""Unit tests of analysis.training: overfitting verdicts, best validation step, train/validation gap, summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from openai_checkpoints_mcp.analysis.metrics import Goal
from openai_checkpoints_mcp.analysis.result_file import ResultTable, parse_result_file
from openai_checkpoints_mcp.analysis.training import (
    MetricSummary,
    analyse,
    best_validation,
    metric_goal,
    overfitting_signal,
    summaries,
    train_validation_gap,
    validation_metric,
)
from openai_checkpoints_mcp.fake.curves import (
    SFT_COLUMNS,
    LossCurve,
    loss_rows,
    result_csv,
)

from .helpers import Column, table


def every(steps: Sequence[int], values: dict[int, float]) -> list[float | None]:
    """A sparse column: `values` at their steps, None elsewhere."""
    return [values.get(step) for step in steps]


STEPS = range(1, 101)


FALLING_TRAIN = [2.0 - 0.015 * step for step in STEPS]


U_SHAPED = dict(
    zip(
        range(10, 101, 10),
        [1.0, 0.8, 0.6, 0.5, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7],
        strict=True,
    )
)


FALLING = dict(
    zip(
        range(10, 101, 10),
        [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        strict=True,
    )
)


PLATEAU = dict(
    zip(
        range(10, 101, 10),
        [1.0, 0.8, 0.6, 0.5, 0.45, 0.46, 0.45, 0.46, 0.46, 0.47],
        strict=True,
    )
)


def u_shaped_job() -> ResultTable:
    return table(STEPS, train_loss=FALLING_TRAIN, full_valid_loss=every(STEPS, U_SHAPED))


def test_u_shaped_validation_with_falling_train_is_overfitting() -> None:
    signal, why = overfitting_signal(u_shaped_job())
    assert signal is not None and why == ""
    assert signal.detected
    assert (signal.validation_metric, signal.train_metric) == (
        "full_valid_loss",
        "train_loss",
    )
    assert (signal.window_start_step, signal.window_end_step) == (50, 100)
    assert (signal.best_validation_step, signal.best_validation_value) == (50, 0.45)
    # late level: median of the last third (steps 70-100: 0.55, 0.6, 0.65, 0.7)
    assert signal.late_validation_value == pytest.approx(0.625)
    assert signal.validation_change == pytest.approx(0.175)
    # train over steps 50-100: median of steps 50-74 (step 62) and of steps 76-100 (step 88)
    assert signal.train_change == pytest.approx((2.0 - 0.015 * 88) - (2.0 - 0.015 * 62))
    assert signal.validation_points == 10
    assert signal.sentence == (
        "Overfitting: full_valid_loss rose 38.9% from its best (0.45 at step 50) to 0.625 (median of the 4 "
        "evaluations from step 70 to 100), while train_loss fell 36.4% (median 1.07 in the first half of steps "
        "50-100, 0.68 in the second)."
    )


@pytest.mark.parametrize(
    ("validation", "train", "detected", "sentence_start"),
    [
        (
            FALLING,
            FALLING_TRAIN,
            False,
            "No sign of overfitting: the lowest full_valid_loss (0.1) is at the last evaluation, step 100.",
        ),
        (
            PLATEAU,
            FALLING_TRAIN,
            False,
            "No sign of overfitting: full_valid_loss ended at 0.46 (median of the 4 evaluations from step 70 to 100), "
            "2.2% worse than its best (0.45 at step 50); 5.0% worse would have counted; train_loss fell",
        ),
        (
            U_SHAPED,
            [0.5] * 100,
            False,
            "No clear sign of overfitting: full_valid_loss rose 38.9% from its best (0.45 at step 50) to 0.625 "
            "(median of the 4 evaluations from step 70 to 100), but train_loss fell 0.0%",
        ),
        (U_SHAPED, FALLING_TRAIN, True, "Overfitting: full_valid_loss rose 38.9%"),
    ],
    ids=["monotone-falling", "plateau-within-threshold", "train-flat", "u-shaped"],
)
def test_overfitting_verdicts(
    validation: dict[int, float],
    train: list[float],
    detected: bool,
    sentence_start: str,
) -> None:
    signal, _ = overfitting_signal(table(STEPS, train_loss=train, full_valid_loss=every(STEPS, validation)))
    assert signal is not None
    assert signal.detected is detected
    assert signal.sentence.startswith(sentence_start), signal.sentence


def test_a_single_low_outlier_in_per_batch_validation_is_not_the_best_level() -> None:
    """valid_loss is noisy: a one-batch dip to 0.2 must not make a flat 0.5 look like a 150% rise."""
    steps = range(1, 121)
    noisy = dict(
        zip(
            range(10, 121, 10),
            [1.0, 0.8, 0.6, 0.5, 0.5, 0.2, 0.5, 0.5, 0.5, 0.51, 0.5, 0.5],
            strict=True,
        )
    )
    job = table(
        steps,
        train_loss=[2.0 - 0.01 * step for step in steps],
        valid_loss=every(steps, noisy),
    )
    signal, _ = overfitting_signal(job)
    assert signal is not None and not signal.detected
    assert (
        signal.best_validation_step,
        signal.best_validation_value,
        signal.late_validation_value,
    ) == (40, 0.5, 0.5)
    assert "no worse than its best level, 0.5 (median of the 4 evaluations from step 30 to 60)" in signal.sentence
    best = best_validation(job, [120])
    assert best is not None and (best.step, best.value) == (60, 0.2)
    assert best.sentence.endswith(
        "valid_loss is measured on a single validation batch, so this minimum may be partly noise."
    )


def test_noisy_u_shaped_per_batch_validation_is_overfitting() -> None:
    steps = range(1, 121)
    base = [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]
    noisy = {10 * (i + 1): value + (0.02 if i % 2 else -0.02) for i, value in enumerate(base)}
    signal, _ = overfitting_signal(
        table(
            steps,
            train_loss=[2.0 - 0.01 * s for s in steps],
            valid_loss=every(steps, noisy),
        )
    )
    assert signal is not None and signal.detected
    assert signal.validation_metric == "valid_loss"
    assert (signal.window_start_step, signal.best_validation_value) == (
        50,
        pytest.approx(0.445),
    )


def test_a_rise_within_the_noise_of_per_batch_validation_does_not_count() -> None:
    """Alternating +-30% batches: the late median is 10% above the best, but that is within the noise."""
    steps = range(1, 121)
    values = [1.3, 0.7] * 4 + [1.4, 0.8] * 2
    job = table(
        steps,
        train_loss=[2.0 - 0.01 * s for s in steps],
        valid_loss=every(steps, dict(zip(range(10, 121, 10), values, strict=True))),
    )
    signal, _ = overfitting_signal(job)
    assert signal is not None and not signal.detected
    assert signal.validation_change == pytest.approx(0.1)
    # noise: median relative change 0.6 between batches -> sigma 0.629; 2 standard errors of a median of 4
    assert signal.threshold == pytest.approx(2 * 1.2533 * 1.4826 * 0.6 / math.sqrt(2) / 2, rel=1e-3)
    assert "10.0% worse than its best level, 1 (median of the 4 evaluations from step 10 to 40)" in signal.sentence


@pytest.mark.parametrize(
    ("steps_per_epoch", "n_epochs", "tau", "noise"),
    [
        (120, 3, 38, 0.05),
        (200, 3, 40, 0.10),
        (1000, 4, 200, 0.15),
        (2000, 5, 400, 0.05),
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_noisy_curves_that_never_overfit_are_not_flagged(
    steps_per_epoch: int, n_epochs: int, tau: float, noise: float, seed: int
) -> None:
    """Validation loss falls to a floor and stays there; only per-batch noise could suggest a rise."""
    curve = LossCurve(
        2.4,
        0.38,
        tau,
        0.15,
        valid_start=2.3,
        valid_floor=0.31,
        valid_tau=tau,
        noise=noise,
    )
    rows = loss_rows(
        curve,
        steps_per_epoch=steps_per_epoch,
        n_epochs=n_epochs,
        validation=True,
        seed=f"s{seed}",
    )
    signal, _ = overfitting_signal(
        table(
            [row["step"] for row in rows],
            train_loss=[row["train_loss"] for row in rows],
            valid_loss=[row.get("valid_loss") for row in rows],
        )
    )
    assert signal is not None
    assert not signal.detected, signal.sentence


def test_reward_falling_while_train_reward_rises_is_overfitting() -> None:
    steps = range(1, 61)
    rewards = [0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.78, 0.74, 0.7, 0.66, 0.62, 0.6]
    job = table(
        steps,
        train_mean_reward=[0.3 + 0.01 * s for s in steps],
        full_valid_mean_reward=every(steps, dict(zip(range(5, 61, 5), rewards, strict=True))),
    )
    signal, _ = overfitting_signal(job)
    assert signal is not None and signal.detected
    assert (signal.validation_metric, signal.train_metric) == (
        "full_valid_mean_reward",
        "train_mean_reward",
    )
    assert (signal.window_start_step, signal.window_end_step) == (30, 60)
    assert signal.validation_change == pytest.approx(0.64 - 0.8)  # negative: the reward fell
    assert signal.train_change == pytest.approx(0.16)  # positive: the train reward rose
    assert signal.sentence.startswith("Overfitting: full_valid_mean_reward fell 20.0% from its best (0.8 at step 30)")
    assert "while train_mean_reward rose" in signal.sentence


@pytest.mark.parametrize(
    ("columns", "why"),
    [
        (
            {"train_loss": FALLING_TRAIN},
            "Overfitting cannot be judged without validation metrics.",
        ),
        (
            {
                "train_loss": FALLING_TRAIN,
                "full_valid_loss": every(STEPS, {50: 0.5, 100: 0.6}),
            },
            "Overfitting cannot be judged from so few evaluated steps (full_valid_loss has 2; at least 3 for "
            "full_valid_loss).",
        ),
        (
            {
                "train_loss": FALLING_TRAIN,
                "full_valid_loss": every(STEPS, {50: 0.5, 100: 0.6}),
                "valid_loss": every(STEPS, {20: 0.7, 40: 0.6, 60: 0.5, 80: 0.6, 100: 0.7}),
            },
            "Overfitting cannot be judged from so few evaluated steps (full_valid_loss has 2, valid_loss has 5; at "
            "least 3 for full_valid_loss or 6 for valid_loss).",
        ),
        (
            {"full_valid_loss": every(STEPS, U_SHAPED)},
            "Overfitting cannot be judged: train_loss has no values between steps 50 and 100, so its trend is unknown.",
        ),
        (
            {
                "train_loss": every(STEPS, {10: 1.0, 100: 0.5}),
                "full_valid_loss": every(STEPS, U_SHAPED),
            },
            "Overfitting cannot be judged: train_loss has 1 value(s) between steps 50 and 100, so its trend is "
            "unknown.",
        ),
    ],
    ids=["no-validation", "too-few-full", "too-few-either", "no-train", "sparse-train"],
)
def test_overfitting_cannot_be_judged(columns: dict[str, Column], why: str) -> None:
    assert overfitting_signal(table(STEPS, **columns)) == (None, why)


def test_sparse_full_validation_falls_back_to_per_batch_validation() -> None:
    batch = {step: value + 0.1 for step, value in U_SHAPED.items()}
    job = table(
        STEPS,
        train_loss=FALLING_TRAIN,
        full_valid_loss=every(STEPS, {50: 0.5, 100: 0.6}),
        valid_loss=every(STEPS, batch),
    )
    signal, _ = overfitting_signal(job)
    assert signal is not None and signal.validation_metric == "valid_loss"
    assert validation_metric(job) == "full_valid_loss"  # the best step still speaks of the whole validation set


BRIEF_STEPS = [1000, 1430, 1500, 2000]


BRIEF_LOSS = [0.5, 0.41234, 0.42, 0.45]


@pytest.mark.parametrize(
    ("retained", "is_retained", "nearest", "sentence"),
    [
        (
            [1500, 2000],
            False,
            1500,
            "The lowest full_valid_loss (0.41234) was at step 1430, which was not kept; the closest kept checkpoint is "
            "step 1500 (full_valid_loss 0.42 there).",
        ),
        (
            [1800, 1200],
            False,
            1200,  # 230 away vs 370 away
            "The lowest full_valid_loss (0.41234) was at step 1430, which was not kept; the closest kept checkpoint is "
            "step 1200.",
        ),
        (
            [1330, 1530],
            False,
            1530,  # equally near: the later one
            "The lowest full_valid_loss (0.41234) was at step 1430, which was not kept; the closest kept checkpoint is "
            "step 1530.",
        ),
        (
            [1000, 1430, 1500],
            True,
            None,
            "The lowest full_valid_loss (0.41234) was at step 1430, where the job kept a checkpoint.",
        ),
        (
            [],
            False,
            None,
            "The lowest full_valid_loss (0.41234) was at step 1430, but the job kept no checkpoints.",
        ),
    ],
    ids=["nearest-later", "nearest-earlier", "tie-later", "retained", "none-kept"],
)
def test_best_validation_step(retained: list[int], is_retained: bool, nearest: int | None, sentence: str) -> None:
    best = best_validation(
        table(BRIEF_STEPS, full_valid_loss=BRIEF_LOSS, valid_loss=[0.1, 0.5, 0.5, 0.5]),
        retained,
    )
    assert best is not None
    assert (best.metric, best.goal, best.step, best.value, best.points) == (
        "full_valid_loss",
        "min",
        1430,
        0.41234,
        4,
    )
    assert (best.retained, best.nearest_retained_step) == (is_retained, nearest)
    assert best.sentence == sentence


def test_best_validation_reward_is_the_highest_and_ties_go_to_the_earliest_step() -> None:
    job = table(
        [5, 10, 15, 20],
        full_valid_mean_reward=[0.5, 0.8, 0.8, 0.7],
        valid_loss=[None] * 4,
    )
    best = best_validation(job, [15, 20])
    assert best is not None
    assert (best.metric, best.goal, best.step, best.value) == (
        "full_valid_mean_reward",
        "max",
        10,
        0.8,
    )
    assert (best.nearest_retained_step, best.nearest_retained_value) == (15, 0.8)
    assert best.sentence.startswith("The highest full_valid_mean_reward (0.8) was at step 10, which was not kept")


def test_no_validation_metric_means_no_best_validation() -> None:
    assert best_validation(table([1, 2], train_loss=[1.0, 0.5], valid_loss=[None, None]), [2]) is None


def test_gap_uses_the_median_train_value_around_the_last_step_with_both() -> None:
    steps = range(1, 22)
    train: list[float | None] = [
        *[1.0] * 19,
        0.2,
        None,
    ]  # a one-batch dip at step 20; step 21 has no train value
    job = table(
        steps,
        train_loss=train,
        full_valid_loss=every(steps, {10: 1.3, 20: 1.5, 21: 1.6}),
    )
    gap = train_validation_gap(job)
    assert gap is not None
    assert (gap.step, gap.validation, gap.train, gap.train_raw, gap.train_window) == (
        20,
        1.5,
        1.0,
        0.2,
        (15, 20),
    )
    assert gap.gap == pytest.approx(0.5)
    assert gap.sentence == (
        "At step 20, full_valid_loss was 1.5 and train_loss 1 (median of steps 15-20): "
        "validation is 0.5 (50.0%) higher than training."
    )


def test_no_gap_without_a_step_that_has_both() -> None:
    assert train_validation_gap(table([1, 2], train_loss=[1.0, None], valid_loss=[None, 0.9])) is None
    assert train_validation_gap(table([1, 2], train_loss=[1.0, 0.8])) is None


@pytest.mark.parametrize(
    ("name", "goal"),
    [
        ("train_loss", Goal.MIN),
        ("valid_mean_token_accuracy", Goal.MAX),
        ("full_valid_mean_reward", Goal.MAX),
        ("pg_loss_sum", Goal.MIN),
        ("mean_unresponsive_rewards", Goal.MAX),
        ("dpo_accuracy", Goal.MAX),
        ("errors/graders/x/train_sample_parse_error_count", Goal.MIN),
        ("completion_tokens_mean", None),
        ("reward_loss", None),
        ("glossary", None),
    ],
)
def test_metric_goal(name: str, goal: Goal | None) -> None:
    assert metric_goal(name) is goal


def test_summaries_list_known_metrics_first_and_skip_empty_columns() -> None:
    job = table(
        [1, 2, 3],
        grad_norm=[3.0, 9.0, 1.0],
        train_loss=[1.0, 0.4, 0.6],
        pg_loss_sum=[None, 0.2, 0.1],
        full_valid_loss=[None, None, 0.7],
        valid_loss=[None, None, None],
    )
    assert summaries(job) == [
        MetricSummary("full_valid_loss", "min", 1, 3, 0.7, 3, 0.7, 3, 0.7),
        MetricSummary("train_loss", "min", 3, 1, 1.0, 3, 0.6, 2, 0.4),
        MetricSummary("grad_norm", None, 3, 1, 3.0, 3, 1.0, None, None),
        MetricSummary("pg_loss_sum", "min", 2, 2, 0.2, 3, 0.1, 3, 0.1),
    ]


def test_analyse_puts_overfitting_first_then_the_best_step() -> None:
    analysis = analyse(u_shaped_job(), retained_steps=[60, 80, 100])
    assert (analysis.steps, analysis.first_step, analysis.last_step) == (100, 1, 100)
    assert [m.name for m in analysis.metrics] == ["full_valid_loss", "train_loss"]
    assert analysis.overfitting is not None and analysis.best_validation is not None and analysis.gap is not None
    assert analysis.plateau is not None and analysis.plateau.start_step == 50  # the minimum: where to stop
    assert analysis.findings[:4] == [
        analysis.overfitting.sentence,
        analysis.best_validation.sentence,
        analysis.plateau.sentence,
        analysis.gap.sentence,
    ]
    assert analysis.best_validation.sentence == (
        "The lowest full_valid_loss (0.45) was at step 50, which was not "
        "kept; the closest kept checkpoint is step 60 (full_valid_loss 0.5 "
        "there)."
    )
    assert analysis.findings[4] == "train_loss went from 1.985 at step 1 to 0.5 at step 100 (best 0.5 at step 100)."


def test_analyse_without_overfitting_lists_the_best_step_first() -> None:
    analysis = analyse(
        table(STEPS, train_loss=FALLING_TRAIN, full_valid_loss=every(STEPS, FALLING)),
        [100],
    )
    assert analysis.overfitting is not None and analysis.best_validation is not None
    assert analysis.findings[:2] == [
        analysis.best_validation.sentence,
        analysis.overfitting.sentence,
    ]
    assert analysis.best_validation.retained


def test_analyse_without_validation() -> None:
    job = ResultTable(
        steps=(1, 2, 3),
        columns={"train_loss": (1.0, 0.8, 0.7), "valid_loss": (None, None, None)},
        renamed={},
        encoding="csv",
        skipped_rows=2,
        duplicate_rows=1,
        dropped_columns=("note",),
    )
    analysis = analyse(job, [3])
    assert (analysis.best_validation, analysis.overfitting, analysis.gap) == (
        None,
        None,
        None,
    )
    assert analysis.findings == [
        "The result file has no validation metrics (the job probably had no validation file), so the best step and "
        "overfitting cannot be judged; train metrics alone cannot reveal overfitting.",
        "train_loss went from 1 at step 1 to 0.7 at step 3 (best 0.7 at step 3).",
        "2 row(s) without a valid step number were skipped.",
        "1 row(s) repeated an earlier step; the last row for each step was used.",
        "These columns have no values: valid_loss.",
        "Columns ignored (not numeric or repeated): note.",
    ]


def test_analyse_says_why_overfitting_cannot_be_judged() -> None:
    analysis = analyse(
        table(
            STEPS,
            train_loss=FALLING_TRAIN,
            full_valid_loss=every(STEPS, {50: 0.5, 100: 0.6}),
        ),
        [100],
    )
    assert analysis.overfitting is None
    assert analysis.findings[1].startswith("Overfitting cannot be judged from so few evaluated steps")


def test_analyse_header_only() -> None:
    analysis = analyse(table([], train_loss=[]), [])
    assert (
        analysis.steps,
        analysis.first_step,
        analysis.metrics,
        analysis.best_validation,
    ) == (0, None, [], None)
    assert analysis.findings == ["The result file has a header but no rows yet, so there is no curve to analyse."]


@pytest.mark.parametrize(
    ("curve", "detected"),
    [
        # the demo's overfitting support bot, and the learning-rate sweep's good run
        (
            LossCurve(
                2.4,
                0.42,
                35,
                0.25,
                valid_start=2.2,
                valid_floor=0.33,
                valid_tau=40,
                overfit_from=200,
                overfit_rate=2.7e-6,
            ),
            True,
        ),
        (
            LossCurve(2.4, 0.38, 35, 0.15, valid_start=2.3, valid_floor=0.31, valid_tau=38),
            False,
        ),
    ],
    ids=["overfits", "does-not"],
)
def test_demo_style_curves_through_the_parser(curve: LossCurve, detected: bool) -> None:
    rows = loss_rows(curve, steps_per_epoch=120, n_epochs=3, validation=True, seed="test rows")
    analysis = analyse(parse_result_file(result_csv(rows, SFT_COLUMNS)), [120, 240, 360])
    assert analysis.overfitting is not None
    assert analysis.overfitting.validation_metric == "valid_loss"
    assert analysis.overfitting.detected is detected
