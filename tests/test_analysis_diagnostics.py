"""Unit and property tests of analysis.diagnostics: spikes (a Hampel filter), the plateau and coverage."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from openai_checkpoints_mcp.analysis.diagnostics import (
    MAX_LISTED_SPIKES,
    MIN_SPIKE_POINTS,
    PLATEAU_MIN_POINTS,
    centred_median,
    coverage,
    curve_noise,
    find_plateau,
    find_spikes,
)
from openai_checkpoints_mcp.analysis.metrics import Goal
from openai_checkpoints_mcp.analysis.training import analyse

from .helpers import table

PROPERTY = settings(max_examples=60, deadline=None)

decrements = st.lists(st.floats(min_value=1.0, max_value=2.0), min_size=MIN_SPIKE_POINTS, max_size=120)


def falling(steps: list[float], top: float = 1000.0) -> list[tuple[int, float]]:
    """A strictly falling curve from `top`, dropping by each of `steps` in turn."""
    values, value = [], top
    for drop in steps:
        value -= drop
        values.append(value)
    return list(enumerate(values, start=1))


def noisy_loss(n: int, seed: int, noise: float = 0.05) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    return [(s, (0.4 + 2.0 * math.exp(-s / 40)) * (1 + noise * rng.gauss(0, 1))) for s in range(1, n + 1)]


# --- spikes ---------------------------------------------------------------------------------------------------------


@PROPERTY
@given(decrements, st.sampled_from([Goal.MIN, Goal.MAX, None]))
def test_a_monotone_curve_has_no_spikes(drops, goal):
    report = find_spikes("train_loss", falling(drops), goal)
    assert report is not None and report.count == 0 and not report.unstable and report.steps == []


@PROPERTY
@given(decrements, st.data())
def test_one_huge_outlier_makes_exactly_one_spike_at_its_step(drops, data):
    points = falling(drops)
    index = data.draw(st.integers(min_value=3, max_value=len(points) - 4))  # judged: 3 neighbours each side
    step, value = points[index]
    points[index] = (step, value + 10_000.0)
    report = find_spikes("train_loss", points, Goal.MIN)
    assert report is not None and report.count == 1 and report.steps == [step]


def test_an_outlier_in_the_better_direction_is_no_spike_of_a_loss_but_is_one_of_a_reward():
    points = falling([1.0] * 40)
    points[20] = (points[20][0], points[20][1] - 500)
    assert find_spikes("train_loss", points, Goal.MIN).count == 0  # type: ignore[union-attr]
    assert find_spikes("train_mean_reward", points, Goal.MAX).count == 1  # type: ignore[union-attr]
    assert find_spikes("other", points, None).count == 1  # type: ignore[union-attr]


def test_natural_noise_is_no_spike_and_repeated_spikes_are_instability():
    for seed in range(20):
        report = find_spikes("train_loss", noisy_loss(360, seed), Goal.MIN)
        assert report is not None and report.count == 0, seed
        assert 0.03 < report.noise < 0.07  # about the 5% it was made with
    points = noisy_loss(360, 1)
    for step in (50, 120, 121, 250):
        points[step - 1] = (step, points[step - 1][1] * 2.5)
    report = find_spikes("train_loss", points, Goal.MIN)
    assert report is not None and report.steps == [50, 120, 121, 250] and report.unstable
    assert (
        report.score == 4 / report.judged and "unstable" in report.sentence and "50, 120, 121, 250" in report.sentence
    )


def test_spike_steps_are_capped_at_the_largest_and_counted_in_full():
    points = falling([1.0] * 200)
    spiked = list(range(10, 190, 10))
    for k, i in enumerate(spiked):
        points[i] = (points[i][0], points[i][1] + 100 + k)
    report = find_spikes("train_loss", points, Goal.MIN)
    assert report is not None and report.count == len(spiked)
    assert len(report.steps) == MAX_LISTED_SPIKES
    assert report.steps == sorted(points[i][0] for i in spiked[-MAX_LISTED_SPIKES:])  # the largest, by step
    assert f"and {len(spiked) - MAX_LISTED_SPIKES} more" in report.sentence


def test_a_flat_stretch_does_not_make_a_hair_a_spike():
    points = [(s, 1.0) for s in range(1, 40)]
    points[20] = (21, 1.001)
    assert find_spikes("train_loss", points, Goal.MIN).count == 0  # type: ignore[union-attr]
    points[20] = (21, 1.5)
    assert find_spikes("train_loss", points, Goal.MIN).count == 1  # type: ignore[union-attr]


# --- plateau --------------------------------------------------------------------------------------------------------


@PROPERTY
@given(
    st.integers(min_value=4, max_value=60),
    st.integers(min_value=4, max_value=60),
    st.floats(min_value=0.1, max_value=100.0),
    st.floats(min_value=0.02, max_value=0.2),
    st.booleans(),
)
def test_a_constant_tail_is_a_plateau_starting_where_it_became_constant(head, tail, level, slope, exact):
    """A straight fall (each step at least 2% of the level, so every one is meaningful) then a constant."""
    values = [level * (1 + slope * (head - i)) for i in range(head)] + [level] * tail
    points = list(enumerate(values, start=1))
    plateau = find_plateau("full_valid_loss" if exact else "valid_loss", points, Goal.MIN, exact=exact)
    assert plateau is not None
    assert plateau.start_step == head + 1
    assert plateau.detected == ((len(values) - (head + 1)) / (len(values) - 1) >= 0.2)
    mirrored = find_plateau("reward", [(s, -v) for s, v in points], Goal.MAX, exact=exact)
    assert mirrored is not None and mirrored.start_step == head + 1


@PROPERTY
@given(decrements)
def test_a_curve_falling_by_more_than_1_percent_a_step_has_no_plateau(drops):
    points = falling([d * 10 for d in drops], top=10 * sum(drops) * 1.5)  # every drop over 1% of the level
    plateau = find_plateau("train_loss", points, Goal.MIN)
    assert plateau is not None and not plateau.detected and "No plateau" in plateau.sentence


def test_noise_sets_what_counts_as_meaningful():
    rng = random.Random(7)
    flat = [(s * 10, 0.35 * (1 + 0.08 * rng.gauss(0, 1))) for s in range(1, 37)]
    plateau = find_plateau("valid_loss", flat, Goal.MIN, run=(1, 360))
    assert plateau is not None and plateau.detected and plateau.noise_bound
    assert plateau.threshold > 0.02  # well above the 1% floor: the curve's own noise
    assert plateau.start_step <= 60 and "a rerun could stop around step" in plateau.sentence
    assert abs(curve_noise([v for _, v in flat]) / 0.35 - 0.08) < 0.04


def test_an_overfitting_curve_plateaus_at_its_minimum():
    points = list(zip(range(10, 101, 10), [1.0, 0.8, 0.6, 0.5, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7], strict=True))
    plateau = find_plateau("full_valid_loss", points, Goal.MIN, exact=True, run=(1, 100))
    assert plateau is not None and plateau.detected and plateau.start_step == 50 and plateau.level == 0.45


def test_centred_median_is_the_identity_on_a_monotone_series():
    values = [float(v * v) for v in range(30)]
    assert centred_median(values, 7) == values


# --- never failing --------------------------------------------------------------------------------------------------

junk = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=500),
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6)),
    ),
    max_size=80,
)


@PROPERTY
@given(junk, st.sampled_from([Goal.MIN, Goal.MAX]))
def test_nothing_fails_on_none_nan_or_empty_input(points, goal):
    spikes = find_spikes("train_loss", points, goal)
    plateau = find_plateau("valid_loss", points, goal)
    finite = {s for s, v in points if v is not None and math.isfinite(v)}
    assert (spikes is None) == (len(finite) < MIN_SPIKE_POINTS)
    assert (plateau is None) == (len(finite) < PLATEAU_MIN_POINTS)
    if spikes is not None:
        assert 0 <= spikes.count <= spikes.judged and set(spikes.steps) <= finite
    if plateau is not None:
        assert plateau.start_step in finite and 0 <= plateau.share <= 1


def test_empty_and_tiny_tables_analyse():
    assert analyse(table([]), []).plateau is None
    small = analyse(table([1, 2], train_loss=[float("nan"), None]), [])
    assert small.spikes == () and small.plateau is None


# --- coverage and findings ------------------------------------------------------------------------------------------


def test_coverage_says_every_step_every_k_and_the_basis_of_the_best_step():
    steps = list(range(1, 101))
    t = table(
        steps,
        train_loss=[1.0 / s for s in steps],
        valid_loss=[0.5 if s % 10 == 0 or s == 95 else None for s in steps],
        full_valid_loss=[0.4 if s in (7, 50, 51) else None for s in steps],
    )
    c = coverage(t, ["train_loss", "valid_loss", "full_valid_loss"], "valid_loss")
    by_name = {m.name: m for m in c.metrics}
    assert (by_name["train_loss"].sampling, by_name["train_loss"].every, by_name["train_loss"].points) == (
        "every_step",
        1,
        100,
    )
    assert by_name["valid_loss"].sampling == "irregular" and by_name["valid_loss"].points == 11
    assert by_name["full_valid_loss"].sampling == "irregular" and c.best_basis == "validation_batch"
    regular = coverage(t, ["valid_loss"], "full_valid_loss")
    assert regular.best_basis == "full_validation_set"
    every_ten = table(steps, valid_loss=[0.5 if s % 10 == 0 else None for s in steps])
    (m,) = coverage(every_ten, ["valid_loss"], "valid_loss").metrics
    assert (m.sampling, m.every, m.points, m.steps) == ("every_k_steps", 10, 10, 100)
    assert "valid_loss at 10 of 100 steps (every 10 steps)" in coverage(every_ten, ["valid_loss"], None).sentence


def test_analyse_says_the_plateau_after_the_best_step_and_the_spikes_and_coverage_later():
    points = noisy_loss(300, 3, noise=0.03)
    train = [v for _, v in points]
    for step in (100, 180, 181):
        train[step - 1] *= 2.0
    steps = list(range(1, 301))
    valid = [0.5 + 2 * math.exp(-s / 30) if s % 10 == 0 else None for s in steps]
    analysis = analyse(table(steps, train_loss=train, valid_loss=valid), [100, 200, 300])
    assert analysis.plateau is not None and analysis.plateau.detected and analysis.plateau.metric == "valid_loss"
    (train_spikes, valid_spikes) = analysis.spikes
    assert train_spikes.steps == [100, 180, 181] and train_spikes.unstable and valid_spikes.count == 0
    assert analysis.best_validation is not None and analysis.coverage is not None
    findings = analysis.findings
    assert findings[0] == analysis.best_validation.sentence and findings[1] == analysis.plateau.sentence
    assert train_spikes.sentence in findings and valid_spikes.sentence not in findings
    assert findings[-1] == analysis.coverage.sentence
