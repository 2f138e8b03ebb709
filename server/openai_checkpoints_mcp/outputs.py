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
        description="Whether the best checkpoint is the job's last checkpoint (null without a best)."
    )
    checkpoints_considered: int = Field(description="How many checkpoints were read.")
    truncated: bool = Field(default=False, description="True when the item cap stopped paging before the end.")


class JobSummary(BaseModel):
    id: str
    status: str | None = Field(
        description="validating_files, queued, running, paused, succeeded, failed or cancelled."
    )
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
