"""The MCP tools: thin wrappers that take validated arguments, call `queries`, and return output models.

Each description is written for the assistant that reads it: what the tool
returns, when to use it, and the units.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from . import compare, queries, training_curve
from .analysis.metrics import Goal
from .analysis.ranking import MetricChoiceError, check_goal
from .api.store import JobStore
from .errors import invalid_argument
from .inputs import (
    CHECKPOINT_ID_PATTERN,
    JOB_ID_PATTERN,
    METRIC_PATTERN,
    IsoTime,
    JobId,
    JobStatus,
    MetadataKey,
    MetadataValue,
)
from .outputs import (
    DEMO_NOTICE,
    BestCheckpointResult,
    CheckpointList,
    CompareJobsResult,
    EventList,
    JobDetail,
    JobList,
    ToolResult,
    TrainingMetricsResult,
)
from .state import AppState

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)

ResultT = TypeVar("ResultT", bound=ToolResult)


def finish(ctx: Context[AppState], result: ResultT) -> ResultT:
    if ctx.request_context.lifespan_context.settings.demo:
        result.notice = DEMO_NOTICE
    return result


def one_line(text: str) -> str:
    """Descriptions are written wrapped in source; the model gets them as one paragraph."""
    return " ".join(text.split())


def _store(ctx: Context[AppState]) -> JobStore:
    return ctx.request_context.lifespan_context.store


Refresh = Annotated[
    bool,
    Field(
        description="true: ignore the server's cache of finished jobs and read everything from the API again "
        "(only needed if you believe the cached answer is out of date)."
    ),
]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue] | None,
    Field(
        description='Only jobs whose metadata has all these key/value pairs, e.g. {"team": "support"} (the API '
        "filters these itself).",
        max_length=16,
    ),
]
Metric = Annotated[
    str,
    Field(
        description="'auto', or full_valid_loss, full_valid_mean_token_accuracy, valid_loss, "
        "valid_mean_token_accuracy, train_loss, train_mean_token_accuracy, full_valid_mean_reward, "
        "train_mean_reward, or any other numeric metric key of the checkpoints (then goal is required).",
        pattern=METRIC_PATTERN,
        max_length=100,
    ),
]
GoalArg = Annotated[
    Literal["min", "max"] | None,
    Field(description="min: lower is better; max: higher is better. Defaults from the metric."),
]


def _goal(metric: str, goal: str | None) -> Goal | None:
    if metric == "auto" and goal is not None:
        raise invalid_argument(
            "goal applies only to an explicit metric; with metric='auto' the direction follows the metric chosen. "
            "Omit goal, or name the metric."
        )
    chosen = Goal(goal) if goal else None
    try:
        check_goal(metric, chosen)  # before any request
    except MetricChoiceError as exc:
        raise invalid_argument(str(exc)) from None
    return chosen


LIST_JOBS = f"""List fine-tuning jobs, newest first, as compact summaries (id, status, base model, fine_tuned_model,
suffix, method, created_at/finished_at in ISO 8601 UTC, has_validation_file, trained_tokens, and a one-line error for
failed jobs). Use it to find job ids, or the jobs of a sweep (by suffix or metadata). Follows pages until max_results
jobs match; filters other than metadata are applied by this server (the API cannot), scanning up to
{queries.JOBS_PAGE_SIZE * queries.JOBS_SCAN_MAX_PAGES:,} jobs per call; page on with after=<next_after> while has_more
is true. Always read fresh from the API."""

GET_JOB = """Get one fine-tuning job in full: status, base and resulting model, method (supervised, dpo or
reinforcement) with its hyperparameters wherever the API put them, training/validation/result files, error, metadata,
integrations, and timings (ISO 8601 UTC; duration in seconds)."""

LIST_CHECKPOINTS = """List every checkpoint of a fine-tuning job, following all pages, sorted by step_number
ascending. Each has the model name to call it by (fine_tuned_model_checkpoint) and the metrics the API reported
(losses: lower is better; accuracies and rewards: higher is better). `coverage` says what the API keeps (supervised:
the last 3 epochs; reinforcement: the 3 best by validation reward) and whether validation metrics exist. To pick a
checkpoint, use best_checkpoint; for the metrics of every step (not only the kept checkpoints), training_metrics."""

BEST_CHECKPOINT = """Answer "which checkpoint of this job should I deploy, and why?". Ranks every checkpoint of the
job by one metric and returns the best (with the model name to deploy), the top `top_k`, the checkpoints lacking the
metric, whether the best is the job's final model, and a rationale to quote. metric='auto' uses the most trustworthy
metric present: full_valid_loss (whole validation set), then full_valid_mean_reward for reinforcement jobs, then
valid_loss (one batch per step, noisy), then train_loss (cannot detect overfitting), then train_mean_reward for
reinforcement jobs. Ties break on the complementary
metric (accuracy for a loss, loss for an accuracy), then the earlier step. A job without checkpoints (failed,
cancelled, running) returns best=null with the reason. To compare several jobs (a sweep), use compare_jobs."""

COMPARE_JOBS = f"""Answer "which run of my sweep won, and with which checkpoint?". Compares jobs chosen by job_ids or
by a filter (suffix, metadata, model; status defaults to succeeded): for each, its best checkpoint by the same rules as
best_checkpoint, the metric value, hyperparameters (n_epochs, learning_rate_multiplier, batch_size, beta), trained
tokens and whether it has a validation file. Returns a leaderboard, best first, the winner and a rationale to quote.
Jobs are only ranked against jobs with the same metric and method: jobs without validation metrics are ranked
separately by train loss, never mixed with validation losses. A job that cannot be read is listed under failed; the
others are still compared. Reads up to {compare.COMPARE_SCAN_MAX_PAGES * queries.JOBS_PAGE_SIZE:,} listed jobs;
finished jobs are cached, so asking again is instant."""

TRAINING_METRICS = """Read the job's result file (the metrics of every training step, not just the few checkpoints the
API keeps) and summarise the curve: steps; per metric its first, last and best value with steps (losses: lower is
better; accuracies, rewards: higher); the best validation step and whether a checkpoint was kept there (else the
nearest kept one); an overfitting signal (validation loss rising late while training loss falls, with the numbers);
the train-validation gap; findings to quote; and a downsampled curve of at most `points` rows that keeps the first
and last step, the kept checkpoints and the best step, then each metric's extremes as far as `points` allows. Jobs
that have not finished have no result file yet (available=false, with the reason)."""

LIST_EVENTS = """List a job's events, newest first: time (ISO 8601 UTC), level (info, warn, error), message, and for
metrics events their numbers (step, train_loss, valid_loss, ...). Use it for what a job is doing now, why it failed,
or per-step metrics of a running job. Page with after=<next_after> while has_more is true."""


def register_tools(server: MCPServer) -> None:
    """Add the read-only tools to `server`."""

    @server.tool(title="List fine-tuning jobs", description=one_line(LIST_JOBS), annotations=READ_ONLY)
    async def list_jobs(
        ctx: Context[AppState],
        status: Annotated[JobStatus | None, Field(description="Only jobs with this status; omit for all.")] = None,
        model: Annotated[
            str | None,
            Field(
                description="Only jobs of this base model: a full name, or a family or date prefix of the "
                "snapshot (gpt-4o matches gpt-4o-2024-08-06, not gpt-4o-mini-2024-07-18); case-insensitive.",
                min_length=1,
                max_length=200,
            ),
        ] = None,
        suffix: Annotated[
            str | None, Field(description="Only jobs with exactly this suffix.", min_length=1, max_length=64)
        ] = None,
        metadata: Metadata = None,
        created_after: Annotated[IsoTime | None, Field(description="Only jobs created at or after this time.")] = None,
        created_before: Annotated[IsoTime | None, Field(description="Only jobs created before this time.")] = None,
        max_results: Annotated[
            int,
            Field(
                description="How many matching jobs to return (1-1000); pages are followed until then.", ge=1, le=1000
            ),
        ] = 20,
        after: Annotated[
            str | None,
            Field(
                description="Cursor: the next_after of an earlier call, to continue with older jobs.",
                pattern=JOB_ID_PATTERN,
                max_length=100,
            ),
        ] = None,
    ) -> JobList:
        where = queries.job_filter(
            status=status, model=model, suffix=suffix, created_after=created_after, created_before=created_before
        )
        result = await queries.list_jobs(
            _store(ctx),
            where=where,
            max_results=max_results,
            after=after,
            metadata=metadata,
            progress=ctx.report_progress,
        )
        return finish(ctx, result)

    @server.tool(title="Get a fine-tuning job", description=one_line(GET_JOB), annotations=READ_ONLY)
    async def get_job(ctx: Context[AppState], job_id: JobId, refresh: Refresh = False) -> JobDetail:
        return finish(ctx, await queries.get_job(_store(ctx), job_id, refresh=refresh))

    @server.tool(title="List a job's checkpoints", description=one_line(LIST_CHECKPOINTS), annotations=READ_ONLY)
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
        result = await queries.list_checkpoints(
            _store(ctx), job_id, after=after, refresh=refresh, progress=ctx.report_progress
        )
        return finish(ctx, result)

    @server.tool(title="Pick the best checkpoint", description=one_line(BEST_CHECKPOINT), annotations=READ_ONLY)
    async def best_checkpoint(
        ctx: Context[AppState],
        job_id: JobId,
        metric: Metric = "auto",
        goal: GoalArg = None,
        top_k: Annotated[int, Field(description="How many top checkpoints to list (1-50).", ge=1, le=50)] = 3,
        refresh: Refresh = False,
    ) -> BestCheckpointResult:
        result = await queries.best_checkpoint(
            _store(ctx),
            job_id,
            metric=metric,
            goal=_goal(metric, goal),
            top_k=top_k,
            refresh=refresh,
            progress=ctx.report_progress,
        )
        return finish(ctx, result)

    @server.tool(title="Compare jobs (a sweep)", description=one_line(COMPARE_JOBS), annotations=READ_ONLY)
    async def compare_jobs(
        ctx: Context[AppState],
        job_ids: Annotated[
            list[JobId] | None,
            Field(
                description="The jobs to compare (their status does not matter); or omit and give a filter.",
                min_length=1,
                max_length=100,
            ),
        ] = None,
        suffix: Annotated[
            str | None, Field(description="Filter: jobs with exactly this suffix.", min_length=1, max_length=64)
        ] = None,
        metadata: Metadata = None,
        model: Annotated[
            str | None,
            Field(
                description="Filter: jobs of this base model (gpt-4o matches gpt-4o-2024-08-06, not gpt-4o-mini).",
                min_length=1,
                max_length=200,
            ),
        ] = None,
        status: Annotated[
            JobStatus | Literal["any"],
            Field(description="Filter: only jobs with this status ('any' for all). Ignored with job_ids."),
        ] = "succeeded",
        metric: Metric = "auto",
        goal: GoalArg = None,
        max_jobs: Annotated[
            int, Field(description="Compare at most this many matching jobs, the newest first (1-100).", ge=1, le=100)
        ] = 50,
        refresh: Refresh = False,
    ) -> CompareJobsResult:
        where = queries.job_filter(status=None if status == "any" or job_ids else status, model=model, suffix=suffix)
        result = await compare.compare_jobs(
            _store(ctx),
            job_ids=job_ids,
            where=where,
            metadata=metadata,
            metric=metric,
            goal=_goal(metric, goal),
            max_jobs=max_jobs,
            refresh=refresh,
            progress=ctx.report_progress,
        )
        return finish(ctx, result)

    @server.tool(title="Training curve of a job", description=one_line(TRAINING_METRICS), annotations=READ_ONLY)
    async def training_metrics(
        ctx: Context[AppState],
        job_id: JobId,
        points: Annotated[
            int, Field(description="Rows of the downsampled curve to return (2-500).", ge=2, le=500)
        ] = 60,
        refresh: Refresh = False,
    ) -> TrainingMetricsResult:
        result = await training_curve.training_metrics(
            _store(ctx), job_id, points=points, refresh=refresh, progress=ctx.report_progress
        )
        return finish(ctx, result)

    @server.tool(title="List a job's events", description=one_line(LIST_EVENTS), annotations=READ_ONLY)
    async def list_events(
        ctx: Context[AppState],
        job_id: JobId,
        level: Annotated[
            Literal["info", "warn", "error"] | None, Field(description="Only events of this level; omit for all.")
        ] = None,
        limit: Annotated[int, Field(description="How many events to return (1-100).", ge=1, le=100)] = 50,
        after: Annotated[
            str | None,
            Field(
                description="Cursor: the next_after of an earlier call, to read older events.",
                pattern=r"^[A-Za-z0-9_-]+$",
                max_length=100,
            ),
        ] = None,
    ) -> EventList:
        result = await queries.list_events(
            _store(ctx), job_id, level=level, limit=limit, after=after, progress=ctx.report_progress
        )
        return finish(ctx, result)
