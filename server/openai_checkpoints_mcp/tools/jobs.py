"""The job tools: list_jobs (find jobs, or the runs of a sweep) and get_job (one job in full)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from ..api.models import Job
from ..api.pagination import Page, collect_pages
from ..api.store import JobStore
from ..state import AppState
from .arguments import JOB_ID_PATTERN, IsoTime, JobFilter, JobId, JobStatus, Metadata, Refresh, job_filter
from .common import Progress, ToolResult, finish, iso, page_progress, store_of, tool

JOBS_PAGE_SIZE = 100
JOBS_SCAN_MAX_PAGES = 10
"""Pages of jobs one list_jobs call reads at most when filters the API cannot apply thin them out."""


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
            id=job.id,
            status=job.status,
            model=job.model,
            fine_tuned_model=job.fine_tuned_model,
            suffix=job.suffix,
            method=job.method_type,
            created_at=iso(job.created_at),
            finished_at=iso(job.finished_at),
            has_validation_file=job.has_validation_file,
            trained_tokens=job.trained_tokens,
            error=one_line_error(job),
        )


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
    scanned: int = Field(
        description="Jobs read from the API (more than returned when status filters them); from an archive: the jobs "
        "it holds, all searched."
    )


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
            id=job.id,
            status=job.status,
            model=job.model,
            fine_tuned_model=job.fine_tuned_model,
            suffix=job.suffix,
            method=job.method_type,
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


async def read_jobs(
    store: JobStore,
    *,
    where: JobFilter,
    max_results: int,
    after: str | None,
    metadata: Mapping[str, str] | None,
    progress: Progress | None = None,
) -> JobList:
    """Jobs newest first that pass `where`, following pages until `max_results` match, the listing ends, a job
    older than created_after appears, or `JOBS_SCAN_MAX_PAGES` pages were read (then `next_after` continues)."""
    # With created_after, one job more than asked for shows whether an older one (the end) comes next.
    size = JOBS_PAGE_SIZE if where.client_side else min(max_results + (where.created_after is not None), JOBS_PAGE_SIZE)
    if store.offline:  # an archive applies the filter itself, over all of it: one page holds the answer
        size = max_results + (where.created_after is not None)

    async def fetch(cursor: str | None) -> Page[Job]:
        return await store.jobs_page(limit=size, after=cursor, metadata=metadata, where=where)

    collected = await collect_pages(
        fetch,
        max_items=max_results,
        after=after,
        what="fine-tuning jobs",
        keep=where.keep if where.client_side else None,
        stop_at=where.past_the_end if where.created_after is not None else None,
        max_pages=None if store.offline else JOBS_SCAN_MAX_PAGES,
        on_page=page_progress(progress, "matching jobs"),
    )
    return JobList(
        jobs=[JobSummary.from_job(job) for job in collected.items],
        has_more=collected.truncated,
        next_after=collected.next_after,
        scanned=store.origin.jobs if store.origin is not None else collected.scanned,
    )


LIST_JOBS = f"""List fine-tuning jobs, newest first, as compact summaries (id, status, base model, fine_tuned_model,
suffix, method, created_at/finished_at in ISO 8601 UTC, has_validation_file, trained_tokens, and a one-line error for
failed jobs). Use it to find job ids, or the jobs of a sweep (by suffix or metadata). Follows pages until max_results
jobs match; filters other than metadata are applied by this server (the API cannot), scanning up to
{JOBS_PAGE_SIZE * JOBS_SCAN_MAX_PAGES:,} jobs per call (from an archive: all of them); page on with after=<next_after>
while has_more is true. Always read fresh from the API."""


@tool(title="List fine-tuning jobs", description=LIST_JOBS)
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
        Field(description="How many matching jobs to return (1-1000); pages are followed until then.", ge=1, le=1000),
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
    where = job_filter(
        status=status, model=model, suffix=suffix, created_after=created_after, created_before=created_before
    )
    result = await read_jobs(
        store_of(ctx),
        where=where,
        max_results=max_results,
        after=after,
        metadata=metadata,
        progress=ctx.report_progress,
    )
    return finish(ctx, result)


GET_JOB = """Get one fine-tuning job in full: status, base and resulting model, method (supervised, dpo or
reinforcement) with its hyperparameters wherever the API put them, training/validation/result files, error, metadata,
integrations, and timings (ISO 8601 UTC; duration in seconds)."""


@tool(title="Get a fine-tuning job", description=GET_JOB)
async def get_job(ctx: Context[AppState], job_id: JobId, refresh: Refresh = False) -> JobDetail:
    return finish(ctx, JobDetail.from_job(await store_of(ctx).job(job_id, refresh=refresh)))
