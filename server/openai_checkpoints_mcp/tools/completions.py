"""Completions (``completion/complete``): job ids for every ``job_id`` argument of a prompt or a resource template,
and the suffixes and metadata pairs of recent jobs for review_sweep.

Values come from one page of the job listing (the newest 100 jobs), read through the store, which reuses a listing
read less than the listing TTL ago. Completion is best effort: when the API fails, or takes longer than
`COMPLETION_DEADLINE`, the answer is an empty completion (logged at debug), never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import aclosing
from inspect import signature

import anyio
from mcp.types import Completion, CompletionArgument, PromptReference, ResourceTemplateReference

from ..api.models import Job
from ..api.store import JobStore
from ..errors import CheckpointsError
from .prompts import PROMPTS, review_sweep
from .resources import TEMPLATES

logger = logging.getLogger(__name__)

MAX_VALUES = 100
"""What the protocol allows in one completion."""
PAGE_SIZE = 100
COMPLETION_DEADLINE = 5.0
"""Seconds a completion waits for the API before answering with nothing."""

JOB_ID_PROMPTS = frozenset(spec.name for spec in PROMPTS if "job_id" in signature(spec.fn).parameters)
JOB_ID_TEMPLATES = frozenset(spec.uri_template for spec in TEMPLATES if "{job_id}" in spec.uri_template)

EMPTY = Completion(values=[], total=0, has_more=False)


def _job_ids(jobs: list[Job], typed: str) -> Iterable[str]:
    """Ids starting with what was typed, with or without the ``ftjob-`` prefix."""
    for job in jobs:
        if job.id.startswith(typed) or job.id.removeprefix("ftjob-").startswith(typed):
            yield job.id


def _suffixes(jobs: list[Job], typed: str) -> Iterable[str]:
    for job in jobs:
        if job.suffix and job.suffix.startswith(typed):
            yield job.suffix


def _metadata_pairs(jobs: list[Job], typed: str) -> Iterable[str]:
    for job in jobs:
        for key, value in (job.metadata or {}).items():
            pair = f"{key}={value}"
            if pair.startswith(typed):
                yield pair


Values = Callable[[list[Job], str], Iterable[str]]


def values_for(
    ref: PromptReference | ResourceTemplateReference, argument: str, served_prompts: frozenset[str] | None = None
) -> Values | None:
    """What completes `argument` of `ref`; None when nothing does: an unknown prompt or template, or a prompt this
    server does not serve (`served_prompts`, None for every prompt: ``--toolsets`` leaves some out)."""
    if isinstance(ref, PromptReference):
        if served_prompts is not None and ref.name not in served_prompts:
            return None
        if argument == "job_id" and ref.name in JOB_ID_PROMPTS:
            return _job_ids
        if ref.name == review_sweep.name:
            return {"suffix": _suffixes, "metadata": _metadata_pairs}.get(argument)
        return None
    if argument == "job_id" and ref.uri in JOB_ID_TEMPLATES:
        return _job_ids
    return None


async def _recent_jobs(store: JobStore) -> tuple[list[Job], bool]:
    """The newest jobs (one page), newest first, and whether older ones follow."""
    async with aclosing(store.job_pages(page_size=PAGE_SIZE)) as pages:
        async for page in pages:
            return sorted(page.jobs, key=lambda job: -(job.created_at or 0)), page.more
    return [], False


async def complete(
    store: Callable[[], JobStore],
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    served_prompts: frozenset[str] | None = None,
) -> Completion:
    """The completion of `argument`: at most `MAX_VALUES` distinct values, most recent job first; nothing for a
    prompt outside `served_prompts` (None: every prompt is served)."""
    values = values_for(ref, argument.name, served_prompts)
    if values is None:
        return EMPTY
    try:
        with anyio.fail_after(COMPLETION_DEADLINE):
            jobs, older = await _recent_jobs(store())
    except (CheckpointsError, TimeoutError) as exc:
        logger.debug("completion of %s: no values, the job listing failed: %s", argument.name, exc)
        return EMPTY
    found = list(dict.fromkeys(values(jobs, argument.value)))
    more = older or len(found) > MAX_VALUES
    return Completion(values=found[:MAX_VALUES], total=None if older else len(found), has_more=more)
