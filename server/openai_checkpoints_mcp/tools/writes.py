"""The opt-in write tools: cancel_job, pause_job and resume_job.

They change a job for real (their annotations say so: `WRITE`), so the server serves them only when it was
started with --allow-writes (or OPENAI_CHECKPOINTS_MCP_ALLOW_WRITES=1; see `server.served_tools`). Without it they
do not exist: no client can list or call them. Like the read tools they check the job id before any request; in demo
mode they act on the in-process demo data (and say so), so a demo user can try them.

A refusal by the API (cancelling a finished job, pausing a job that is not running, resuming one that is not
paused) becomes an ``invalid_argument`` error that says the job's current status and what the action needs.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mcp.server.mcpserver import Context
from pydantic import Field

from ..api.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Job
from ..api.store import JobStore
from ..errors import CheckpointsError, ErrorCode
from ..state import AppState
from .arguments import JobId
from .common import WRITE, ToolResult, finish, store_of, tool

_API_SAID = re.compile(r' The API said: ".*"(?: \(.*?\))?\.')  # as `api.errors` quotes it (Azure adds "(code ...)")


class JobChange(ToolResult):
    """The job as the API answered a cancel, pause or resume request."""

    id: str = Field(description="The job id.")
    status: str | None = Field(
        description="The job's status as the API answered the request: cancelled, paused, or queued after a resume "
        "(running follows); a cancel or pause may still show the old status for a moment, and a job that had "
        "already finished shows its final status (see message)."
    )
    model: str | None = Field(description="Base model.")
    fine_tuned_model: str | None = Field(description="Resulting model; null unless the job succeeded.")
    message: str = Field(description="What happened and what to expect next, in sentences to tell the user.")


def _cancel_outcome(job: Job) -> str:
    if job.status == "cancelled":
        return (
            f"Job {job.id} is cancelled: training has stopped and the job will not produce a fine-tuned model. "
            "This cannot be undone; to train again, a new fine-tuning job is needed."
        )
    if job.status in ACTIVE_STATUSES:
        return (
            f"The API accepted the cancellation of job {job.id} but still reports it as {job.status}: cancelling "
            "takes effect asynchronously, so it becomes cancelled shortly (get_job shows it). This cannot be undone."
        )
    return _unexpected_outcome(job, "cancellation")


def _pause_outcome(job: Job) -> str:
    if job.status == "paused":
        return (
            f"Job {job.id} is paused: training has stopped. resume_job continues it from its last checkpoint; "
            "cancel_job ends it for good."
        )
    if job.status in ACTIVE_STATUSES:
        return (
            f"The API accepted the pause of job {job.id} but still reports it as {job.status}: it becomes paused "
            "shortly (get_job shows it); then resume_job continues it."
        )
    return _unexpected_outcome(job, "pause")


def _resume_outcome(job: Job) -> str:
    if job.status in {"queued", "running", "validating_files"}:
        state = "queued and will be running again shortly" if job.status == "queued" else job.status
        return (
            f"Job {job.id} was resumed: it is {state}, continuing from its last checkpoint. get_job shows its "
            "progress, list_checkpoints its new checkpoints."
        )
    if job.status == "paused":
        return (
            f"The API accepted the resume of job {job.id} but still reports it as paused: it goes back to queued, "
            "then running, shortly (get_job shows it)."
        )
    return _unexpected_outcome(job, "resume")


def _unexpected_outcome(job: Job, request: str) -> str:
    """The answer to a write is a status the write does not lead to: a finished job (it ended before the request
    took effect, or the API answers so), or a status this server does not know. Says what the status is, never that
    the write is under way."""
    if job.status in TERMINAL_STATUSES:
        outcome = {
            "succeeded": "it has succeeded"
            + (f" (its fine-tuned model is {job.fine_tuned_model})" if job.fine_tuned_model else ""),
            "failed": "it has failed",
            "cancelled": "it has been cancelled",
        }[job.status]
        return (
            f"The API answered the {request} of job {job.id} with status {job.status}: the job has finished "
            f"({outcome}), so the {request} did not take effect and the job will not change any more."
        )
    shown = "no status" if job.status is None else f"status {job.status!r}, which this server does not know"
    return (
        f"The API answered the {request} of job {job.id} with {shown}, so whether the {request} took effect "
        "cannot be told: check the job with get_job before trying again."
    )


@dataclass(frozen=True)
class _Action:
    verb: str
    past: str
    accepted_from: frozenset[str]
    """The statuses the API accepts the action from."""
    already: frozenset[str]
    """The statuses in which the action has nothing left to do."""
    rule: str
    send: Callable[[JobStore, str], Awaitable[Job]]
    outcome: Callable[[Job], str]


_CANCEL = _Action(
    verb="cancel",
    past="cancelled",
    accepted_from=ACTIVE_STATUSES,
    already=frozenset({"cancelled"}),
    rule="only a job that is validating_files, queued, running or paused can be cancelled",
    send=JobStore.cancel_job,
    outcome=_cancel_outcome,
)
_PAUSE = _Action(
    verb="pause",
    past="paused",
    accepted_from=frozenset({"running"}),
    already=frozenset({"paused"}),
    rule="only a running job can be paused",
    send=JobStore.pause_job,
    outcome=_pause_outcome,
)
_RESUME = _Action(
    verb="resume",
    past="resumed",
    accepted_from=frozenset({"paused"}),
    already=frozenset({"queued", "running"}),
    rule="only a paused job can be resumed",
    send=JobStore.resume_job,
    outcome=_resume_outcome,
)


async def perform(store: JobStore, job_id: str, action: _Action) -> JobChange:
    """Send the action and describe the job it leaves; a failure is re-worded for a write (see `_explain`).

    The store drops what a write may have made stale, landed or not."""
    retried_note = ""
    try:
        with store.count_requests() as sent:
            job = await action.send(store, job_id)
    except CheckpointsError as exc:
        explained = await _explain(store, job_id, action, exc, retried=sent[0] > 1)
        if isinstance(explained, CheckpointsError):
            raise explained from exc
        job = explained
        retried_note = (
            f" (The {action.verb} request was retried after its first attempt failed or its answer was lost; the "
            f"retry was refused because the job is already {job.status}, so the first attempt most likely went "
            "through.)"
        )
    return JobChange(
        id=job.id,
        status=job.status,
        model=job.model,
        fine_tuned_model=job.fine_tuned_model,
        message=action.outcome(job) + retried_note,
    )


async def _explain(
    store: JobStore, job_id: str, action: _Action, exc: CheckpointsError, *, retried: bool = False
) -> CheckpointsError | Job:
    """The error to report for a failed write, or the job when a `retried` write was refused only because an
    earlier attempt of it (whose answer was lost) had already done it.

    A refusal (a 4xx the API does not retry) is explained by the job's current status, read with one GET, unless
    that read is refused too (the request itself is wrong, e.g. Azure's api-version): then the error stays as it
    was. A 403 is about changing, not reading. A failure after which the request may still have landed (no answer, or
    a success whose body is not this job) says to look first.
    """
    match = _API_SAID.search(exc.message)
    said = match.group(0) if match else ""

    def reworded(message: str) -> CheckpointsError:
        return CheckpointsError(
            exc.code, message, status=exc.status, request_id=exc.request_id, retry_after=exc.retry_after
        )

    if exc.code is ErrorCode.INVALID_ARGUMENT and exc.status is not None:
        try:
            job: Job | None = await store.job(job_id, refresh=True)
        except CheckpointsError as read_failure:
            if read_failure.code is ErrorCode.INVALID_ARGUMENT:  # a read is refused too: not about the job's state
                return exc
            job = None
        status = job.status if job is not None else None
        if retried and job is not None and status in action.already:
            return job
        return reworded(_refusal(action, job_id, status, exc.status) + said)
    if exc.code is ErrorCode.PERMISSION_DENIED:
        # `api.errors` has decided whether the API is Azure (from the settings, or from its answer on a gateway)
        # and then advises AZURE_OPENAI_ENDPOINT, never OpenAI's organisation and project.
        azure = "AZURE_OPENAI_ENDPOINT" in exc.message
        fix = (
            "a key of the Azure OpenAI resource that owns the job (AZURE_OPENAI_ENDPOINT), or an Entra ID identity "
            "with a role on it that may manage fine-tuning jobs"
            if azure
            else "a key with write access to "
            "fine-tuning (a restricted key may only read) in the job's organisation and project (OPENAI_ORG_ID, "
            "OPENAI_PROJECT_ID)"
        )
        return reworded(f"The API key may not {action.verb} job {job_id} (HTTP 403).{said} Use {fix}.")
    if exc.code in (ErrorCode.UPSTREAM_UNAVAILABLE, ErrorCode.TIMEOUT):
        return reworded(
            f"{exc.message} The {action.verb} request may have reached the API before the failure: check the job "
            "with get_job before trying again."
        )
    if exc.code is ErrorCode.BAD_RESPONSE:  # answered with success, but not with this job (or not with a job)
        return reworded(
            f"{exc.message} The {action.verb} request was answered as a success, so it may have taken effect: check "
            "the job with get_job before trying again."
        )
    return exc


def _refusal(action: _Action, job_id: str, status: str | None, http_status: int) -> str:
    if status is None:
        return (
            f"The API refused to {action.verb} job {job_id} (HTTP {http_status}): {action.rule}. Check its "
            "status with get_job."
        )
    if status in action.already:
        return f"Job {job_id} is already {status}, so there is nothing to {action.verb}."
    if status in TERMINAL_STATUSES:
        return f"Job {job_id} has already finished ({status}), so it cannot be {action.past}."
    if status not in action.accepted_from:
        return f"Job {job_id} is {status}, so it cannot be {action.past}: {action.rule}."
    return (
        f"The API would not {action.verb} job {job_id} (HTTP {http_status}), although it is {status}. Check its "
        "status with get_job before trying again."
    )


CANCEL_JOB = """Cancel a fine-tuning job. This changes the job for real and cannot be undone: training stops and the
job ends as cancelled, without a fine-tuned model. Use it only when the user asks to stop a job, and confirm with the
user which job (id, and e.g. its suffix) before calling. Only a job that is validating_files, queued, running or
paused can be cancelled; a finished job is refused with the reason. Returns the job's new status and what to expect:
cancelling takes effect asynchronously, so the status may read cancelled right away or a little later (get_job)."""

PAUSE_JOB = """Pause a running fine-tuning job. This changes the job for real: training stops and the job stays
paused until resume_job continues it from its last checkpoint (or cancel_job ends it). Only a running job can be
paused; any other status is refused with the reason. Use it only when the user asks, and confirm the job id with the
user before calling. Returns the job's new status and what to do next."""

RESUME_JOB = """Resume a paused fine-tuning job. This changes the job for real: training, and its billing, starts
again from the job's last checkpoint (the job goes to queued, then running). Only a paused job can be resumed; any
other status is refused with the reason. Use it only when the user asks, and confirm the job id with the user before
calling. Returns the job's new status and what to expect."""


@tool(title="Cancel a fine-tuning job", description=CANCEL_JOB, annotations=WRITE)
async def cancel_job(ctx: Context[AppState], job_id: JobId) -> JobChange:
    return finish(ctx, await perform(store_of(ctx), job_id, _CANCEL))


@tool(title="Pause a fine-tuning job", description=PAUSE_JOB, annotations=WRITE)
async def pause_job(ctx: Context[AppState], job_id: JobId) -> JobChange:
    return finish(ctx, await perform(store_of(ctx), job_id, _PAUSE))


@tool(title="Resume a paused fine-tuning job", description=RESUME_JOB, annotations=WRITE)
async def resume_job(ctx: Context[AppState], job_id: JobId) -> JobChange:
    return finish(ctx, await perform(store_of(ctx), job_id, _RESUME))
