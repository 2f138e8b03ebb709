"""compare_jobs: a leaderboard of many jobs (a sweep), read concurrently and ranked like with like.

Jobs are chosen by explicit ids or by a filter over the job listing. Each chosen job's
checkpoints are read as soon as the job is found, while the listing goes on, so the
listing's pages (which must be sequential: each cursor depends on the last) overlap
with the per-job reads. The client bounds the requests in flight (``--concurrency``).
A job that fails to read is reported in `failed` and the rest are still compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

import anyio
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from ..analysis.budget import TOKENS_TOLERANCE, RunBudget, footing_sentence, leaderboard_budget_warnings
from ..analysis.leaderboard import JobBest, JobCandidate, Leaderboard, build_leaderboard, leaderboard_rationale
from ..analysis.metrics import Goal
from ..api.models import Checkpoint, Job, by_step
from ..api.store import JobStore
from ..errors import CheckpointsError, invalid_argument
from ..state import AppState
from .arguments import GoalArg, JobFilter, JobId, JobStatus, Metadata, Metric, Refresh, checked_goal, job_filter
from .checkpoints import candidates_of, final_model_answer
from .common import Progress, ToolResult, finish, store_of, tool
from .jobs import JOBS_PAGE_SIZE


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
    jobs_scanned: int = Field(
        description="Jobs read from the listing to find them (0 for explicit ids); from an archive: the jobs it holds, "
        "all searched."
    )
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
    warnings: list[str] = Field(
        description="Where jobs ranked against each other differ in base model, n_epochs, batch_size or trained "
        f"tokens (by more than {TOKENS_TOLERANCE:.0%}): a win across such differences may come from them rather than "
        "from what the sweep varied. Empty: equal footing."
    )
    rationale: str = Field(description="Who won and why, what was ranked separately, in sentences to quote.")
    upstream_requests: int = Field(description="API requests this call made (0 when everything came from the cache).")
    listing_age_seconds: float | None = Field(
        default=None,
        description="When the job listing was reused from the cache: its age in seconds (refresh=true re-reads it).",
    )


COMPARE_SCAN_MAX_PAGES = 20
"""Listing pages (of 100 jobs) compare_jobs reads at most to find the jobs of a filter (from an archive: no limit)."""
COMPARE_MAX_JOBS = 100
"""Jobs one compare_jobs call reads from the live API at most (each costs requests)."""
COMPARE_MAX_JOBS_OFFLINE = 1000
"""Jobs one compare_jobs call ranks at most from an archive (no requests: only the size of the answer)."""


@dataclass(frozen=True)
class _Loaded:
    job: Job
    checkpoints: list[Checkpoint]
    """By step."""


@dataclass
class _Work:
    """What the concurrent reads gather, in selection order."""

    order: list[str] = field(default_factory=list)
    loaded: dict[str, _Loaded] = field(default_factory=dict)
    failed: dict[str, CheckpointsError] = field(default_factory=dict)
    scanned: int = 0
    truncated: bool = False
    scan_limited: bool = False
    """The truncation came from the listing scan limit, not from max_jobs."""
    listing_age: float | None = None
    other_statuses: dict[str, int] = field(default_factory=dict)
    """Jobs that match every filter but status, by their status (the sweep's runs still going, or failed)."""
    listing_done: bool = False
    reported: int = -1
    """The last progress value sent."""

    @property
    def done(self) -> int:
        return len(self.loaded) + len(self.failed)


def describe_selection(job_ids: Sequence[str] | None, where: JobFilter, metadata: Mapping[str, str] | None) -> str:
    if job_ids:
        return f"{len(job_ids)} job id{'s' if len(job_ids) != 1 else ''}"
    parts = []
    if where.suffix is not None:
        parts.append(f"suffix={where.suffix!r}")
    if metadata:
        parts.append(f"metadata={dict(metadata)!r}")
    if where.model is not None:
        parts.append(f"model={where.model!r}")
    parts.append(f"status={where.status or 'any'}")
    return ", ".join(parts)


async def rank_jobs(
    store: JobStore,
    *,
    job_ids: Sequence[str] | None,
    where: JobFilter,
    metadata: Mapping[str, str] | None,
    metric: str,
    goal: Goal | None,
    max_jobs: int,
    refresh: bool = False,
    progress: Progress | None = None,
) -> CompareJobsResult:
    """Rank the chosen jobs by their best checkpoints (see `analysis.leaderboard`)."""
    if job_ids and (where.suffix is not None or metadata or where.model is not None):
        raise invalid_argument("give either job_ids or a filter (suffix, metadata, model), not both.")
    if not job_ids and where.suffix is None and not metadata and where.model is None:
        raise invalid_argument(
            "say which jobs to compare: job_ids=[...], or a filter: suffix='...', metadata={...} and/or "
            "model='...' (list_jobs shows suffixes, metadata and models)."
        )
    if not store.offline and max(max_jobs, len(job_ids or ())) > COMPARE_MAX_JOBS:
        what = f"{len(job_ids or ())} job_ids" if len(job_ids or ()) > COMPARE_MAX_JOBS else f"max_jobs={max_jobs}"
        raise invalid_argument(
            f"{what}: the live API is compared {COMPARE_MAX_JOBS} jobs at most per call (up to "
            f"{COMPARE_MAX_JOBS_OFFLINE} from an archive, with --archive). Narrow the filter, or split the jobs."
        )
    work = _Work()
    listing_error: CheckpointsError | None = None
    with store.count_requests() as requests:
        async with anyio.create_task_group() as group:

            async def report() -> None:
                # MCP requires each progress value to exceed the last: the end of the listing, which only learns
                # the total, must not repeat the count a finished read already reported.
                if progress is None or work.done <= work.reported:
                    return
                work.reported = work.done
                total = len(work.order) if work.listing_done else None
                await progress(work.done, total, f"{work.done} of {len(work.order)} jobs read")

            async def load(job_id: str, listed: Job | None) -> None:
                """`listed`: the job object when it can be trusted as it is, else None (read it afresh)."""
                try:
                    if listed is not None:
                        collected = await store.checkpoints_of(listed, refresh=refresh)
                        work.loaded[job_id] = _Loaded(listed, by_step(collected.items))
                    else:  # by id, or an unfinished job seen in a cached listing
                        job, collected = await store.job_and_checkpoints(job_id, refresh=refresh)
                        work.loaded[job_id] = _Loaded(job, by_step(collected.items))
                except CheckpointsError as exc:
                    work.failed[job_id] = exc
                await report()

            if job_ids:
                for job_id in dict.fromkeys(job_ids):  # distinct, in the order given
                    work.order.append(job_id)
                    group.start_soon(load, job_id, None)
                work.listing_done = True
            else:

                def start(job_id: str, listed: Job | None) -> None:
                    group.start_soon(load, job_id, listed)

                try:
                    await _select(store, work, where, metadata, max_jobs, refresh, start)
                except CheckpointsError as exc:  # raised below, not from inside the task group (an ExceptionGroup)
                    listing_error = exc
                    group.cancel_scope.cancel()
                else:
                    work.listing_done = True
                    if store.origin is not None:  # the archive searched all its jobs
                        work.scanned = store.origin.jobs
                    await report()
    if listing_error is not None:
        raise listing_error  # the selection is unknown: a partial leaderboard would mislead
    if not work.loaded and work.failed:
        raise next(work.failed[job_id] for job_id in work.order if job_id in work.failed)  # the first says why
    return _result(work, job_ids, where, metadata, metric, goal, requests[0])


async def _select(
    store: JobStore,
    work: _Work,
    where: JobFilter,
    metadata: Mapping[str, str] | None,
    max_jobs: int,
    refresh: bool,
    start: Callable[[str, Job | None], None],
) -> None:
    """Walk the listing (newest first), starting a read for each job that matches, up to `max_jobs`. A job object
    is handed on only when it can be trusted: read just now, finished, or read again (`_recheck_unfinished`)."""
    pages = 0
    but_status = replace(where, status=None)
    listing_pages = store.job_pages(page_size=JOBS_PAGE_SIZE, metadata=metadata, refresh=refresh, where=but_status)
    async with aclosing(listing_pages) as listing:
        async for page in listing:
            pages += 1
            jobs = page.jobs
            rechecked: set[str] = set()
            if page.cached_age is not None:
                work.listing_age = page.cached_age
                if where.status is not None:
                    jobs, rechecked = await _recheck_unfinished(store, but_status, jobs)
            for job in jobs:
                if where.past_the_end(job):
                    return
                work.scanned += 1
                if not where.keep(job):
                    if where.status is not None and but_status.keep(job):
                        status = job.status or "unknown"
                        work.other_statuses[status] = work.other_statuses.get(status, 0) + 1
                    continue
                if len(work.order) == max_jobs:
                    work.truncated = True
                    return
                work.order.append(job.id)
                trusted = page.cached_age is None or job.is_finished or job.id in rechecked
                start(job.id, job if trusted else None)
            if pages >= COMPARE_SCAN_MAX_PAGES and page.more and not store.offline:
                work.truncated = work.scan_limited = True
                return


async def _recheck_unfinished(
    store: JobStore, but_status: JobFilter, jobs: tuple[Job, ...]
) -> tuple[tuple[Job, ...], set[str]]:
    """A cached listing's unfinished jobs may have changed status since it was read: read afresh those the status
    filter would decide on (they pass `but_status`), so a job's old status never selects it or leaves it out
    (running jobs are never served stale). Returns the jobs and the ids read again; a job that cannot be read
    stays as listed and, if selected, its own read reports the error."""
    stale = [index for index, job in enumerate(jobs) if not job.is_finished and but_status.keep(job)]
    fresh = list(jobs)
    rechecked: set[str] = set()

    async def reread(index: int) -> None:
        try:
            fresh[index] = await store.job(jobs[index].id)
        except CheckpointsError:
            return
        rechecked.add(jobs[index].id)

    async with anyio.create_task_group() as group:
        for index in stale:
            group.start_soon(reread, index)
    return tuple(fresh), rechecked


def _label(job: Job) -> str | None:
    """The job in a few words for the rationale: its suffix and the hyperparameters a sweep varies."""
    hp = SweepHyperparameters.from_job(job)
    parts = [job.suffix] if job.suffix else []
    for value, shown in ((hp.learning_rate_multiplier, "lr {}"), (hp.n_epochs, "{} epochs"), (hp.beta, "beta {}")):
        if value not in (None, "auto"):
            parts.append(shown.format(value))
    return ", ".join(parts) or None


def _budget(job: Job) -> RunBudget:
    hp = SweepHyperparameters.from_job(job)
    return RunBudget(
        job.id, model=job.model, n_epochs=hp.n_epochs, batch_size=hp.batch_size, trained_tokens=job.trained_tokens
    )


def _result(
    work: _Work,
    job_ids: Sequence[str] | None,
    where: JobFilter,
    metadata: Mapping[str, str] | None,
    metric: str,
    goal: Goal | None,
    requests: int,
) -> CompareJobsResult:
    loaded = [work.loaded[job_id] for job_id in work.order if job_id in work.loaded]
    candidates = [
        JobCandidate(
            item.job.id,
            item.job.method_type,
            candidates_of(item.checkpoints),
            label=_label(item.job),
        )
        for item in loaded
    ]
    board = build_leaderboard(candidates, metric=metric, goal=goal)
    by_id = {item.job.id: item for item in loaded}
    leaderboard = _entries(board, by_id)
    failed = [
        JobFailure(job_id=job_id, error=work.failed[job_id].text) for job_id in work.order if job_id in work.failed
    ]
    top = board.groups[0] if board.groups else None
    selection = describe_selection(job_ids, where, metadata)
    budgets = {item.job.id: _budget(item.job) for item in loaded}
    warnings = leaderboard_budget_warnings(board, budgets)
    if work.order:
        rationale = leaderboard_rationale(board, failed=len(failed))
        footing = footing_sentence(board, warnings)
        if footing:
            rationale += f" {footing}"
    else:
        rationale = (
            f"No job matched ({selection}) among the {work.scanned} jobs read; list_jobs shows the jobs' "
            "suffixes, metadata and statuses."
        )
    if work.other_statuses:
        count = sum(work.other_statuses.values())
        statuses = ", ".join(f"{n} {status}" for status, n in sorted(work.other_statuses.items()))
        rationale += (
            f" {count} other job{'s' if count != 1 else ''} of this selection {'were' if count != 1 else 'was'} left "
            f"out by status={where.status} ({statuses}); status='any' includes {'them' if count != 1 else 'it'}."
        )
    if work.scan_limited:
        rationale += (
            f" Only the newest {work.scanned} jobs were searched (at most {COMPARE_SCAN_MAX_PAGES} listing pages per "
            "call), so older matching jobs were not compared; select by metadata (which the API filters) or by "
            "job_ids to reach them."
        )
    elif work.truncated:
        rationale += (
            f" Only the newest {len(work.order)} matching jobs were compared (max_jobs={len(work.order)}); raise "
            "max_jobs to include older ones."
        )
    return CompareJobsResult(
        selection=selection,
        jobs_compared=len(loaded),
        jobs_scanned=work.scanned,
        truncated=work.truncated,
        metric=top.metric if top else None,
        goal=top.goal.value if top else None,
        winner=_winner(leaderboard[0]) if board.winner is not None else None,
        leaderboard=leaderboard,
        failed=failed,
        warnings=[warning.text for warning in warnings],
        rationale=rationale,
        upstream_requests=requests,
        listing_age_seconds=round(work.listing_age, 1) if work.listing_age is not None else None,
    )


def leaderboard_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """A checkpoint's metrics for comparing jobs: a per-batch ``valid_*`` metric is left out when its whole-set
    ``full_valid_*`` counterpart is there, since one batch's value invites misleading comparisons across jobs."""
    return {
        name: value for name, value in metrics.items() if not (name.startswith("valid_") and f"full_{name}" in metrics)
    }


def _winner(entry: LeaderboardEntry) -> Winner:
    assert entry.best_checkpoint is not None and entry.metric is not None
    best = entry.best_checkpoint
    return Winner(
        job_id=entry.job_id,
        metric=entry.metric,
        value=entry.value,
        best_checkpoint=CheckpointRef(
            id=best.id, step_number=best.step_number, fine_tuned_model_checkpoint=best.fine_tuned_model_checkpoint
        ),
    )


def _entries(board: Leaderboard, by_id: dict[str, _Loaded]) -> list[LeaderboardEntry]:
    entries: list[LeaderboardEntry] = []
    for group in board.groups:
        for position, best in enumerate(group.entries, start=1):
            entries.append(_entry(best, by_id[best.job_id], position))
    entries.extend(_entry(best, by_id[best.job_id], None) for best in board.unranked)
    return entries


def _entry(best: JobBest, loaded: _Loaded, rank: int | None) -> LeaderboardEntry:
    job, checkpoints = loaded.job, loaded.checkpoints
    info = None
    best_is_final = None
    if best.best is not None:
        checkpoint = next(c for c in checkpoints if c.id == best.best.id)
        info = RankedCheckpoint(
            id=checkpoint.id,
            step_number=checkpoint.step,
            fine_tuned_model_checkpoint=checkpoint.fine_tuned_model_checkpoint,
            metrics=leaderboard_metrics(checkpoint.numeric_metrics),
        )
        best_is_final = final_model_answer(job, checkpoint.id == checkpoints[-1].id)
    note = best.note
    if note is not None and not checkpoints and job.status != "succeeded":
        note = f"{note} (status {job.status})"
    return LeaderboardEntry(
        rank=rank,
        job_id=job.id,
        status=job.status,
        suffix=job.suffix,
        method=job.method_type,
        model=job.model,
        metric=best.metric,
        value=best.value,
        best_checkpoint=info,
        best_is_final=best_is_final,
        hyperparameters=SweepHyperparameters.from_job(job),
        trained_tokens=job.trained_tokens,
        has_validation_file=job.has_validation_file,
        checkpoints=len(checkpoints),
        note=note,
    )


COMPARE_JOBS = f"""Answer "which run of my sweep won, and with which checkpoint?". Compares jobs chosen by job_ids or
by a filter (suffix, metadata, model; status defaults to succeeded): for each, its best checkpoint by the same rules as
best_checkpoint, the metric value, hyperparameters (n_epochs, learning_rate_multiplier, batch_size, beta), trained
tokens and whether it has a validation file. Returns a leaderboard, best first, the winner and a rationale to quote.
Jobs are only ranked against jobs with the same metric and method: jobs without validation metrics are ranked
separately by train loss, never mixed with validation losses. A job that cannot be read is listed under failed; the
others are still compared. Reads up to {COMPARE_SCAN_MAX_PAGES * JOBS_PAGE_SIZE:,} listed jobs (from an archive: all);
finished jobs are cached, so asking again is instant."""


@tool(title="Compare jobs (a sweep)", description=COMPARE_JOBS)
async def compare_jobs(
    ctx: Context[AppState],
    job_ids: Annotated[
        list[JobId] | None,
        Field(
            description=f"The jobs to compare (their status does not matter; at most {COMPARE_MAX_JOBS}, or "
            f"{COMPARE_MAX_JOBS_OFFLINE} from an archive); or omit and give a filter.",
            min_length=1,
            max_length=COMPARE_MAX_JOBS_OFFLINE,
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
        int,
        Field(
            description=f"Compare at most this many matching jobs, the newest first (1-{COMPARE_MAX_JOBS}; up to "
            f"{COMPARE_MAX_JOBS_OFFLINE} from an archive).",
            ge=1,
            le=COMPARE_MAX_JOBS_OFFLINE,
        ),
    ] = 50,
    refresh: Refresh = False,
) -> CompareJobsResult:
    where = job_filter(status=None if status == "any" or job_ids else status, model=model, suffix=suffix)
    result = await rank_jobs(
        store_of(ctx),
        job_ids=job_ids,
        where=where,
        metadata=metadata,
        metric=metric,
        goal=checked_goal(metric, goal),
        max_jobs=max_jobs,
        refresh=refresh,
        progress=ctx.report_progress,
    )
    return finish(ctx, result)
