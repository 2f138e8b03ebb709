"""The MCP tools: thin wrappers that take validated arguments, call `queries`, and return output models.

Each description is written for the assistant that reads it: what the tool
returns, when to use it, and the units.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from . import queries
from .analysis.metrics import Goal
from .api.client import OpenAIClient
from .errors import invalid_argument
from .inputs import CHECKPOINT_ID_PATTERN, JOB_ID_PATTERN, METRIC_PATTERN, JobId, JobStatus, MetadataKey, MetadataValue
from .outputs import DEMO_NOTICE, BestCheckpointResult, CheckpointList, JobDetail, JobList, ToolResult
from .state import AppState

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)

ResultT = TypeVar("ResultT", bound=ToolResult)


def _finish(ctx: Context[AppState], result: ResultT) -> ResultT:
    if ctx.request_context.lifespan_context.settings.demo:
        result.notice = DEMO_NOTICE
    return result


def _one_line(text: str) -> str:
    """Descriptions are written wrapped in source; the model gets them as one paragraph."""
    return " ".join(text.split())


def _client(ctx: Context[AppState]) -> OpenAIClient:
    return ctx.request_context.lifespan_context.client


LIST_JOBS = f"""List fine-tuning jobs, newest first, as compact summaries (id, status, base model, fine_tuned_model,
suffix, method, created_at/finished_at in ISO 8601 UTC, has_validation_file, trained_tokens, and a one-line error for
failed jobs). Use it to find a job id. Page with after=<next_after> while has_more is true. With `status` the server
scans up to {queries.JOBS_SCAN_PAGE_SIZE * queries.JOBS_SCAN_MAX_PAGES:,} jobs per call for matches, since the API
cannot filter by status."""

GET_JOB = """Get one fine-tuning job in full: status, base and resulting model, method (supervised, dpo or
reinforcement) with its hyperparameters wherever the API put them, training/validation/result files, error, metadata,
integrations, and timings (ISO 8601 UTC; duration in seconds)."""

LIST_CHECKPOINTS = """List every checkpoint of a fine-tuning job, following all pages, sorted by step_number
ascending. Each has the model name to call it by (fine_tuned_model_checkpoint) and the metrics the API reported
(losses: lower is better; accuracies and rewards: higher is better). `coverage` says what the API keeps (supervised:
the last 3 epochs; reinforcement: the 3 best by validation reward) and whether validation metrics exist. To pick a
checkpoint, use best_checkpoint."""

BEST_CHECKPOINT = """Answer "which checkpoint of this job should I deploy, and why?". Ranks every checkpoint of the
job by one metric and returns the best (with the model name to deploy), the top `top_k`, the checkpoints lacking the
metric, whether the best is the job's final model, and a rationale to quote. metric='auto' uses the most trustworthy
metric present: full_valid_loss (whole validation set), then full_valid_mean_reward for reinforcement jobs, then
valid_loss (one batch per step, noisy), then train_loss (cannot detect overfitting). Ties break on the complementary
metric (accuracy for a loss, loss for an accuracy), then the earlier step. A job without checkpoints (failed,
cancelled, running) returns best=null with the reason."""


def register_tools(server: MCPServer) -> None:
    """Add the read-only tools to `server`."""

    @server.tool(title="List fine-tuning jobs", description=_one_line(LIST_JOBS), annotations=READ_ONLY)
    async def list_jobs(
        ctx: Context[AppState],
        status: Annotated[
            JobStatus | None, Field(description="Only jobs with this status; omit for all.")
        ] = None,
        limit: Annotated[int, Field(description="How many jobs to return (1-100).", ge=1, le=100)] = 20,
        after: Annotated[
            str | None,
            Field(
                description="Cursor: the next_after of an earlier call, to get older jobs.",
                pattern=JOB_ID_PATTERN,
                max_length=100,
            ),
        ] = None,
        metadata: Annotated[
            dict[MetadataKey, MetadataValue] | None,
            Field(
                description='Only jobs whose metadata has all these key/value pairs, e.g. {"team": "support"}.',
                max_length=16,
            ),
        ] = None,
    ) -> JobList:
        result = await queries.list_jobs(
            _client(ctx), status=status, limit=limit, after=after, metadata=metadata, progress=ctx.report_progress
        )
        return _finish(ctx, result)

    @server.tool(title="Get a fine-tuning job", description=_one_line(GET_JOB), annotations=READ_ONLY)
    async def get_job(ctx: Context[AppState], job_id: JobId) -> JobDetail:
        return _finish(ctx, await queries.get_job(_client(ctx), job_id))

    @server.tool(title="List a job's checkpoints", description=_one_line(LIST_CHECKPOINTS), annotations=READ_ONLY)
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
    ) -> CheckpointList:
        result = await queries.list_checkpoints(_client(ctx), job_id, after=after, progress=ctx.report_progress)
        return _finish(ctx, result)

    @server.tool(title="Pick the best checkpoint", description=_one_line(BEST_CHECKPOINT), annotations=READ_ONLY)
    async def best_checkpoint(
        ctx: Context[AppState],
        job_id: JobId,
        metric: Annotated[
            str,
            Field(
                description="'auto', or full_valid_loss, full_valid_mean_token_accuracy, valid_loss, "
                "valid_mean_token_accuracy, train_loss, train_mean_token_accuracy, full_valid_mean_reward, "
                "train_mean_reward, or any other numeric metric key of the checkpoints (then goal is required).",
                pattern=METRIC_PATTERN,
                max_length=100,
            ),
        ] = "auto",
        goal: Annotated[
            Literal["min", "max"] | None,
            Field(description="min: lower is better; max: higher is better. Defaults from the metric."),
        ] = None,
        top_k: Annotated[int, Field(description="How many top checkpoints to list (1-50).", ge=1, le=50)] = 3,
    ) -> BestCheckpointResult:
        if metric == "auto" and goal is not None:
            raise invalid_argument(
                "goal applies only to an explicit metric; with metric='auto' the direction follows the metric chosen. "
                "Omit goal, or name the metric."
            )
        result = await queries.best_checkpoint(
            _client(ctx),
            job_id,
            metric=metric,
            goal=Goal(goal) if goal else None,
            top_k=top_k,
            progress=ctx.report_progress,
        )
        return _finish(ctx, result)
