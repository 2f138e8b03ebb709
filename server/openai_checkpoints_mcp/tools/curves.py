"""training_metrics: read a job's result file (every step's metrics) and say what the whole curve shows.

The API keeps only a few checkpoints, but the result file has a row per step. This
reads it (through the cache: a result file never changes), parses it, analyses it
against the retained checkpoints and returns a downsampled curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal, overload

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from ..analysis.diagnostics import Coverage, Plateau, SpikeReport
from ..analysis.downsample import downsample_rows
from ..analysis.result_file import ResultFileError, ResultTable, parse_result_file
from ..analysis.training import (
    BestValidation,
    MetricSummary,
    OverfittingSignal,
    TrainingAnalysis,
    TrainValidationGap,
    analyse,
)
from ..api.errors import bad_response
from ..api.models import ACTIVE_STATUSES, Checkpoint, Job, by_step
from ..api.store import JobStore
from ..state import AppState
from .arguments import JobId, Refresh
from .common import Progress, ToolResult, finish, linked, off_loop, store_of, tool
from .resources import job_links


@overload
def _six(value: float) -> float: ...
@overload
def _six(value: float | None) -> float | None: ...
def _six(value: float | None) -> float | None:
    """Differences of floats carry binary noise (0.023550000000000015): keep 6 significant digits."""
    return None if value is None else float(f"{value:.6g}")


class MetricSummaryInfo(BaseModel):
    name: str
    goal: Literal["min", "max"] | None = Field(description="min: lower is better; max: higher is better.")
    count: int = Field(description="Steps with a value.")
    first_step: int
    first: float
    last_step: int
    last: float
    best_step: int | None = Field(description="Step of the minimum (goal min) or maximum (goal max).")
    best: float | None

    @classmethod
    def of(cls, summary: MetricSummary) -> MetricSummaryInfo:
        return cls(
            name=summary.name,
            goal=summary.goal,
            count=summary.count,
            first_step=summary.first_step,
            first=_six(summary.first),
            last_step=summary.last_step,
            last=_six(summary.last),
            best_step=summary.best_step,
            best=_six(summary.best),
        )


class BestValidationInfo(BaseModel):
    metric: str
    goal: Literal["min", "max"]
    step: int
    value: float
    retained: bool = Field(description="Whether the API kept a checkpoint at that step.")
    nearest_retained_step: int | None = Field(description="When not kept: the closest kept checkpoint's step.")

    @classmethod
    def of(cls, best: BestValidation) -> BestValidationInfo:
        return cls(
            metric=best.metric,
            goal=best.goal,
            step=best.step,
            value=_six(best.value),
            retained=best.retained,
            nearest_retained_step=best.nearest_retained_step,
        )


class OverfittingInfo(BaseModel):
    detected: bool
    validation_metric: str
    train_metric: str
    window_start_step: int = Field(description="First step of the late window the training trend was measured over.")
    window_end_step: int = Field(description="Last step of that window.")
    validation_change: float = Field(
        description="Late validation level minus its best level, in the metric's units (a loss rising: positive)."
    )
    train_change: float = Field(
        description="Median of the window's second half minus its first half, in the metric's units (a loss "
        "falling: negative). The findings give both as percentages."
    )

    @classmethod
    def of(cls, signal: OverfittingSignal) -> OverfittingInfo:
        return cls(
            detected=signal.detected,
            validation_metric=signal.validation_metric,
            train_metric=signal.train_metric,
            window_start_step=signal.window_start_step,
            window_end_step=signal.window_end_step,
            validation_change=_six(signal.validation_change),
            train_change=_six(signal.train_change),
        )


class GapInfo(BaseModel):
    train_metric: str
    validation_metric: str
    step: int
    train: float
    validation: float
    gap: float = Field(description="validation - train at that step.")

    @classmethod
    def of(cls, gap: TrainValidationGap) -> GapInfo:
        return cls(
            train_metric=gap.train_metric,
            validation_metric=gap.validation_metric,
            step=gap.step,
            train=_six(gap.train),
            validation=_six(gap.validation),
            gap=_six(gap.gap),
        )


class SpikesInfo(BaseModel):
    metric: str
    points: int = Field(description="Steps with a value of the metric.")
    judged: int = Field(description="Points judged (the first and last 3 have too few neighbours).")
    count: int = Field(
        description="Spikes: points more than 6 robust standard deviations (1.4826 x MAD) worse than "
        "the median of their 21 neighbouring points, and at least 6% off it."
    )
    steps: list[int] = Field(description="Steps of the largest spikes (at most 10, ascending); `count` has them all.")
    unstable: bool = Field(
        description="3 or more spikes: suggest a lower learning_rate_multiplier for a rerun and "
        "checking the examples around the spike steps."
    )
    score: float = Field(description="Share of judged points that are spikes (0 to 1).")
    noise: float = Field(description="Typical local spread relative to the level (0.05: about 5% step to step).")

    @classmethod
    def of(cls, report: SpikeReport) -> SpikesInfo:
        return cls(
            metric=report.metric,
            points=report.points,
            judged=report.judged,
            count=report.count,
            steps=report.steps,
            unstable=report.unstable,
            score=_six(report.score),
            noise=_six(report.noise),
        )


class PlateauInfo(BaseModel):
    metric: str = Field(description="The validation metric when it has at least 8 values, else the train metric.")
    detected: bool = Field(description="The last 20% or more of the run's steps brought no meaningful improvement.")
    start_step: int = Field(
        description="From this step on the smoothed curve never improved by more than "
        "`threshold`: where a rerun could stop (early stopping), or fewer epochs to aim for."
    )
    last_step: int
    threshold: float = Field(
        description="The improvement that counts as meaningful, relative to the level "
        "(0.05: 5%): twice the noise of the smoothed curve, at least 1%."
    )
    share: float = Field(description="Share of the run's steps after start_step (0 to 1).")
    level: float = Field(description="The smoothed metric at start_step.")
    best_after: float = Field(description="The best smoothed value after start_step.")

    @classmethod
    def of(cls, plateau: Plateau) -> PlateauInfo:
        return cls(
            metric=plateau.metric,
            detected=plateau.detected,
            start_step=plateau.start_step,
            last_step=plateau.last_step,
            threshold=_six(plateau.threshold),
            share=_six(plateau.share),
            level=_six(plateau.level),
            best_after=_six(plateau.best_after),
        )


class MetricCoverageInfo(BaseModel):
    name: str
    points: int = Field(description="Steps with a value.")
    steps: int = Field(description="Steps (rows) in the result file.")
    sampling: Literal["every_step", "every_k_steps", "irregular", "single"]
    every: int | None = Field(description="Steps between values when sampled regularly (1: every step).")


class CoverageInfo(BaseModel):
    metrics: list[MetricCoverageInfo] = Field(description="The train and validation metric the figures rest on.")
    best_basis: Literal["full_validation_set", "validation_batch"] | None = Field(
        description="What the best validation step rests on: the whole validation set (full_valid_*), or one "
        "validation batch per evaluation (valid_*: noisy; prefer best_checkpoint's full_valid_loss ranking)."
    )

    @classmethod
    def of(cls, coverage: Coverage) -> CoverageInfo:
        return cls(
            metrics=[
                MetricCoverageInfo(name=m.name, points=m.points, steps=m.steps, sampling=m.sampling, every=m.every)
                for m in coverage.metrics
            ],
            best_basis=coverage.best_basis,
        )


class Diagnostics(BaseModel):
    spikes: list[SpikesInfo] = Field(
        description="Per metric with at least 15 values (the train metric, the validation metric)."
    )
    plateau: PlateauInfo | None = Field(description="Null with too few values.")
    coverage: CoverageInfo | None

    @classmethod
    def of(cls, analysis: TrainingAnalysis) -> Diagnostics:
        return cls(
            spikes=[SpikesInfo.of(report) for report in analysis.spikes],
            plateau=PlateauInfo.of(analysis.plateau) if analysis.plateau else None,
            coverage=CoverageInfo.of(analysis.coverage) if analysis.coverage else None,
        )


class RetainedCheckpoint(BaseModel):
    step_number: int | None
    fine_tuned_model_checkpoint: str | None


class Curve(BaseModel):
    columns: list[str] = Field(description="'step' then the metric names, in the order of each row.")
    rows: list[list[int | float | None]] = Field(
        description="At most `points` rows, ascending step; null = no value at that step. Downsampled keeping the "
        "first and last step, the kept checkpoints' steps and the best validation step, then each metric's minimum "
        "and maximum as far as `points` allows, the rest by largest-triangle-three-buckets."
    )


class TrainingMetricsResult(ToolResult):
    job_id: str
    status: str | None
    available: bool = Field(description="False when the job has no result file yet (see reason).")
    reason: str | None = Field(default=None, description="Why there is no curve.")
    result_file: str | None = Field(description="The result file id read (result_files[0]).")
    encoding: Literal["csv", "base64", "json", "json+base64"] | None = Field(
        default=None,
        description="How the file body held the CSV: as is (csv), base64 of it, or either as a JSON string (json, "
        "json+base64).",
    )
    steps: int = Field(description="Steps (rows) in the result file.")
    first_step: int | None
    last_step: int | None
    metrics: list[MetricSummaryInfo] = Field(description="Per metric: first, last and best value with their steps.")
    best_validation: BestValidationInfo | None
    overfitting: OverfittingInfo | None = Field(description="Null when it cannot be judged (see findings).")
    gap: GapInfo | None = Field(description="Train-validation gap at the last step with both.")
    diagnostics: Diagnostics | None = Field(
        default=None,
        description="Loss spikes, a plateau (early-stopping advice) and how much of the curve the "
        "figures rest on; the findings say them in words.",
    )
    findings: list[str] = Field(description="Sentences to quote, most important first.")
    retained_checkpoints: list[RetainedCheckpoint] = Field(description="The checkpoints the API kept.")
    renamed_columns: dict[str, str] = Field(description="File column -> the checkpoint metric name used here.")
    curve: Curve | None
    upstream_requests: int = Field(description="API requests this call made (0 when everything came from the cache).")


def no_result_file(job: Job) -> str:
    """Why a job has no result file, and what to use meanwhile."""
    status = job.status or "unknown"
    if status in ACTIVE_STATUSES:
        return (
            f"The job is {status}; its result file is written when it finishes. Meanwhile list_events shows "
            "the per-step metrics events and list_checkpoints the checkpoints saved so far."
        )
    if status == "failed":
        return "The job failed and has no result file."
    if status == "cancelled":
        return "The job was cancelled and has no result file."
    return f"The job (status {status}) lists no result file."


def _curve(table: ResultTable, points: int, must_keep: list[int]) -> Curve:
    rows = downsample_rows(table, points, must_keep=must_keep) if table.steps else []
    names = [name for name, values in table.columns.items() if any(v is not None for v in values)]
    return Curve(
        columns=["step", *names],
        rows=[[table.steps[i], *(table.columns[name][i] for name in names)] for i in rows],
    )


@dataclass(frozen=True)
class LoadedCurve:
    """What a job's curve is made of: the job, its kept checkpoints, and its parsed result file (None when the job
    lists none yet)."""

    job: Job
    checkpoints: list[Checkpoint]
    """By step, ascending."""
    file_id: str | None
    table: ResultTable | None
    requests: int
    """API requests made to read it."""

    @property
    def retained_steps(self) -> list[int]:
        return [c.step for c in self.checkpoints if c.step is not None]

    def retained(self) -> list[RetainedCheckpoint]:
        return [
            RetainedCheckpoint(step_number=c.step, fine_tuned_model_checkpoint=c.fine_tuned_model_checkpoint)
            for c in self.checkpoints
        ]

    def analysis(self) -> TrainingAnalysis | None:
        """The curve analysed against the kept checkpoints (None without a result file)."""
        return None if self.table is None else analyse(self.table, self.retained_steps)


async def load_curve(
    store: JobStore, job_id: str, *, refresh: bool = False, progress: Progress | None = None
) -> LoadedCurve:
    """The job, its checkpoints (read concurrently) and its result file (through the cache), parsed in a worker
    thread (`off_loop`: a hostile file must not hold up the event loop), within the parser's bounds.

    Raises:
        CheckpointsError: the API's failures, and ``bad_response`` for a result file that does not parse.
    """
    with store.count_requests() as requests:
        job, collected = await store.job_and_checkpoints(job_id, refresh=refresh)
        checkpoints = by_step(collected.items)
        if not job.result_files:
            return LoadedCurve(job, checkpoints, None, None, requests[0])
        file_id = job.result_files[0]
        if progress is not None:
            await progress(1, 2, f"reading result file {file_id}")
        content = await store.result_file(job, file_id, refresh=refresh)
    try:
        table = await off_loop(partial(parse_result_file, content, checkpoint=anyio.from_thread.check_cancelled))
    except ResultFileError as exc:
        raise bad_response(f"the result file {file_id} of job {job_id}", str(exc)) from None
    return LoadedCurve(job, checkpoints, file_id, table, requests[0])


async def read_curve(
    store: JobStore, job_id: str, *, points: int, refresh: bool = False, progress: Progress | None = None
) -> TrainingMetricsResult:
    loaded = await load_curve(store, job_id, refresh=refresh, progress=progress)
    return await off_loop(partial(training_result, loaded, points=points))


def training_result(loaded: LoadedCurve, *, points: int) -> TrainingMetricsResult:
    """training_metrics' answer for a loaded curve."""
    job = loaded.job
    analysis = loaded.analysis()
    if loaded.table is None or loaded.file_id is None or analysis is None:
        reason = no_result_file(job)
        return TrainingMetricsResult(
            job_id=job.id,
            status=job.status,
            available=False,
            reason=reason,
            result_file=None,
            steps=0,
            first_step=None,
            last_step=None,
            metrics=[],
            best_validation=None,
            overfitting=None,
            gap=None,
            findings=[reason],
            retained_checkpoints=loaded.retained(),
            renamed_columns={},
            curve=None,
            upstream_requests=loaded.requests,
        )
    table = loaded.table
    best = analysis.best_validation
    must_keep = ([best.step] if best else []) + loaded.retained_steps
    return TrainingMetricsResult(
        job_id=job.id,
        status=job.status,
        available=True,
        result_file=loaded.file_id,
        encoding=table.encoding,
        steps=analysis.steps,
        first_step=analysis.first_step,
        last_step=analysis.last_step,
        metrics=[MetricSummaryInfo.of(m) for m in analysis.metrics],
        best_validation=BestValidationInfo.of(best) if best else None,
        overfitting=OverfittingInfo.of(analysis.overfitting) if analysis.overfitting else None,
        gap=GapInfo.of(analysis.gap) if analysis.gap else None,
        diagnostics=Diagnostics.of(analysis),
        findings=analysis.findings,
        retained_checkpoints=loaded.retained(),
        renamed_columns=dict(table.renamed),
        curve=_curve(table, points, must_keep),
        upstream_requests=loaded.requests,
    )


TRAINING_METRICS = """Read the job's result file (the metrics of every training step, not just the few checkpoints the
API keeps) and summarise the curve: steps; per metric its first, last and best value with steps (losses: lower is
better; accuracies, rewards: higher); the best validation step and whether a checkpoint was kept there (else the
nearest kept one); an overfitting signal (validation loss rising late while training loss falls, with the numbers);
the train-validation gap; diagnostics: loss spikes (robust outliers; unstable with 3 or more), a plateau (the step
after which the curve stopped improving meaningfully: where a rerun could stop) and how many steps each metric has;
findings to quote; and a downsampled curve of at most `points` rows that keeps the first
and last step, the kept checkpoints and the best step, then each metric's extremes as far as `points` allows. Jobs
that have not finished have no result file yet (available=false, with the reason)."""


@tool(title="Training curve of a job", description=TRAINING_METRICS)
async def training_metrics(
    ctx: Context[AppState],
    job_id: JobId,
    points: Annotated[int, Field(description="Rows of the downsampled curve to return (2-500).", ge=2, le=500)] = 60,
    refresh: Refresh = False,
) -> Annotated[CallToolResult, TrainingMetricsResult]:
    result = await read_curve(store_of(ctx), job_id, points=points, refresh=refresh, progress=ctx.report_progress)
    return await off_loop(linked, finish(ctx, result), job_links(job_id, has_result_file=result.available))
