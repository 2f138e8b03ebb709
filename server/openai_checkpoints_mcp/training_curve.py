"""training_metrics: read a job's result file (every step's metrics) and say what the whole curve shows.

The API keeps only a few checkpoints, but the result file has a row per step. This
reads it (through the cache: a result file never changes), parses it, analyses it
against the retained checkpoints and returns a downsampled curve.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .analysis.downsample import downsample_rows
from .analysis.result_file import ResultFileError, ResultTable, parse_result_file
from .analysis.training import analyse
from .api.cache import ACTIVE_STATUSES, is_finished
from .api.client import count_requests
from .api.errors import bad_response
from .api.models import Checkpoint, Job, by_step
from .api.store import JobStore
from .outputs import (
    BestValidationInfo,
    Curve,
    GapInfo,
    MetricSummaryInfo,
    OverfittingInfo,
    RetainedCheckpoint,
    TrainingMetricsResult,
)
from .queries import Progress


def _no_result_file(job: Job) -> str:
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


def _fields(model: type[Any], value: object) -> dict[str, Any]:
    """The dataclass's fields that the output model declares (the analysis carries more, e.g. sentences)."""
    data = dataclasses.asdict(value)  # type: ignore[call-overload]
    return {name: _tidy(data[name]) for name in model.model_fields if name in data}


def _tidy(value: Any) -> Any:
    """Differences of floats carry binary noise (0.023550000000000015): keep 6 significant digits."""
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _curve(table: ResultTable, points: int, must_keep: list[int]) -> Curve:
    rows = downsample_rows(table, points, must_keep=must_keep) if table.steps else []
    names = [name for name, values in table.columns.items() if any(v is not None for v in values)]
    return Curve(
        columns=["step", *names],
        rows=[[table.steps[i], *(table.columns[name][i] for name in names)] for i in rows],
    )


async def training_metrics(
    store: JobStore, job_id: str, *, points: int, refresh: bool = False, progress: Progress | None = None
) -> TrainingMetricsResult:
    with count_requests() as requests:
        job, collected = await store.job_and_checkpoints(job_id, refresh=refresh)
        checkpoints = by_step(collected.items)
        retained = [
            RetainedCheckpoint(step_number=c.step, fine_tuned_model_checkpoint=c.fine_tuned_model_checkpoint)
            for c in checkpoints
        ]
        if not job.result_files:
            reason = _no_result_file(job)
            return TrainingMetricsResult(
                job_id=job_id,
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
                retained_checkpoints=retained,
                renamed_columns={},
                curve=None,
                upstream_requests=requests[0],
            )
        file_id = job.result_files[0]
        if progress is not None:
            await progress(1, 2, f"reading result file {file_id}")
        content = await store.result_file(file_id, finished=is_finished(job), refresh=refresh)
    try:
        table = parse_result_file(content)
    except ResultFileError as exc:
        raise bad_response(f"the result file {file_id} of job {job_id}", str(exc)) from None
    return _result(job, file_id, table, checkpoints, retained, points, requests[0])


def _result(
    job: Job,
    file_id: str,
    table: ResultTable,
    checkpoints: list[Checkpoint],
    retained: list[RetainedCheckpoint],
    points: int,
    requests: int,
) -> TrainingMetricsResult:
    steps = [c.step for c in checkpoints if c.step is not None]
    analysis = analyse(table, steps)
    best = analysis.best_validation
    must_keep = ([best.step] if best else []) + steps
    return TrainingMetricsResult(
        job_id=job.id,
        status=job.status,
        available=True,
        result_file=file_id,
        encoding=table.encoding,
        steps=analysis.steps,
        first_step=analysis.first_step,
        last_step=analysis.last_step,
        metrics=[MetricSummaryInfo(**_fields(MetricSummaryInfo, m)) for m in analysis.metrics],
        best_validation=BestValidationInfo(**_fields(BestValidationInfo, best)) if best else None,
        overfitting=(
            OverfittingInfo(**_fields(OverfittingInfo, analysis.overfitting)) if analysis.overfitting else None
        ),
        gap=GapInfo(**_fields(GapInfo, analysis.gap)) if analysis.gap else None,
        findings=analysis.findings,
        retained_checkpoints=retained,
        renamed_columns=dict(table.renamed),
        curve=_curve(table, points, must_keep),
        upstream_requests=requests,
    )
