"""The model inventory: list_fine_tuned_models (every fine-tuned model the account can call, the job and best
checkpoint behind it, and when its base model shuts down)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import aclosing
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from .. import shutdowns
from ..api.models import Job, Model
from ..api.store import JobStore
from ..config import Settings, is_azure_host
from ..errors import CheckpointsError
from ..state import AppState
from .checkpoints import pick_best
from .common import ToolResult, finish, iso, store_of, tool

Platform = Literal["openai", "azure", "other"]

ADVICE_DAYS = 90
"""A shutdown (or the end of new jobs) this close gets a line of advice."""
JOBS_SCAN_MAX_PAGES = 20
"""Pages of 100 jobs read at most to find the jobs behind the models."""
BEST_CONCURRENCY = 8


def today() -> date:
    """Today in UTC (tests replace it)."""
    return datetime.now(UTC).date()


class ProducingJob(BaseModel):
    id: str = Field(description="The fine-tuning job that produced the model.")
    suffix: str | None
    base_model: str | None = Field(description="The job's base model.")
    finished_at: str | None = Field(description="ISO 8601 UTC.")
    method: str = Field(description="supervised, dpo or reinforcement.")


class BestOfJob(BaseModel):
    model: str | None = Field(description="The model name to call or deploy the best checkpoint by.")
    step_number: int | None
    metric: str | None = Field(description="The metric it was ranked by (as best_checkpoint's metric=auto).")
    is_final_model: bool | None = Field(
        description="Whether the best checkpoint is this model itself (the job's last step); false: an earlier "
        "checkpoint did better, deploy `model` instead. Null when unknown (e.g. reinforcement jobs)."
    )


class FineTunedModel(BaseModel):
    id: str = Field(description="The model name to call (ft:... on OpenAI, <base>.ft-<hex> on Azure).")
    created_at: str | None = Field(description="ISO 8601 UTC.")
    owned_by: str | None
    base_model: str | None = Field(description="From the job, else from the model's name.")
    job: ProducingJob | None = Field(description="The job whose fine_tuned_model this is; null when not found.")
    best_checkpoint: BestOfJob | None = Field(
        description="The job's best checkpoint, when its checkpoints carry metrics; null otherwise."
    )
    shutdown_date: str | None = Field(
        description="When the base model, and so this model, stops answering (YYYY-MM-DD); null when not known."
    )
    days_left: int | None = Field(description="Days from today (UTC) to shutdown_date; negative once past.")
    shutdown_source: Literal["api", "table"] | None = Field(
        description="api: the /models object reports it; table: the bundled (or user's) table of shutdown dates."
    )


class NewJobs(BaseModel):
    platform: Literal["openai", "azure", "other"]
    accepting_new_jobs: bool | None = Field(
        description="Whether the platform still takes new fine-tuning jobs; null when not known (Azure, others)."
    )
    new_jobs_end: str | None = Field(description="The day from which it takes none (YYYY-MM-DD), when known.")
    days_left: int | None = Field(description="Days from today (UTC) to new_jobs_end.")


class FineTunedModelList(ToolResult):
    count: int = Field(description="Fine-tuned models listed.")
    models: list[FineTunedModel] = Field(description="Soonest shutdown first; models without a known date last.")
    new_jobs: NewJobs
    advice: list[str] = Field(description="One line per deadline within 90 days, to quote to the user.")
    shutdown_table: str = Field(description="Where dates not reported by the API come from, and as of when.")
    jobs_scanned: int = Field(description="Jobs read to find the jobs behind the models.")
    today: str = Field(description="The day (UTC) days_left counts from.")


def base_from_name(model_id: str) -> str | None:
    """``ft:<base>:<org>:<suffix>:<id>`` or ``<base>.ft-<hex>``: the base model."""
    if model_id.startswith("ft:"):
        parts = model_id.split(":")
        return parts[1] or None if len(parts) > 1 else None
    if ".ft-" in model_id:
        return model_id.split(".ft-", 1)[0] or None
    return None


def platform_of(settings: Settings, models: list[Model], archived_from: str | None = None) -> Platform:
    """The platform the models are on; `archived_from`: the base URL an archive was made from (offline)."""
    openai_names = any(m.id.startswith("ft:") for m in models)
    base_url = archived_from or settings.base_url
    azure = is_azure_host(base_url) if archived_from else settings.azure
    if azure or (not openai_names and any(".ft-" in m.id for m in models)):
        return "azure"  # Azure's endpoint, or its <base>.ft-<hex> names behind another URL
    host = (urlsplit(base_url).hostname or "").lower()
    if settings.demo or host.endswith("openai.com") or openai_names:
        return "openai"
    return "other"


def new_jobs_of(platform: Platform, now: date) -> NewJobs:
    if platform != "openai":
        return NewJobs(platform=platform, accepting_new_jobs=None, new_jobs_end=None, days_left=None)
    end = shutdowns.OPENAI_NEW_JOBS_END
    return NewJobs(
        platform=platform, accepting_new_jobs=now < end, new_jobs_end=end.isoformat(), days_left=(end - now).days
    )


async def _jobs_for(store: JobStore, names: set[str]) -> tuple[dict[str, Job], int]:
    """The jobs whose fine_tuned_model is one of `names` (newest first wins), and how many jobs were read."""
    found: dict[str, Job] = {}
    scanned = 0
    pages = 0
    async with aclosing(store.job_pages(page_size=100)) as listing:
        async for page in listing:
            pages += 1
            for job in page.jobs:
                scanned += 1
                if job.fine_tuned_model in names and job.fine_tuned_model not in found:
                    found[job.fine_tuned_model] = job
            if len(found) == len(names) or (pages >= JOBS_SCAN_MAX_PAGES and not store.offline):
                break
    return found, scanned


async def _best_of(store: JobStore, jobs: list[Job]) -> dict[str, BestOfJob]:
    """Each job's best checkpoint (metric=auto), for the jobs whose checkpoints can be ranked."""
    found: dict[str, BestOfJob] = {}
    limiter = anyio.CapacityLimiter(BEST_CONCURRENCY)

    async def one(job: Job) -> None:
        async with limiter:
            try:
                result = await pick_best(store, job.id, metric="auto", goal=None, top_k=1)
            except CheckpointsError:
                return  # the model is still listed; only its best checkpoint is unknown
        if result.best is not None:
            found[job.id] = BestOfJob(
                model=result.best.fine_tuned_model_checkpoint,
                step_number=result.best.step_number,
                metric=result.metric,
                is_final_model=result.best_is_final,
            )

    async with anyio.create_task_group() as group:
        for job in jobs:
            group.start_soon(one, job)
    return found


def _entry(
    model: Model, job: Job | None, best: BestOfJob | None, table: shutdowns.ShutdownTable, now: date
) -> FineTunedModel:
    base = (job.model if job is not None else None) or base_from_name(model.id)
    extra: Mapping[str, Any] = model.model_extra or {}
    reported = shutdowns.reported_by_api(extra)
    shutdown = reported or table.lookup(base)
    return FineTunedModel(
        id=model.id,
        created_at=iso(model.created),
        owned_by=model.owned_by,
        base_model=base,
        job=None
        if job is None
        else ProducingJob(
            id=job.id, suffix=job.suffix, base_model=job.model, finished_at=iso(job.finished_at), method=job.method_type
        ),
        best_checkpoint=best,
        shutdown_date=shutdown.isoformat() if shutdown else None,
        days_left=(shutdown - now).days if shutdown else None,
        shutdown_source=("api" if reported else "table") if shutdown else None,
    )


def _advice(models: list[FineTunedModel], new_jobs: NewJobs) -> list[str]:
    lines: list[str] = []
    if new_jobs.accepting_new_jobs and new_jobs.days_left is not None and new_jobs.days_left <= ADVICE_DAYS:
        lines.append(
            f"OpenAI takes no new fine-tuning jobs from {new_jobs.new_jobs_end} ({new_jobs.days_left} days): "
            "start any retraining you need before then."
        )
    for entry in models:
        if entry.days_left is None or entry.days_left > ADVICE_DAYS:
            continue
        if entry.days_left < 0:
            lines.append(
                f"{entry.id} was due to shut down on {entry.shutdown_date} (base model {entry.base_model}); "
                "calls to it fail or soon will: move its traffic to another model."
            )
        else:
            lines.append(
                f"{entry.id} shuts down on {entry.shutdown_date} ({entry.days_left} days; base model "
                f"{entry.base_model}): plan its replacement and record its answers while it still runs."
            )
    return lines


async def inventory(store: JobStore, settings: Settings, now: date) -> FineTunedModelList:
    table = shutdowns.load(settings.shutdowns_file)
    listed = (await store.models()).items
    fine_tuned = [m for m in listed if m.is_fine_tuned]
    jobs, scanned = await _jobs_for(store, {m.id for m in fine_tuned}) if fine_tuned else ({}, 0)
    best = await _best_of(store, list(jobs.values()))
    entries = []
    for model in fine_tuned:
        job = jobs.get(model.id)
        entries.append(_entry(model, job, best.get(job.id) if job else None, table, now))
    entries.sort(key=lambda e: (e.shutdown_date is None, e.shutdown_date or "", e.id))
    new_jobs = new_jobs_of(platform_of(settings, fine_tuned, store.origin.base_url if store.origin else None), now)
    return FineTunedModelList(
        count=len(entries),
        models=entries,
        new_jobs=new_jobs,
        advice=_advice(entries, new_jobs),
        shutdown_table=table.source,
        jobs_scanned=scanned,
        today=now.isoformat(),
    )


LIST_FINE_TUNED_MODELS = """Answer "which fine-tuned models do I have, and how long do they keep working?". Lists every
fine-tuned model the account can call (GET /models), each joined to the job that produced it (suffix, base model,
method) and to that job's best checkpoint (the model name to deploy, and whether it is the final model), with the
base model's shutdown date and the days left: from the API when it reports one, else from a bundled table of OpenAI's
announced dates (unknown dates stay null). Soonest shutdown first; `advice` has a line for every deadline within 90
days, and `new_jobs` says whether the platform still takes new fine-tuning jobs."""


@tool(title="List fine-tuned models and their shutdown dates", description=LIST_FINE_TUNED_MODELS)
async def list_fine_tuned_models(ctx: Context[AppState]) -> FineTunedModelList:
    state = ctx.request_context.lifespan_context
    result = await inventory(store_of(ctx), state.settings, today())
    return finish(ctx, result)
