"""The checkpoint tools: list_checkpoints (every checkpoint with its metrics) and best_checkpoint (which one to
deploy, and why)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from ..analysis.metrics import Goal, auto_order
from ..analysis.ranking import Candidate, choose_metric, numeric_keys, rank
from ..analysis.rationale import exclusion_note, metric_reason, winner_sentence
from ..api.models import ACTIVE_STATUSES, Checkpoint, Job, by_step
from ..api.pagination import Collected
from ..api.store import JobStore
from ..state import AppState
from .arguments import CHECKPOINT_ID_PATTERN, GoalArg, JobId, Metric, Refresh, checked_goal
from .common import Progress, ToolResult, finish, iso, linked, page_progress, store_of, tool
from .resources import job_links


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

    @classmethod
    def of_job(cls, checkpoint: Checkpoint, job_id: str) -> BestCheckpoint:
        return cls(
            id=checkpoint.id,
            step_number=checkpoint.step,
            fine_tuned_model_checkpoint=checkpoint.fine_tuned_model_checkpoint,
            created_at=iso(checkpoint.created_at),
            metrics=checkpoint.numeric_metrics,
            job_id=job_id,
        )


class Coverage(BaseModel):
    method: str = Field(description="Fine-tuning method: supervised, dpo or reinforcement.")
    has_validation_file: bool = Field(
        description="Whether the job names a validation file (validation_file); without one there are usually no "
        "valid_*/full_valid_* metrics (the note says when the checkpoints carry some all the same)."
    )
    retention: str = Field(description="Which checkpoints the API keeps for this kind of job.")
    note: str = Field(description="What these checkpoints can and cannot tell, in one or two sentences.")


CHECKPOINT_COLUMNS = ("id", "step_number", "fine_tuned_model_checkpoint", "created_at")
"""The first columns of list_checkpoints' rows; the metric names follow."""


class CheckpointList(ToolResult):
    job_id: str
    status: str | None = Field(description="The job's status (a running job may gain checkpoints).")
    count: int = Field(description="Number of checkpoints returned.")
    pages_fetched: int = Field(description="API pages read to collect them.")
    truncated: bool = Field(description="True when the server's item cap stopped paging before the end.")
    next_after: str | None = Field(
        default=None, description="When truncated: call again with after=<this> to read the rest."
    )
    columns: list[str] = Field(
        description="The names of each row's values: id (ftckpt_...), step_number, fine_tuned_model_checkpoint "
        "(the model name to call or deploy it by), created_at (Unix seconds), then every metric any checkpoint "
        "has, the most widely reported first (e.g. train_loss, full_valid_loss, *_mean_token_accuracy, rewards)."
    )
    rows: list[list[str | int | float | None]] = Field(
        description="One row per checkpoint, by step_number ascending, its values in the order of columns. A row "
        "ends at its last metric value: a metric past its end, or null, is one the checkpoint does not have."
    )
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


def candidates_of(checkpoints: list[Checkpoint]) -> list[Candidate]:
    """Checkpoints as the ranking sees them: id, step and metrics."""
    return [Candidate(c.id, c.step, c.metrics or {}) for c in checkpoints]


def coverage_of(job: Job, checkpoints: list[Checkpoint]) -> Coverage:
    method = job.method_type
    has_validation = job.has_validation_file
    if method == "reinforcement":
        retention = (
            "The API keeps only the 3 checkpoints with the best validation reward, so the checkpoints "
            "are not evenly spaced and earlier evaluations are gone."
        )
    elif method == "dpo":
        retention = (
            "The API keeps checkpoints of only the last 3 epochs (one per epoch), as for supervised jobs; "
            "retention for DPO is not separately documented."
        )
    else:
        retention = "The API keeps checkpoints of only the last 3 epochs (one per epoch); earlier ones are gone."
    present = {key for c in checkpoints for key in c.numeric_metrics}
    validation = sorted(key for key in present if key.startswith(("full_valid", "valid")))
    if not has_validation and validation:
        shown = ", ".join(validation[:3]) + (", ..." if len(validation) > 3 else "")
        note = (
            f"The job names no validation file, yet its checkpoints carry validation metrics ({shown}): they are "
            "shown and ranked as the API reports them."
        )
    elif not has_validation:
        note = (
            "No validation file, so there are no valid_*/full_valid_* metrics: only training metrics, which "
            "cannot show overfitting."
        )
    elif not validation and checkpoints:
        note = "The job has a validation file, but these checkpoints carry no validation metrics."
    elif method == "reinforcement" and not any(key.startswith("valid") for key in present):
        note = (
            "full_valid_mean_reward is the grader's mean reward over the whole validation set, the one to trust; "
            "train_mean_reward is measured on training samples."
        )
    else:
        note = (
            "full_valid_* metrics cover the whole validation set and are the ones to trust; per-step valid_* "
            "metrics come from one batch and are noisy."
        )
    if not checkpoints:
        note = f"No checkpoints (job status: {job.status}). " + note
    return Coverage(method=method, has_validation_file=has_validation, retention=retention, note=note)


def final_model_answer(job: Job, best_is_last: bool) -> bool | None:
    """Whether the best checkpoint is the job's final model: only known for a job that has one, and whose kept
    checkpoints are its last ones (not a reinforcement job's best three)."""
    if not job.fine_tuned_model or job.method_type == "reinforcement":
        return None
    return best_is_last


def _no_checkpoints_reason(job: Job) -> str:
    status = job.status or "unknown"
    if status == "failed":
        error = job.error_info
        detail = ""
        if error is not None and error.message:
            detail = f": {error.code}: {error.message}" if error.code else f": {error.message}"
        return f"The job failed{detail}, so it has no checkpoints to rank."
    if status == "cancelled":
        return "The job was cancelled before it saved any checkpoint, so there is nothing to rank."
    if status in ACTIVE_STATUSES:
        return (
            f"The job is {status} and has not saved a checkpoint yet; checkpoints appear at the end of each "
            "epoch. Call again later."
        )
    return f"The job (status {status}) has no checkpoints to rank."


async def read_checkpoints(
    store: JobStore, job_id: str, *, after: str | None = None, refresh: bool = False, progress: Progress | None = None
) -> CheckpointList:
    job, collected = await store.job_and_checkpoints(
        job_id, after=after, refresh=refresh, on_page=page_progress(progress, "checkpoints")
    )
    checkpoints = by_step(collected.items)
    metrics = [c.numeric_metrics for c in checkpoints]
    seen = Counter(key for values in metrics for key in values)
    names = sorted(seen, key=lambda name: -seen[name])  # stable: first seen first among equals
    return CheckpointList(
        job_id=job_id,
        status=job.status,
        count=len(checkpoints),
        pages_fetched=collected.pages_fetched,
        truncated=collected.truncated,
        next_after=collected.next_after,
        columns=[*CHECKPOINT_COLUMNS, *names],
        rows=[
            _row(c.id, c.step, c.fine_tuned_model_checkpoint, c.created_at, *(values.get(name) for name in names))
            for c, values in zip(checkpoints, metrics, strict=True)
        ],
        coverage=coverage_of(job, checkpoints),
    )


def _row(*values: str | int | float | None) -> list[str | int | float | None]:
    """A checkpoint's row without its trailing missing metrics (the four checkpoint columns always stay)."""
    end = len(values)
    while end > len(CHECKPOINT_COLUMNS) and values[end - 1] is None:
        end -= 1
    return list(values[:end])


def _unranked(
    job_id: str,
    job: Job,
    collected: Collected[Checkpoint],
    rationale: str,
    *,
    metric: str | None = None,
    goal: Goal | None = None,
    excluded: list[ExcludedCheckpoint] | None = None,
) -> BestCheckpointResult:
    """The answer when no checkpoint can be named best: why, and what was tried."""
    return BestCheckpointResult(
        job_id=job_id,
        status=job.status,
        best=None,
        metric=metric,
        goal=goal.value if goal else None,
        rationale=rationale,
        ranking=[],
        excluded=excluded or [],
        final_model=job.fine_tuned_model,
        best_is_final=None,
        checkpoints_considered=len(collected.items),
        truncated=collected.truncated,
    )


async def pick_best(
    store: JobStore,
    job_id: str,
    *,
    metric: str,
    goal: Goal | None,
    top_k: int,
    refresh: bool = False,
    progress: Progress | None = None,
) -> BestCheckpointResult:
    _, result = await rank_job(store, job_id, metric=metric, goal=goal, top_k=top_k, refresh=refresh, progress=progress)
    return result


async def rank_job(
    store: JobStore,
    job_id: str,
    *,
    metric: str,
    goal: Goal | None,
    top_k: int,
    refresh: bool = False,
    progress: Progress | None = None,
) -> tuple[Job, BestCheckpointResult]:
    """The job, and the best of its checkpoints (`pick_best`)."""
    job, collected = await store.job_and_checkpoints(
        job_id, refresh=refresh, on_page=page_progress(progress, "checkpoints")
    )
    return job, _best_of(job_id, job, collected, metric=metric, goal=goal, top_k=top_k)


def _best_of(
    job_id: str, job: Job, collected: Collected[Checkpoint], *, metric: str, goal: Goal | None, top_k: int
) -> BestCheckpointResult:
    checkpoints = by_step(collected.items)
    by_id = {c.id: c for c in checkpoints}
    candidates = candidates_of(checkpoints)
    if not checkpoints:
        return _unranked(
            job_id, job, collected, _no_checkpoints_reason(job), metric=None if metric == "auto" else metric, goal=goal
        )
    present = numeric_keys(candidates)
    choice = choose_metric(metric, goal, method_type=job.method_type, present=present)
    if choice is None:
        return _unranked(
            job_id,
            job,
            collected,
            f"No checkpoint has {', '.join(auto_order(job.method_type))} (metrics present: "
            f"{', '.join(sorted(present)) or 'none'}); call again with metric=<one of those> and goal='min' or 'max'.",
            excluded=[
                ExcludedCheckpoint(id=c.id, step_number=c.step, reason="has none of the metrics auto ranks by")
                for c in checkpoints
            ],
        )
    ranking = rank(candidates, choice)
    excluded = [ExcludedCheckpoint(id=e.id, step_number=e.step, reason=e.reason) for e in ranking.excluded]
    best = ranking.best
    if best is None:
        return _unranked(
            job_id,
            job,
            collected,
            f"No checkpoint has a usable {choice.metric} value, so none can be ranked by it.",
            metric=choice.metric,
            goal=choice.goal,
            excluded=excluded,
        )
    is_last = best.id == checkpoints[-1].id
    sentences = [
        metric_reason(ranking, has_validation_file=job.has_validation_file),
        winner_sentence(
            ranking,
            last_step=checkpoints[-1].step,
            best_is_final=is_last,
            has_final_model=bool(job.fine_tuned_model),
            keeps_best=job.method_type == "reinforcement",
        ),
        exclusion_note(ranking),
    ]
    if collected.truncated:
        sentences.append(
            f"Only the {len(checkpoints)} most recent checkpoints were read (the server's --max-items cap); "
            "older ones were not ranked."
        )
    return BestCheckpointResult(
        job_id=job_id,
        status=job.status,
        best=BestCheckpoint.of_job(by_id[best.id], job_id),
        metric=choice.metric,
        goal=choice.goal.value,
        rationale=" ".join(s for s in sentences if s),
        ranking=[CheckpointInfo.from_checkpoint(by_id[c.id]) for c in ranking.ranked[:top_k]],
        excluded=excluded,
        final_model=job.fine_tuned_model,
        best_is_final=final_model_answer(job, is_last),
        checkpoints_considered=len(checkpoints),
        truncated=collected.truncated,
    )


LIST_CHECKPOINTS = """List every checkpoint of a fine-tuning job, following all pages, as rows (by step_number
ascending) whose values are named by `columns`: its id, step, the model name to call it by
(fine_tuned_model_checkpoint), when it was saved, and the metrics the API reported (losses: lower is better;
accuracies and rewards: higher is better). `coverage` says what the API keeps (supervised:
the last 3 epochs; reinforcement: the 3 best by validation reward) and whether validation metrics exist. To pick a
checkpoint, use best_checkpoint; for the metrics of every step (not only the kept checkpoints), training_metrics."""


@tool(title="List a job's checkpoints", description=LIST_CHECKPOINTS)
async def list_checkpoints(
    ctx: Context[AppState],
    job_id: JobId,
    after: Annotated[
        str | None,
        Field(
            description="Only when an earlier result was truncated: its next_after, to read the rest.",
            pattern=CHECKPOINT_ID_PATTERN,
            max_length=100,
        ),
    ] = None,
    refresh: Refresh = False,
) -> CheckpointList:
    result = await read_checkpoints(store_of(ctx), job_id, after=after, refresh=refresh, progress=ctx.report_progress)
    return finish(ctx, result)


BEST_CHECKPOINT = """Answer "which checkpoint of this job should I deploy, and why?". Ranks every checkpoint of the
job by one metric and returns the best (with the model name to deploy), the top `top_k`, the checkpoints lacking the
metric, whether the best is the job's final model, and a rationale to quote. metric='auto' uses the most trustworthy
metric present: full_valid_loss (whole validation set), then full_valid_mean_reward for reinforcement jobs, then
valid_loss (one batch per step, noisy), then train_loss (cannot detect overfitting), then train_mean_reward for
reinforcement jobs. Ties break on the complementary
metric (accuracy for a loss, loss for an accuracy), then the earlier step. A job without checkpoints (failed,
cancelled, running) returns best=null with the reason. To compare several jobs (a sweep), use compare_jobs."""


@tool(title="Pick the best checkpoint", description=BEST_CHECKPOINT)
async def best_checkpoint(
    ctx: Context[AppState],
    job_id: JobId,
    metric: Metric = "auto",
    goal: GoalArg = None,
    top_k: Annotated[int, Field(description="How many top checkpoints to list (1-50).", ge=1, le=50)] = 3,
    refresh: Refresh = False,
) -> Annotated[CallToolResult, BestCheckpointResult]:
    job, result = await rank_job(
        store_of(ctx),
        job_id,
        metric=metric,
        goal=checked_goal(metric, goal),
        top_k=top_k,
        refresh=refresh,
        progress=ctx.report_progress,
    )
    return linked(finish(ctx, result), job_links(job_id, has_result_file=bool(job.result_files)))
