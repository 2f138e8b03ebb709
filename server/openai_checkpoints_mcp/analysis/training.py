"""What a job's training curve says: per-metric summaries, the best validation step, overfitting, the gap.

Input is a parsed result file (`ResultTable`) and the steps of the checkpoints the job kept; output is
a `TrainingAnalysis` with numbers and sentences an assistant can quote. Validation columns are sparse
(a value only on evaluated steps) and, for the per-batch ``valid_*`` metrics, noisy, so the overfitting
verdict and the train value of the gap use medians over several points, never single values; the best
validation step is the single best value, with a warning when it comes from per-batch ``valid_loss``.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from .diagnostics import PLATEAU_MIN_POINTS, Coverage, Plateau, SpikeReport, coverage, find_plateau, find_spikes
from .metrics import CATALOGUE, Goal, default_goal
from .rationale import format_value
from .result_file import MAX_OTHER_COLUMNS, ResultTable

GoalName = Literal["min", "max"]

KNOWN_ORDER: tuple[str, ...] = tuple(CATALOGUE)
"""Known metrics, in the order summaries list them; other columns follow in file order."""

VALIDATION_ORDER: tuple[str, ...] = ("full_valid_loss", "valid_loss", "full_valid_mean_reward")
"""Which validation metric speaks for the job: the whole validation set, then one batch, then RFT reward."""

TRAIN_PARTNER: dict[str, str] = {
    "full_valid_loss": "train_loss",
    "valid_loss": "train_loss",
    "full_valid_mean_reward": "train_mean_reward",
}

MIN_VALIDATION_POINTS: dict[str, int] = {"full_valid_loss": 3, "valid_loss": 6, "full_valid_mean_reward": 3}
"""Fewest evaluated steps needed to judge overfitting from each validation metric."""

NOISY_VALIDATION: frozenset[str] = frozenset({"valid_loss"})
"""Validation metrics measured on one batch per evaluation, judged by medians over runs of points."""

VALIDATION_RISE = 0.05
"""Relative worsening of validation, from its best to the late median, that counts as a rise (5%)."""

NOISE_GUARD = 2.0
"""For noisy validation, the worsening must also exceed this many standard errors of the late median."""

TRAIN_FALL = 0.01
"""Relative improvement of the train metric over the window that counts as still learning (1%)."""

GAP_TRAIN_RADIUS = 5
"""The gap's train value is the median of up to this many train points either side of the step."""

_EPS = 1e-12


@dataclass(frozen=True)
class MetricSummary:
    """One column of the result file in brief: first, last and best value, with their steps."""

    name: str
    goal: GoalName | None
    """Which way is better: from the metric catalogue, else from the name (loss/error: min; accuracy/reward: max)."""
    count: int
    first_step: int
    first: float
    last_step: int
    last: float
    best_step: int | None
    """The earliest step with the best value; None when the goal is unknown."""
    best: float | None


@dataclass(frozen=True)
class BestValidation:
    """The step with the best validation value, and whether a checkpoint was kept there."""

    metric: str
    goal: GoalName
    step: int
    """The earliest step with the best value."""
    value: float
    retained: bool
    nearest_retained_step: int | None
    """When not retained: the kept checkpoint closest in steps (on a tie, the later one); None if none was kept."""
    sentence: str
    nearest_retained_value: float | None = None
    """The metric at `nearest_retained_step`, when the result file has it there."""
    points: int = 0
    """How many steps have a value of `metric`."""


@dataclass(frozen=True)
class OverfittingSignal:
    """Whether validation got worse late in training while the train metric kept improving.

    Changes are raw differences in the metric's own units: for a loss, a positive `validation_change`
    is a rise and a negative `train_change` a fall (overfitting); for a reward, overfitting shows as a
    negative `validation_change` and a positive `train_change`.
    """

    detected: bool
    validation_metric: str
    train_metric: str
    window_start_step: int
    window_end_step: int
    validation_change: float
    """Late validation level minus the best level."""
    train_change: float
    """Median of the window's second half minus median of its first half."""
    sentence: str
    best_validation_step: int = 0
    """The best single point; for ``valid_loss``, the middle step of the best run of points."""
    best_validation_value: float = 0.0
    """The best single value; for ``valid_loss``, the best median of a run of points."""
    late_validation_value: float = 0.0
    """Median of the late validation points (after the best one, for whole-set metrics)."""
    validation_points: int = 0
    threshold: float = VALIDATION_RISE
    """The relative worsening that would have counted (5%, or more for a noisy ``valid_loss``)."""


@dataclass(frozen=True)
class TrainValidationGap:
    """Validation minus train at the last step that has both.

    `train` is the median of the train values at up to `GAP_TRAIN_RADIUS` train points either side of
    `step` (a per-step train value is measured on one batch, so it is noisy); `train_raw` is the value
    at `step` itself. `validation` is the value at `step`.
    """

    train_metric: str
    validation_metric: str
    step: int
    train: float
    validation: float
    gap: float
    sentence: str
    train_raw: float = 0.0
    train_window: tuple[int, int] = (0, 0)
    """First and last step of the train values in the median."""


@dataclass(frozen=True)
class TrainingAnalysis:
    steps: int
    """Rows (distinct steps) in the result file."""
    first_step: int | None
    last_step: int | None
    metrics: list[MetricSummary]
    """One per column with at least one value, known metrics first."""
    best_validation: BestValidation | None
    """None when the file has no validation metric with a value."""
    overfitting: OverfittingSignal | None
    """None when it cannot be judged; `findings` says why."""
    gap: TrainValidationGap | None
    findings: list[str]
    """Short sentences an assistant can quote, most important first."""
    spikes: tuple[SpikeReport, ...] = ()
    """Per judged metric (the train metric, the validation metric with enough points): `diagnostics.find_spikes`."""
    plateau: Plateau | None = None
    """On the validation metric when it has enough points, else the train metric: `diagnostics.find_plateau`."""
    coverage: Coverage | None = None
    """How much of the curve those figures rest on."""


def metric_goal(name: str) -> Goal | None:
    """Which way is better for `name`: the catalogue's direction, else a guess from the words in the name
    (``loss``/``error`` lower, ``accuracy``/``reward`` higher), else None."""
    known = default_goal(name)
    if known is not None:
        return known
    words = set(re.split(r"[^a-z]+", name.lower()))
    goals = set()
    if words & {"loss", "losses", "error", "errors"}:
        goals.add(Goal.MIN)
    if words & {"accuracy", "reward", "rewards"}:
        goals.add(Goal.MAX)
    return goals.pop() if len(goals) == 1 else None


def validation_metric(table: ResultTable) -> str | None:
    """The validation metric that speaks for the job: the first of `VALIDATION_ORDER` with a value."""
    return next((name for name in VALIDATION_ORDER if table.values(name)), None)


def analyse(table: ResultTable, retained_steps: Sequence[int]) -> TrainingAnalysis:
    """Summaries, the best validation step, an overfitting signal and the train-validation gap.

    `retained_steps` are the steps of the checkpoints the job kept (OpenAI keeps the last 3 epochs of
    an SFT job, the 3 best-rewarded of an RFT job).
    """
    if not table.steps:
        return TrainingAnalysis(
            steps=0,
            first_step=None,
            last_step=None,
            metrics=[],
            best_validation=None,
            overfitting=None,
            gap=None,
            findings=[
                *_cut_notes(table),
                "The result file has a header but no rows yet, so there is no curve to analyse.",
            ],
        )
    metrics = summaries(table)
    best = best_validation(table, retained_steps)
    overfitting, overfitting_note = overfitting_signal(table)
    gap = train_validation_gap(table)
    spikes, plateau, covered = diagnose(table, best.metric if best else None)

    findings: list[str] = _cut_notes(table)
    if overfitting is not None and overfitting.detected:
        findings.append(overfitting.sentence)
    if best is None:
        findings.append(
            "The result file has no validation metrics (the job probably had no validation file), "
            "so the best step and overfitting cannot be judged; train metrics alone cannot reveal "
            "overfitting."
        )
    else:
        findings.append(best.sentence)
    if plateau is not None and plateau.detected:
        findings.append(plateau.sentence)
    if overfitting is not None and not overfitting.detected:
        findings.append(overfitting.sentence)
    elif overfitting is None and overfitting_note and best is not None:
        findings.append(overfitting_note)
    if gap is not None:
        findings.append(gap.sentence)
    findings.extend(report.sentence for report in spikes if report.count)
    if plateau is not None and not plateau.detected:
        findings.append(plateau.sentence)
    findings.extend(_progress(metrics))
    if covered.best_basis is not None or any(m.sampling != "every_step" for m in covered.metrics):
        findings.append(covered.sentence)
    findings.extend(_data_notes(table))
    return TrainingAnalysis(
        steps=len(table.steps),
        first_step=table.steps[0],
        last_step=table.steps[-1],
        metrics=metrics,
        best_validation=best,
        overfitting=overfitting,
        gap=gap,
        findings=findings,
        spikes=spikes,
        plateau=plateau,
        coverage=covered,
    )


def diagnose(table: ResultTable, best_metric: str | None) -> tuple[tuple[SpikeReport, ...], Plateau | None, Coverage]:
    """Spikes of the train and validation metric, a plateau, and the coverage of both (see `diagnostics`).

    The plateau is judged on the validation metric when it has `PLATEAU_MIN_POINTS` values (what a rerun should
    stop on), else on the train metric.
    """
    validation = validation_metric(table)
    train = TRAIN_PARTNER[validation] if validation else None
    if train is None or not table.values(train):
        train = next((name for name in ("train_loss", "train_mean_reward") if table.values(name)), None)
    names = [name for name in (train, validation) if name is not None]
    spikes = tuple(
        report for name in names if (report := find_spikes(name, table.values(name), metric_goal(name))) is not None
    )
    run = (table.steps[0], table.steps[-1]) if table.steps else None
    chosen = validation if validation and len(table.values(validation)) >= PLATEAU_MIN_POINTS else train
    goal = metric_goal(chosen) if chosen else None
    plateau = (
        find_plateau(chosen, table.values(chosen), goal, run=run, exact=chosen.startswith("full_valid"))
        if chosen and goal
        else None
    )
    return spikes, plateau, coverage(table, names, best_metric)


# --- summaries -----------------------------------------------------------------------------------


def summaries(table: ResultTable) -> list[MetricSummary]:
    """A `MetricSummary` per column with at least one value: known metrics first, then file order."""
    names = [name for name in KNOWN_ORDER if name in table.columns]
    names += [name for name in table.columns if name not in KNOWN_ORDER]
    result = []
    for name in names:
        points = table.values(name)
        if not points:
            continue
        goal = metric_goal(name)
        best_step, best = _best(points, goal) if goal is not None else (None, None)
        result.append(
            MetricSummary(
                name=name,
                goal=_literal(goal),
                count=len(points),
                first_step=points[0][0],
                first=points[0][1],
                last_step=points[-1][0],
                last=points[-1][1],
                best_step=best_step,
                best=best,
            )
        )
    return result


# --- the best validation step ----------------------------------------------------------------------


def best_validation(table: ResultTable, retained_steps: Sequence[int]) -> BestValidation | None:
    """The best value of the job's validation metric (`validation_metric`) and the kept checkpoint nearest it.

    Ties go to the earliest step; when two kept checkpoints are equally near, the later one is named
    (it has seen more data, and a flat minimum gives no reason to prefer the earlier).
    """
    metric = validation_metric(table)
    if metric is None:
        return None
    goal = metric_goal(metric)
    assert goal is not None
    points = table.values(metric)
    step, value = _best(points, goal)
    kept = sorted(set(retained_steps))
    retained = step in kept
    nearest = None if retained or not kept else min(kept, key=lambda s: (abs(s - step), -s))
    nearest_value = dict(points).get(nearest) if nearest is not None else None

    word = "lowest" if goal is Goal.MIN else "highest"
    sentence = f"The {word} {metric} ({format_value(value)}) was at step {step}"
    if retained:
        sentence += ", where the job kept a checkpoint."
    elif nearest is None:
        sentence += ", but the job kept no checkpoints."
    else:
        at = f" ({metric} {format_value(nearest_value)} there)" if nearest_value is not None else ""
        sentence += f", which was not kept; the closest kept checkpoint is step {nearest}{at}."
    if metric == "valid_loss":
        sentence += " valid_loss is measured on a single validation batch, so this minimum may be partly noise."
    return BestValidation(
        metric=metric,
        goal=_literal_goal(goal),
        step=step,
        value=value,
        retained=retained,
        nearest_retained_step=nearest,
        sentence=sentence,
        nearest_retained_value=nearest_value,
        points=len(points),
    )


# --- overfitting -----------------------------------------------------------------------------------


def overfitting_signal(table: ResultTable) -> tuple[OverfittingSignal | None, str]:
    """Did validation get worse late in training while the train metric kept improving?

    The rule, for a loss (a reward is the mirror image: lower is worse):

    1. Validation metric: ``full_valid_loss`` if it has at least 3 evaluated steps, else per-batch
       ``valid_loss`` with at least 6; without a validation loss, ``full_valid_mean_reward`` (at least 3)
       against ``train_mean_reward``.
    2. Late level: the median of the last third of the validation points (at least 2), the "late window".
    3. Best level. Whole-validation-set metrics (``full_valid_*``) are exact, so the best level is the
       best single point, and the late level uses only late points after it. Per-batch ``valid_loss`` is
       noisy, so the best level is the lowest median of any run of as many consecutive points as the
       late window (runs start every quarter window), comparing like with like; its step is the run's middle.
    4. Validation has worsened when late is worse than best by at least 5% of best; for ``valid_loss``
       also by at least twice the standard error of a median of the late window's size, the per-point noise
       being estimated from the median relative change between consecutive points. (On simulated noisy
       curves that never overfit, this keeps the verdict "no" where comparing single points would not.)
    5. Window: from the best step (or the start of the late window, if that is earlier) to the last
       validation step. Train trend: the median of the train values in the window's second half minus
       that of its first half; training is still improving when it improved by at least 1% of the first half.
    6. Overfitting is detected when validation has worsened and training is still improving.

    Returns (signal, why): the signal is None when it cannot be judged, and `why` then says why.
    """
    present = [(name, table.values(name)) for name in VALIDATION_ORDER]
    present = [(name, points) for name, points in present if points]
    if not present:
        return None, "Overfitting cannot be judged without validation metrics."
    usable = [(name, points) for name, points in present if len(points) >= MIN_VALIDATION_POINTS[name]]
    if usable and usable[0][0] == "full_valid_mean_reward" and any(n != usable[0][0] for n, _ in present):
        usable = []  # a validation loss exists but is too sparse: do not silently switch to the reward
    if not usable:
        counts = ", ".join(f"{name} has {len(points)}" for name, points in present)
        needs = " or ".join(f"{MIN_VALIDATION_POINTS[name]} for {name}" for name, _ in present)
        return None, f"Overfitting cannot be judged from so few evaluated steps ({counts}; at least {needs})."
    metric, points = usable[0]
    train_metric = TRAIN_PARTNER[metric]
    goal = metric_goal(metric)
    assert goal is not None
    level = _noisy_levels(points, goal) if metric in NOISY_VALIDATION else _exact_levels(points, goal)
    sign = 1.0 if goal is Goal.MIN else -1.0
    validation_change = level.late - level.best
    validation_worse = sign * validation_change / max(abs(level.best), _EPS)

    window_start = min(level.best_step, level.late_steps[0])
    window_end = points[-1][0]
    train = [value for step, value in table.values(train_metric) if window_start <= step <= window_end]
    if len(train) < 2:
        have = "no values" if not table.values(train_metric) else f"{len(train)} value(s)"
        return None, (
            f"Overfitting cannot be judged: {train_metric} has {have} between steps {window_start} "
            f"and {window_end}, so its trend is unknown."
        )
    half = len(train) // 2
    train_first, train_second = statistics.median(train[:half]), statistics.median(train[len(train) - half :])
    train_change = train_second - train_first
    train_better = -sign * train_change / max(abs(train_first), _EPS)

    worsened = level.late_count > 0 and validation_worse >= level.threshold
    improving = train_better >= TRAIN_FALL
    detected = worsened and improving
    worse, better = ("rose", "fell") if goal is Goal.MIN else ("fell", "rose")
    train_text = (
        f"{train_metric} {better if train_better >= 0 else worse} {_pct(abs(train_better))} "
        f"(median {format_value(train_first)} in the first half of steps {window_start}-{window_end}, "
        f"{format_value(train_second)} in the second)"
    )
    move = f"{metric} {worse} {_pct(validation_worse)} from {level.best_text} to {level.late_text}"
    if detected:
        sentence = f"Overfitting: {move}, while {train_text}."
    elif level.late_count == 0:
        sentence = (
            f"No sign of overfitting: the {'lowest' if goal is Goal.MIN else 'highest'} {metric} "
            f"({format_value(level.best)}) is at the last evaluation, step {level.best_step}."
        )
    elif worsened:
        sentence = (
            f"No clear sign of overfitting: {move}, but {train_text}, so training had stopped improving; "
            f"this looks like noise or instability rather than overfitting."
        )
    else:
        change = f"{_pct(validation_worse)} worse than" if validation_worse >= 0.0005 else "no worse than"
        sentence = (
            f"No sign of overfitting: {metric} ended at {level.late_text}, {change} {level.best_text}; "
            f"{_pct(level.threshold)} worse would have counted; {train_text}."
        )
    signal = OverfittingSignal(
        detected=detected,
        validation_metric=metric,
        train_metric=train_metric,
        window_start_step=window_start,
        window_end_step=window_end,
        validation_change=validation_change,
        train_change=train_change,
        sentence=sentence,
        best_validation_step=level.best_step,
        best_validation_value=level.best,
        late_validation_value=level.late,
        validation_points=len(points),
        threshold=level.threshold,
    )
    return signal, ""


@dataclass(frozen=True)
class _Levels:
    """The best and the late validation level, and how to say them."""

    best: float
    best_step: int
    best_text: str
    late: float
    late_steps: tuple[int, int]
    late_count: int
    """Points the late level is the median of; 0 when the best point is the last one."""
    late_text: str
    threshold: float


def _late_window(points: list[tuple[int, float]]) -> int:
    """Size of the late window: the last third of the points, at least 2."""
    return max(2, math.ceil(len(points) / 3))


def _exact_levels(points: list[tuple[int, float]], goal: Goal) -> _Levels:
    """Whole-validation-set points: the best single point; late = median of the late window after it."""
    best_step, best = _best(points, goal)
    best_index = next(i for i, (step, _) in enumerate(points) if step == best_step)
    start = len(points) - _late_window(points)
    late_points = [point for i, point in enumerate(points) if i >= start and i > best_index]
    late = statistics.median(value for _, value in late_points) if late_points else best
    late_steps = (late_points[0][0], late_points[-1][0]) if late_points else (points[start][0], points[-1][0])
    return _Levels(
        best=best,
        best_step=best_step,
        best_text=f"its best ({format_value(best)} at step {best_step})",
        late=late,
        late_steps=late_steps,
        late_count=len(late_points),
        late_text=_median_text(late, len(late_points), late_steps),
        threshold=VALIDATION_RISE,
    )


def _noisy_levels(points: list[tuple[int, float]], goal: Goal) -> _Levels:
    """Per-batch points: the best median of a run of late-window size; a threshold that grows with the noise."""
    sign = 1.0 if goal is Goal.MIN else -1.0
    values = [value for _, value in points]
    size = _late_window(points)
    last = len(points) - size
    starts = sorted({*range(0, last + 1, max(1, size // 4)), last})
    medians = [(statistics.median(values[start : start + size]), start) for start in starts]
    best, start = min(medians, key=lambda item: (sign * item[0], item[1]))
    late = medians[-1][0]
    changes = [abs(b - a) / max((abs(a) + abs(b)) / 2, _EPS) for a, b in pairwise(values)]
    noise = 1.4826 * statistics.median(changes) / math.sqrt(2)  # per-point relative noise (robust)
    threshold = max(VALIDATION_RISE, NOISE_GUARD * 1.2533 * noise / math.sqrt(size))
    run = (points[start][0], points[start + size - 1][0])
    late_steps = (points[last][0], points[-1][0])
    return _Levels(
        best=best,
        best_step=points[start + (size - 1) // 2][0],
        best_text=f"its best level, {_median_text(best, size, run)}",
        late=late,
        late_steps=late_steps,
        late_count=size,
        late_text=_median_text(late, size, late_steps),
        threshold=threshold,
    )


def _median_text(value: float, count: int, steps: tuple[int, int]) -> str:
    if count == 1:
        return f"{format_value(value)} at step {steps[1]}"
    return f"{format_value(value)} (median of the {count} evaluations from step {steps[0]} to {steps[1]})"


# --- the train-validation gap -----------------------------------------------------------------------


def train_validation_gap(table: ResultTable) -> TrainValidationGap | None:
    """Validation minus train at the last step where both have a value (train smoothed: see the class)."""
    metric = validation_metric(table)
    if metric is None:
        return None
    train_metric = TRAIN_PARTNER[metric]
    train_points = table.values(train_metric)
    train_at = {step: i for i, (step, _) in enumerate(train_points)}
    both = [(step, value) for step, value in table.values(metric) if step in train_at]
    if not both:
        return None
    step, validation = both[-1]
    i = train_at[step]
    around = train_points[max(0, i - GAP_TRAIN_RADIUS) : i + GAP_TRAIN_RADIUS + 1]
    train = statistics.median(value for _, value in around)
    gap = validation - train
    relative = f" ({_pct(abs(gap) / abs(train))})" if abs(train) > _EPS else ""
    direction = "higher" if gap >= 0 else "lower"
    window = (around[0][0], around[-1][0])
    smoothing = f"median of steps {window[0]}-{window[1]}" if len(around) > 1 else "a single step"
    sentence = (
        f"At step {step}, {metric} was {format_value(validation)} and {train_metric} {format_value(train)} "
        f"({smoothing}): validation is {format_value(abs(gap))}{relative} {direction} than training."
    )
    return TrainValidationGap(
        train_metric=train_metric,
        validation_metric=metric,
        step=step,
        train=train,
        validation=validation,
        gap=gap,
        sentence=sentence,
        train_raw=train_points[i][1],
        train_window=window,
    )


# --- helpers ----------------------------------------------------------------------------------------


def _progress(metrics: list[MetricSummary]) -> list[str]:
    """How the main train metric moved over the run."""
    for summary in metrics:
        if summary.name in ("train_loss", "train_mean_reward") and summary.count > 1:
            best = "" if summary.best is None else f" (best {format_value(summary.best)} at step {summary.best_step})"
            return [
                f"{summary.name} went from {format_value(summary.first)} at step {summary.first_step} to "
                f"{format_value(summary.last)} at step {summary.last_step}{best}."
            ]
    return []


def _cut_notes(table: ResultTable) -> list[str]:
    """What of the file was not read (its rows or columns beyond the parser's bounds): said first."""
    notes = []
    if table.unread_rows:
        last = f" (steps up to {table.steps[-1]})" if table.steps else ""
        read = len(table.steps) + table.skipped_rows + table.duplicate_rows
        notes.append(
            f"The result file is longer than this server reads: only its first {read:,} rows were read{last}; "
            f"about {table.unread_rows:,} more were not, so every figure here covers the start of the run only."
        )
    if table.unread_columns:
        notes.append(
            f"The result file has more columns than this server reads: {table.unread_columns:,} were not read (besides "
            f"step and the known metrics, it reads the first {MAX_OTHER_COLUMNS} columns only)."
        )
    return notes


def _data_notes(table: ResultTable) -> list[str]:
    notes = []
    if table.skipped_rows:
        notes.append(f"{table.skipped_rows} row(s) without a valid step number were skipped.")
    if table.duplicate_rows:
        notes.append(f"{table.duplicate_rows} row(s) repeated an earlier step; the last row for each step was used.")
    empty = [name for name, column in table.columns.items() if all(value is None for value in column)]
    if empty:
        notes.append(f"These columns have no values: {', '.join(empty)}.")
    if table.dropped_columns:
        notes.append(f"Columns ignored (not numeric or repeated): {', '.join(table.dropped_columns)}.")
    return notes


def _best(points: list[tuple[int, float]], goal: Goal) -> tuple[int, float]:
    """The earliest (step, value) with the best value."""
    sign = 1.0 if goal is Goal.MIN else -1.0
    return min(points, key=lambda point: (sign * point[1], point[0]))


def _literal_goal(goal: Goal) -> GoalName:
    return "min" if goal is Goal.MIN else "max"


def _literal(goal: Goal | None) -> GoalName | None:
    return None if goal is None else _literal_goal(goal)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"
