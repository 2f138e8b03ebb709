"""What each tool does: ask the API (through `OpenAIClient`), hand plain models to `analysis`,
and build the output model. No MCP here; progress is reported through a callback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .analysis.metrics import Goal, auto_order, finite_number
from .analysis.ranking import Candidate, MetricChoiceError, choose_metric, numeric_keys, rank
from .analysis.rationale import exclusion_note, metric_reason, winner_sentence
from .api.cache import ACTIVE_STATUSES
from .api.models import Checkpoint, Event, Job, by_step
from .api.pagination import OnPage, Page, collect_pages
from .api.store import JobStore
from .errors import invalid_argument
from .inputs import parse_iso_time
from .outputs import (
    BestCheckpoint,
    BestCheckpointResult,
    CheckpointInfo,
    CheckpointList,
    Coverage,
    EventInfo,
    EventList,
    ExcludedCheckpoint,
    JobDetail,
    JobList,
    JobSummary,
    iso,
)

Progress = Callable[[float, float | None, str], Awaitable[None]]

JOBS_PAGE_SIZE = 100
JOBS_SCAN_MAX_PAGES = 10
"""Pages of jobs one list_jobs call reads at most when filters the API cannot apply thin them out."""


def _page_progress(progress: Progress | None, noun: str) -> OnPage | None:
    """Report each fetched page as an MCP progress notification (total unknown)."""
    if progress is None:
        return None
    report = progress

    async def on_page(pages: int, items: int) -> None:
        await report(pages, None, f"read {pages} page{'s' if pages != 1 else ''}, {items} {noun}")

    return on_page


@dataclass(frozen=True)
class JobFilter:
    """What list_jobs and compare_jobs select by, besides the metadata filter the API applies itself."""

    status: str | None = None
    model: str | None = None
    suffix: str | None = None
    created_after: int | None = None
    created_before: int | None = None

    @property
    def client_side(self) -> bool:
        return any(v is not None for v in (self.status, self.model, self.suffix, self.created_before))

    def keep(self, job: Job) -> bool:
        if self.status is not None and job.status != self.status:
            return False
        if self.model is not None and not base_model_matches(self.model, job.model):
            return False
        if self.suffix is not None and job.suffix != self.suffix:
            return False
        return not (self.created_before is not None and (job.created_at or 0) >= self.created_before)

    def past_the_end(self, job: Job) -> bool:
        """The listing is newest first: once a job is older than created_after, so is every later one."""
        return self.created_after is not None and job.created_at is not None and job.created_at < self.created_after


def base_model_matches(wanted: str, model: str | None) -> bool:
    """`wanted` names `model` exactly, or a model family or date prefix of its snapshot: "gpt-4o" matches
    gpt-4o-2024-08-06 but not gpt-4o-mini-2024-07-18; "gpt-4o-mini" and "gpt-4o-mini-2024" match the latter.
    Case-insensitive."""
    wanted, model = wanted.lower(), (model or "").lower()
    if model == wanted:
        return True
    rest = model[len(wanted) :] if model.startswith(wanted) else ""
    return (rest[:1] == "-" and rest[1:2].isdigit()) or (wanted.endswith("-") and model.startswith(wanted))


def job_filter(
    *,
    status: str | None = None,
    model: str | None = None,
    suffix: str | None = None,
    created_after: str | None = None,
    created_before: str | None = None,
) -> JobFilter:
    """Check and convert the filter arguments (no request is made on bad input)."""
    try:
        after = parse_iso_time("created_after", created_after) if created_after else None
        before = parse_iso_time("created_before", created_before) if created_before else None
    except ValueError as exc:
        raise invalid_argument(str(exc)) from None
    if after is not None and before is not None and after >= before:
        raise invalid_argument(
            f"created_after ({created_after}) must be earlier than created_before ({created_before})."
        )
    return JobFilter(status=status, model=model, suffix=suffix, created_after=after, created_before=before)


async def list_jobs(
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
    client = store.client
    # With created_after, one job more than asked for shows whether an older one (the end) comes next.
    size = JOBS_PAGE_SIZE if where.client_side else min(max_results + (where.created_after is not None), JOBS_PAGE_SIZE)

    async def fetch(cursor: str | None) -> Page[Job]:
        return await client.list_jobs_page(limit=size, after=cursor, metadata=metadata)

    collected = await collect_pages(
        fetch,
        max_items=max_results,
        after=after,
        what="fine-tuning jobs",
        keep=where.keep if where.client_side else None,
        stop_at=where.past_the_end if where.created_after is not None else None,
        max_pages=JOBS_SCAN_MAX_PAGES,
        on_page=_page_progress(progress, "matching jobs"),
    )
    return JobList(
        jobs=[JobSummary.from_job(job) for job in collected.items],
        has_more=collected.truncated,
        next_after=collected.next_after,
        scanned=collected.scanned,
    )


async def get_job(store: JobStore, job_id: str, *, refresh: bool = False) -> JobDetail:
    return JobDetail.from_job(await store.job(job_id, refresh=refresh))


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
    if not has_validation:
        note = (
            "No validation file, so there are no valid_*/full_valid_* metrics: only training metrics, which "
            "cannot show overfitting."
        )
    elif not any(key.startswith(("full_valid", "valid")) for key in present) and checkpoints:
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


async def list_checkpoints(
    store: JobStore, job_id: str, *, after: str | None = None, refresh: bool = False, progress: Progress | None = None
) -> CheckpointList:
    job, collected = await store.job_and_checkpoints(
        job_id, after=after, refresh=refresh, on_page=_page_progress(progress, "checkpoints")
    )
    checkpoints = by_step(collected.items)
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


async def best_checkpoint(
    store: JobStore,
    job_id: str,
    *,
    metric: str,
    goal: Goal | None,
    top_k: int,
    refresh: bool = False,
    progress: Progress | None = None,
) -> BestCheckpointResult:
    job, collected = await store.job_and_checkpoints(
        job_id, refresh=refresh, on_page=_page_progress(progress, "checkpoints")
    )
    checkpoints = by_step(collected.items)
    by_id = {c.id: c for c in checkpoints}
    candidates = [Candidate(c.id, c.step, c.metrics or {}) for c in checkpoints]

    def result(rationale: str, **fields: Any) -> BestCheckpointResult:
        unranked: dict[str, Any] = {
            "best": None,
            "metric": None,
            "goal": None,
            "ranking": [],
            "excluded": [],
            "best_is_final": None,
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
        return result(
            _no_checkpoints_reason(job), metric=None if metric == "auto" else metric, goal=goal.value if goal else None
        )
    present = numeric_keys(candidates)
    try:
        choice = choose_metric(metric, goal, method_type=job.method_type, present=present)
    except MetricChoiceError as exc:
        raise invalid_argument(str(exc)) from None
    if choice is None:
        return result(
            f"No checkpoint has {', '.join(auto_order(job.method_type))} (metrics present: "
            f"{', '.join(sorted(present)) or 'none'}); call again with metric=<one of those> and goal='min' or 'max'.",
            excluded=[
                ExcludedCheckpoint(id=c.id, step_number=c.step, reason="has none of the metrics auto ranks by")
                for c in checkpoints
            ],
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
    is_last = best.id == checkpoints[-1].id
    keeps_best = job.method_type == "reinforcement"
    best_is_final = final_model_answer(job, is_last)
    sentences = [
        metric_reason(ranking, has_validation_file=job.has_validation_file),
        winner_sentence(
            ranking,
            last_step=checkpoints[-1].step,
            best_is_final=is_last,
            has_final_model=bool(job.fine_tuned_model),
            keeps_best=keeps_best,
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


EVENTS_SCAN_MAX_PAGES = 10


def _event_metrics(event: Event) -> dict[str, float] | None:
    """The numeric top-level values of a metrics event's data (nested breakdowns of reinforcement jobs are left out)."""
    data = event.data or {}
    numbers = {key: number for key, value in data.items() if (number := finite_number(value)) is not None}
    return numbers or None


async def list_events(
    store: JobStore,
    job_id: str,
    *,
    level: str | None,
    limit: int,
    after: str | None,
    progress: Progress | None = None,
) -> EventList:
    """The job's events, newest first. With `level` (the API cannot filter), pages of 100 are scanned."""
    client = store.client

    async def fetch(cursor: str | None) -> Page[Event]:
        return await client.list_events_page(job_id, limit=limit if level is None else JOBS_PAGE_SIZE, after=cursor)

    collected = await collect_pages(
        fetch,
        max_items=limit,
        after=after,
        what=f"events of job {job_id}",
        keep=None if level is None else (lambda event: event.level == level),
        max_pages=1 if level is None else EVENTS_SCAN_MAX_PAGES,
        on_page=None if level is None else _page_progress(progress, "matching events"),
    )
    return EventList(
        job_id=job_id,
        events=[
            EventInfo(created_at=iso(e.created_at), level=e.level, message=e.message, metrics=_event_metrics(e))
            for e in collected.items
        ],
        has_more=collected.truncated,
        next_after=collected.next_after,
        scanned=collected.scanned,
    )
