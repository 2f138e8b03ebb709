"""What each tool does: ask the API (through `OpenAIClient`), hand plain models to `analysis`,
and build the output model. No MCP here; progress is reported through a callback."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from .analysis.metrics import Goal, auto_order
from .analysis.ranking import Candidate, MetricChoiceError, choose_metric, numeric_keys, rank
from .analysis.rationale import exclusion_note, metric_reason, winner_sentence
from .api.client import OpenAIClient
from .api.models import Checkpoint, Job
from .api.pagination import Collected, OnPage, Page, collect_pages
from .errors import CheckpointsError, invalid_argument
from .outputs import (
    BestCheckpoint,
    BestCheckpointResult,
    CheckpointInfo,
    CheckpointList,
    Coverage,
    ExcludedCheckpoint,
    JobDetail,
    JobList,
    JobSummary,
)

Progress = Callable[[float, float | None, str], Awaitable[None]]

JOBS_SCAN_PAGE_SIZE = 100
JOBS_SCAN_MAX_PAGES = 10
_STILL_RUNNING = {"validating_files", "queued", "running", "paused"}


def _page_progress(progress: Progress | None, noun: str) -> OnPage | None:
    """Report each fetched page as an MCP progress notification (total unknown)."""
    if progress is None:
        return None
    report = progress

    async def on_page(pages: int, items: int) -> None:
        await report(pages, None, f"read {pages} page{'s' if pages != 1 else ''}, {items} {noun}")

    return on_page


async def list_jobs(
    client: OpenAIClient,
    *,
    status: str | None,
    limit: int,
    after: str | None,
    metadata: Mapping[str, str] | None,
    progress: Progress | None = None,
) -> JobList:
    """Jobs newest first. Without `status`: one API page of `limit` jobs. With it (the API cannot filter
    by status), pages of 100 are scanned until `limit` jobs match, for at most `JOBS_SCAN_MAX_PAGES` pages."""

    async def fetch(cursor: str | None) -> Page[Job]:
        size = limit if status is None else JOBS_SCAN_PAGE_SIZE
        return await client.list_jobs_page(limit=size, after=cursor, metadata=metadata)

    collected = await collect_pages(
        fetch,
        max_items=limit,
        after=after,
        what="fine-tuning jobs",
        keep=None if status is None else (lambda job: job.status == status),
        max_pages=1 if status is None else JOBS_SCAN_MAX_PAGES,
        on_page=None if status is None else _page_progress(progress, "matching jobs"),
    )
    return JobList(
        jobs=[JobSummary.from_job(job) for job in collected.items],
        has_more=collected.truncated,
        next_after=collected.next_after,
        scanned=collected.scanned,
    )


async def get_job(client: OpenAIClient, job_id: str) -> JobDetail:
    return JobDetail.from_job(await client.get_job(job_id))


async def _job_and_checkpoints(
    client: OpenAIClient, job_id: str, *, after: str | None, progress: Progress | None
) -> tuple[Job, Collected[Checkpoint]]:
    """The job and all its checkpoints, fetched concurrently (one round trip saved)."""
    job: Job | None = None
    collected: Collected[Checkpoint] | None = None
    checkpoints_error: CheckpointsError | None = None

    on_page = _page_progress(progress, "checkpoints")

    async def fetch_checkpoints() -> None:
        nonlocal collected, checkpoints_error
        try:
            collected = await client.list_checkpoints(job_id, after=after, on_page=on_page)
        except CheckpointsError as exc:  # reported after the job's own answer, which explains it better
            checkpoints_error = exc

    job_error: CheckpointsError | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(fetch_checkpoints)
        try:
            job = await client.get_job(job_id)
        except CheckpointsError as exc:
            job_error = exc
            group.cancel_scope.cancel()
    if job_error is not None:
        raise job_error
    if checkpoints_error is not None:
        raise checkpoints_error
    assert job is not None and collected is not None
    return job, collected


def _by_step(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    return sorted(checkpoints, key=lambda c: (c.step if c.step is not None else math.inf, c.created_at or 0))


def coverage_of(job: Job, checkpoints: list[Checkpoint]) -> Coverage:
    method = job.method_type
    has_validation = job.has_validation_file
    if method == "reinforcement":
        retention = ("The API keeps only the 3 checkpoints with the best validation reward, so the checkpoints "
                     "are not evenly spaced and earlier evaluations are gone.")
    elif method == "dpo":
        retention = ("The API keeps checkpoints of only the last 3 epochs (one per epoch), as for supervised jobs; "
                     "retention for DPO is not separately documented.")
    else:
        retention = "The API keeps checkpoints of only the last 3 epochs (one per epoch); earlier ones are gone."
    present = {key for c in checkpoints for key in c.numeric_metrics}
    if not has_validation:
        note = ("No validation file, so there are no valid_*/full_valid_* metrics: only training metrics, which "
                "cannot show overfitting.")
    elif not any(key.startswith(("full_valid", "valid")) for key in present) and checkpoints:
        note = "The job has a validation file, but these checkpoints carry no validation metrics."
    else:
        note = ("full_valid_* metrics cover the whole validation set and are the ones to trust; per-step valid_* "
                "metrics come from one batch and are noisy.")
    if not checkpoints:
        note = f"No checkpoints (job status: {job.status}). " + note
    return Coverage(method=method, has_validation_file=has_validation, retention=retention, note=note)


async def list_checkpoints(
    client: OpenAIClient, job_id: str, *, after: str | None = None, progress: Progress | None = None
) -> CheckpointList:
    job, collected = await _job_and_checkpoints(client, job_id, after=after, progress=progress)
    checkpoints = _by_step(collected.items)
    return CheckpointList(
        job_id=job_id,
        status=job.status,
        count=len(checkpoints),
        pages_fetched=collected.pages_fetched,
        truncated=collected.truncated,
        next_after=collected.next_after,
        checkpoints=[CheckpointInfo.from_checkpoint(c) for c in checkpoints],
        coverage=coverage_of(job, checkpoints),
    )


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
    if status in _STILL_RUNNING:
        return (f"The job is {status} and has not saved a checkpoint yet; checkpoints appear at the end of each "
                "epoch. Call again later.")
    return f"The job (status {status}) has no checkpoints to rank."


async def best_checkpoint(
    client: OpenAIClient,
    job_id: str,
    *,
    metric: str,
    goal: Goal | None,
    top_k: int,
    progress: Progress | None = None,
) -> BestCheckpointResult:
    job, collected = await _job_and_checkpoints(client, job_id, after=None, progress=progress)
    checkpoints = _by_step(collected.items)
    by_id = {c.id: c for c in checkpoints}
    candidates = [Candidate(c.id, c.step, c.metrics or {}) for c in checkpoints]

    def result(rationale: str, **fields: Any) -> BestCheckpointResult:
        unranked: dict[str, Any] = {
            "best": None, "metric": None, "goal": None, "ranking": [], "excluded": [], "best_is_final": None,
        }
        return BestCheckpointResult(
            job_id=job_id,
            status=job.status,
            final_model=job.fine_tuned_model,
            checkpoints_considered=len(checkpoints),
            truncated=collected.truncated,
            rationale=rationale,
            **(unranked | fields),
        )

    if not checkpoints:
        return result(_no_checkpoints_reason(job), metric=None if metric == "auto" else metric,
                      goal=goal.value if goal else None)
    present = numeric_keys(candidates)
    try:
        choice = choose_metric(metric, goal, method_type=job.method_type, present=present)
    except MetricChoiceError as exc:
        raise invalid_argument(str(exc)) from None
    if choice is None:
        return result(
            f"No checkpoint has {', '.join(auto_order(job.method_type))} (metrics present: "
            f"{', '.join(sorted(present)) or 'none'}); call again with metric=<one of those> and goal='min' or 'max'.",
            excluded=[ExcludedCheckpoint(id=c.id, step_number=c.step, reason="has none of the metrics auto ranks by")
                      for c in checkpoints],
        )
    ranking = rank(candidates, choice)
    chosen: dict[str, Any] = {
        "metric": choice.metric,
        "goal": choice.goal.value,
        "excluded": [ExcludedCheckpoint(id=e.id, step_number=e.step, reason=e.reason) for e in ranking.excluded],
    }
    best = ranking.best
    if best is None:
        return result(f"No checkpoint has a usable {choice.metric} value, so none can be ranked by it.", **chosen)
    best_is_final = best.id == checkpoints[-1].id
    sentences = [
        metric_reason(ranking, has_validation_file=job.has_validation_file),
        winner_sentence(
            ranking, last_step=checkpoints[-1].step, best_is_final=best_is_final,
            has_final_model=bool(job.fine_tuned_model),
        ),
        exclusion_note(ranking),
    ]
    if collected.truncated:
        sentences.append(
            f"Only the {len(checkpoints)} most recent checkpoints were read (the server's --max-items cap); "
            "older ones were not ranked."
        )
    info = CheckpointInfo.from_checkpoint(by_id[best.id])
    return result(
        " ".join(s for s in sentences if s),
        best=BestCheckpoint(**info.model_dump(), job_id=job_id),
        ranking=[CheckpointInfo.from_checkpoint(by_id[c.id]) for c in ranking.ranked[:top_k]],
        best_is_final=best_is_final,
        **chosen,
    )
