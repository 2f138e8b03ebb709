"""The tools' results: compact, typed models (they become each tool's ``outputSchema``).

Times are ISO 8601 in UTC (``2025-08-01T08:00:00Z``); metrics are plain floats,
only the ones the API actually sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from .api.models import Checkpoint, Job

DEMO_NOTICE = (
    "DEMO DATA: invented jobs from the bundled demo dataset (--demo), not an OpenAI account. "
    "Restart without --demo and with OPENAI_API_KEY set to see real jobs."
)


def iso(timestamp: int | None) -> str | None:
    """Unix seconds as ISO 8601 UTC, or None."""
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


class ToolResult(BaseModel):
    notice: str | None = Field(
        default=None, description="Set only when the data is not real (demo mode); quote it to the user."
    )


class CheckpointInfo(BaseModel):
    id: str = Field(description="Checkpoint id (ftckpt_...).")
    step_number: int | None = Field(description="Training step at which the checkpoint was saved.")
    fine_tuned_model_checkpoint: str | None = Field(
        description="The model name to call or deploy this checkpoint by (ft:...:ckpt-step-N)."
    )
    created_at: str | None = Field(description="When it was saved, ISO 8601 UTC.")
    metrics: dict[str, float] = Field(
        description="Metrics the API reported for this checkpoint, only the keys present (e.g. train_loss, "
        "valid_loss, full_valid_loss, *_mean_token_accuracy, reinforcement rewards). Losses: lower is better; "
        "accuracies and rewards (0-1): higher is better."
    )

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> CheckpointInfo:
        return cls(
            id=checkpoint.id,
            step_number=checkpoint.step,
            fine_tuned_model_checkpoint=checkpoint.fine_tuned_model_checkpoint,
            created_at=iso(checkpoint.created_at),
            metrics=checkpoint.numeric_metrics,
        )


class BestCheckpoint(CheckpointInfo):
    job_id: str = Field(description="The job the checkpoint belongs to.")


class Coverage(BaseModel):
    method: str = Field(description="Fine-tuning method: supervised, dpo or reinforcement.")
    has_validation_file: bool = Field(
        description="Whether the job has a validation file; without one there are no valid_*/full_valid_* metrics."
    )
    retention: str = Field(description="Which checkpoints the API keeps for this kind of job.")
    note: str = Field(description="What these checkpoints can and cannot tell, in one or two sentences.")


class CheckpointList(ToolResult):
    job_id: str
    status: str | None = Field(description="The job's status (a running job may gain checkpoints).")
    count: int = Field(description="Number of checkpoints returned.")
    pages_fetched: int = Field(description="API pages read to collect them.")
    truncated: bool = Field(description="True when the server's item cap stopped paging before the end.")
    next_after: str | None = Field(
        default=None, description="When truncated: call again with after=<this> to read the rest."
    )
    checkpoints: list[CheckpointInfo] = Field(description="Every checkpoint, by step_number ascending.")
    coverage: Coverage


class ExcludedCheckpoint(BaseModel):
    id: str
    step_number: int | None
    reason: str = Field(description="Why it was not ranked (e.g. it has no value for the metric).")


class BestCheckpointResult(ToolResult):
    job_id: str
    status: str | None = Field(description="The job's status.")
    best: BestCheckpoint | None = Field(
        description="The checkpoint to deploy, or null when no checkpoint could be ranked (see rationale)."
    )
    metric: str | None = Field(description="The metric the checkpoints were ranked by.")
    goal: Literal["min", "max"] | None = Field(description="min: lower is better; max: higher is better.")
    rationale: str = Field(description="Why this checkpoint and this metric, in sentences to quote.")
    ranking: list[CheckpointInfo] = Field(description="The top checkpoints, best first (at most top_k).")
    excluded: list[ExcludedCheckpoint] = Field(description="Checkpoints that lack the metric, and why.")
    final_model: str | None = Field(description="The job's fine_tuned_model (the weights after the last step).")
    best_is_final: bool | None = Field(
        description="Whether the best checkpoint is the job's final model (its last checkpoint). Null without a best, "
        "while the job has no final model yet, and for reinforcement jobs (the API keeps their best checkpoints, "
        "not the last ones)."
    )
    checkpoints_considered: int = Field(description="How many checkpoints were read.")
    truncated: bool = Field(default=False, description="True when the item cap stopped paging before the end.")


class JobSummary(BaseModel):
    id: str
    status: str | None = Field(description="validating_files, queued, running, paused, succeeded, failed or cancelled.")
    model: str | None = Field(description="Base model.")
    fine_tuned_model: str | None = Field(description="Resulting model name; null until the job succeeds.")
    suffix: str | None
    method: str = Field(description="supervised, dpo or reinforcement.")
    created_at: str | None = Field(description="ISO 8601 UTC.")
    finished_at: str | None = Field(description="ISO 8601 UTC; null while the job runs.")
    has_validation_file: bool
    trained_tokens: int | None = Field(description="Billable tokens trained; null until the job finishes.")
    error: str | None = Field(default=None, description="For failed jobs: 'code: message' in one line.")

    @classmethod
    def from_job(cls, job: Job) -> JobSummary:
        return cls(
            **_identity(job),
            created_at=iso(job.created_at),
            finished_at=iso(job.finished_at),
            has_validation_file=job.has_validation_file,
            trained_tokens=job.trained_tokens,
            error=one_line_error(job),
        )


def _identity(job: Job) -> dict[str, Any]:
    """The fields every job result starts with."""
    return {
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "fine_tuned_model": job.fine_tuned_model,
        "suffix": job.suffix,
        "method": job.method_type,
    }


def one_line_error(job: Job) -> str | None:
    error = job.error_info
    if error is None:
        return None
    text = ": ".join(part for part in (error.code, error.message) if part)
    return " ".join(text.split())[:300] or None


class JobList(ToolResult):
    jobs: list[JobSummary] = Field(description="Jobs, newest first.")
    has_more: bool = Field(description="Whether older jobs remain.")
    next_after: str | None = Field(description="Pass as after= to get the next (older) jobs.")
    scanned: int = Field(description="Jobs read from the API (more than returned when status filters them).")


class JobErrorInfo(BaseModel):
    code: str | None
    message: str | None
    param: str | None


class JobDetail(ToolResult):
    id: str
    status: str | None
    model: str | None = Field(description="Base model.")
    fine_tuned_model: str | None = Field(description="Resulting model; null until the job succeeds.")
    suffix: str | None
    method: str = Field(description="supervised, dpo or reinforcement.")
    hyperparameters: dict[str, Any] = Field(
        description="n_epochs, batch_size, learning_rate_multiplier (and beta for DPO; reasoning_effort, "
        "compute_multiplier, eval_interval, eval_samples for reinforcement), from wherever the API put them; "
        "'auto' means the API chose."
    )
    grader: dict[str, Any] | None = Field(default=None, description="Reinforcement jobs: the grader's type and name.")
    training_file: str | None
    validation_file: str | None
    result_files: list[str] = Field(description="File ids of the per-step metrics CSV (empty until finished).")
    error: JobErrorInfo | None = Field(description="Why the job failed; null otherwise.")
    metadata: dict[str, str] | None
    integrations: list[dict[str, Any]] | None = Field(
        description="E.g. Weights & Biases ({type: wandb, wandb: {project, ...}}), as the API reports them."
    )
    created_at: str | None = Field(description="ISO 8601 UTC.")
    finished_at: str | None = Field(description="ISO 8601 UTC.")
    estimated_finish: str | None = Field(description="ISO 8601 UTC; only while running.")
    duration_seconds: int | None = Field(description="finished_at - created_at, in seconds.")
    trained_tokens: int | None
    seed: int | None
    organization_id: str | None

    @classmethod
    def from_job(cls, job: Job) -> JobDetail:
        error = job.error_info
        duration = None
        if job.created_at is not None and job.finished_at is not None:
            duration = max(0, job.finished_at - job.created_at)
        return cls(
            **_identity(job),
            hyperparameters=job.effective_hyperparameters,
            grader=job.grader_summary,
            training_file=job.training_file,
            validation_file=job.validation_file,
            result_files=job.result_files,
            error=JobErrorInfo(code=error.code, message=error.message, param=error.param) if error else None,
            metadata=job.metadata,
            integrations=job.integrations,
            created_at=iso(job.created_at),
            finished_at=iso(job.finished_at),
            estimated_finish=iso(job.estimated_finish),
            duration_seconds=duration,
            trained_tokens=job.trained_tokens,
            seed=job.seed,
            organization_id=job.organization_id,
        )


# --- compare_jobs ---------------------------------------------------------------------------------------------


class SweepHyperparameters(BaseModel):
    n_epochs: int | str | None = Field(default=None, description="Epochs ('auto' when the API chose).")
    learning_rate_multiplier: float | str | None = Field(default=None)
    batch_size: int | str | None = Field(default=None)
    beta: float | str | None = Field(default=None, description="DPO only.")

    @classmethod
    def from_job(cls, job: Job) -> SweepHyperparameters:
        values = job.effective_hyperparameters

        def pick(key: str) -> int | float | str | None:
            value = values.get(key)
            return value if isinstance(value, int | float | str) and not isinstance(value, bool) else None

        def whole(key: str) -> int | str | None:
            """A count (epochs, batch size): 16.0 is 16; a fraction, which no count can be, is left out."""
            value = pick(key)
            if isinstance(value, float):
                return int(value) if value.is_integer() else None
            return value

        return cls(
            n_epochs=whole("n_epochs"),
            learning_rate_multiplier=pick("learning_rate_multiplier"),
            batch_size=whole("batch_size"),
            beta=pick("beta"),
        )


class CheckpointRef(BaseModel):
    id: str
    step_number: int | None
    fine_tuned_model_checkpoint: str | None = Field(description="The model name to deploy.")


class RankedCheckpoint(CheckpointRef):
    metrics: dict[str, float] = Field(
        description="The checkpoint's metrics (losses: lower is better); per-batch valid_* metrics are left out when "
        "the whole-set full_valid_* ones exist (list_checkpoints shows all)."
    )


class Winner(BaseModel):
    job_id: str
    metric: str
    value: float | None
    best_checkpoint: CheckpointRef = Field(description="The checkpoint to deploy (details: leaderboard[0]).")


class LeaderboardEntry(BaseModel):
    rank: int | None = Field(
        description="1 = best among the jobs ranked by the same metric and method; null when the job could not be "
        "ranked (see note)."
    )
    job_id: str
    status: str | None
    suffix: str | None
    method: str = Field(description="supervised, dpo or reinforcement.")
    model: str | None = Field(description="Base model.")
    metric: str | None = Field(description="The metric this job was ranked by (compare only equal metrics).")
    value: float | None = Field(description="That metric's value at the job's best checkpoint.")
    best_checkpoint: RankedCheckpoint | None = Field(description="The job's best checkpoint, with the model to deploy.")
    best_is_final: bool | None = Field(
        description="Whether the best checkpoint is the job's final model; null when that cannot be told (no final "
        "model yet, or a reinforcement job)."
    )
    hyperparameters: SweepHyperparameters
    trained_tokens: int | None
    has_validation_file: bool
    checkpoints: int = Field(description="Checkpoints the job has (the API keeps only a few).")
    note: str | None = Field(default=None, description="Why the job is not ranked, or what to know about it.")


class JobFailure(BaseModel):
    job_id: str
    error: str = Field(description="'code: message' of the failure; the other jobs were still compared.")


class CompareJobsResult(ToolResult):
    selection: str = Field(description="How the jobs were chosen.")
    jobs_compared: int
    jobs_scanned: int = Field(description="Jobs read from the listing to find them (0 for explicit ids).")
    truncated: bool = Field(
        description="Not every matching job was compared: more matched than max_jobs, or the listing scan limit "
        "stopped the search (the rationale says which)."
    )
    metric: str | None = Field(description="The metric the winner's group was ranked by.")
    goal: Literal["min", "max"] | None
    winner: Winner | None = Field(
        description="The best job and the checkpoint to deploy, or null; its full entry is leaderboard[0]."
    )
    leaderboard: list[LeaderboardEntry] = Field(
        description="Best first: the winner's metric group, then jobs ranked separately by another metric, then "
        "jobs that could not be ranked."
    )
    failed: list[JobFailure] = Field(description="Jobs that could not be read.")
    rationale: str = Field(description="Who won and why, what was ranked separately, in sentences to quote.")
    upstream_requests: int = Field(description="API requests this call made (0 when everything came from the cache).")
    listing_age_seconds: float | None = Field(
        default=None,
        description="When the job listing was reused from the cache: its age in seconds (refresh=true re-reads it).",
    )


# --- training_metrics -------------------------------------------------------------------------------------------


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


class BestValidationInfo(BaseModel):
    metric: str
    goal: Literal["min", "max"]
    step: int
    value: float
    retained: bool = Field(description="Whether the API kept a checkpoint at that step.")
    nearest_retained_step: int | None = Field(description="When not kept: the closest kept checkpoint's step.")


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


class GapInfo(BaseModel):
    train_metric: str
    validation_metric: str
    step: int
    train: float
    validation: float
    gap: float = Field(description="validation - train at that step.")


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
    encoding: Literal["csv", "base64"] | None = Field(default=None, description="How the file body was encoded.")
    steps: int = Field(description="Steps (rows) in the result file.")
    first_step: int | None
    last_step: int | None
    metrics: list[MetricSummaryInfo] = Field(description="Per metric: first, last and best value with their steps.")
    best_validation: BestValidationInfo | None
    overfitting: OverfittingInfo | None = Field(description="Null when it cannot be judged (see findings).")
    gap: GapInfo | None = Field(description="Train-validation gap at the last step with both.")
    findings: list[str] = Field(description="Sentences to quote, most important first.")
    retained_checkpoints: list[RetainedCheckpoint] = Field(description="The checkpoints the API kept.")
    renamed_columns: dict[str, str] = Field(description="File column -> the checkpoint metric name used here.")
    curve: Curve | None
    upstream_requests: int = Field(description="API requests this call made (0 when everything came from the cache).")


# --- list_events --------------------------------------------------------------------------------------------------


class EventInfo(BaseModel):
    created_at: str | None = Field(description="ISO 8601 UTC.")
    level: str | None = Field(description="info, warn or error.")
    message: str | None
    metrics: dict[str, float] | None = Field(
        default=None, description="For metrics events: the numeric values of its data (step, losses, ...)."
    )


class EventList(ToolResult):
    job_id: str
    events: list[EventInfo] = Field(description="Newest first.")
    has_more: bool = Field(description="Whether older events remain.")
    next_after: str | None = Field(description="Pass as after= to read older events.")
    scanned: int = Field(description="Events read from the API (more than returned when level filters them).")
