"""Argument types shared by several tool families (their JSON schema teaches the model), validated once.

The types are checked by the SDK before a tool body runs, and the checks here (`checked_goal`,
`job_filter`) run before any request, so bad input never reaches the API: it becomes an
``invalid_argument`` error naming the argument, what was wrong, and what is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError

from ..analysis.metrics import Goal
from ..analysis.ranking import check_goal
from ..api.ids import JOB_ID_PATTERN as JOB_ID_PATTERN
from ..api.ids import MAX_ID_LENGTH as MAX_ID_LENGTH
from ..api.ids import is_job_id
from ..api.selection import JobFilter as JobFilter
from ..api.selection import base_model_matches as base_model_matches
from ..errors import invalid_argument

CHECKPOINT_ID_PATTERN = r"^ft(ckpt|chkpt)[-_][A-Za-z0-9_-]+$"
METRIC_PATTERN = r"^[A-Za-z0-9_./-]+$"
FINE_TUNED_NAME_PATTERN = (
    r"^ft:[A-Za-z0-9][A-Za-z0-9._-]*:[A-Za-z0-9._-]*:[A-Za-z0-9._-]*:[A-Za-z0-9]+(:ckpt-step-[0-9]+)?$"
)
"""An OpenAI fine-tuned model name, ``ft:<base>:<org>:<suffix>:<id>`` (the suffix may be empty), optionally with
``:ckpt-step-<N>`` (a checkpoint's model name): nothing that could change a URL path (no ``/ ? # %``, spaces)."""
PROJECT_ID_PATTERN = r"^proj_[A-Za-z0-9]+$"

FineTunedModelCheckpoint = Annotated[
    str,
    Field(
        pattern=FINE_TUNED_NAME_PATTERN,
        min_length=10,
        max_length=256,
        description="A checkpoint's model name, ft:<base>:<org>:<suffix>:<id>:ckpt-step-<N> (list_checkpoints and "
        "best_checkpoint show it as fine_tuned_model_checkpoint), or a fine-tuned model's name "
        "ft:<base>:<org>:<suffix>:<id>.",
    ),
]
ProjectId = Annotated[
    str,
    Field(
        pattern=PROJECT_ID_PATTERN, max_length=MAX_ID_LENGTH, description="A project id: 'proj_' and letters/digits."
    ),
]

JobStatus = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled", "paused"]

JobId = Annotated[
    str,
    Field(
        pattern=JOB_ID_PATTERN,
        min_length=7,
        max_length=MAX_ID_LENGTH,
        description="Fine-tuning job id: 'ftjob-' followed by letters, digits, '_' or '-' "
        "(e.g. ftjob-abc123; Azure ids are ftjob- plus 32 hex digits).",
    ),
]

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\[\]]+$")]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]

_RULES = {
    "job_id": "must be 'ftjob-' followed by letters, digits, '_' or '-', at most 100 characters "
    "(e.g. ftjob-abc123); list_jobs shows the ids",
    "after": "must be an id returned by an earlier call of this tool ('ftjob-...' for jobs, "
    "'ftckpt_...' or Azure's 'ftchkpt-...' for checkpoints, 'ftevent-...' for events), at most 100 characters",
    "fine_tuned_model_checkpoint": "must be a checkpoint's model name, ft:<base>:<org>:<suffix>:<id>:ckpt-step-<N> "
    "(list_checkpoints shows it as fine_tuned_model_checkpoint), or a fine-tuned model's name "
    "ft:<base>:<org>:<suffix>:<id>: letters, digits, '.', '_' or '-' between the colons, at most 256 characters",
    "project_id": "must be a project id, 'proj_' followed by letters and digits, at most 100 characters",
    "metric": "must be 'auto', a metric name such as full_valid_loss, or another metric key of the checkpoints "
    "(letters, digits, '_', '.', '/', '-')",
}


def checked_job_id(job_id: str) -> str:
    """`job_id` when it is a job id, for the places the input schema does not check (resource URIs).

    Raises:
        CheckpointsError: ``invalid_argument``, before any request.
    """
    if not is_job_id(job_id):
        raise invalid_argument(f"job_id {_RULES['job_id']}; got {_shown(job_id)}.")
    return job_id


def _shown(value: object) -> str:
    """`value` as the client sent it, cut at 80 characters: a string quoted, anything else as JSON (``null``,
    ``true``, ``[1, 2]``), never as Python (``None``, ``True``)."""
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_STRICT_TYPES = {
    "int_type": 'a whole number (a JSON integer such as 3; not true, "3" or 3.5)',
    "bool_type": 'true or false (a JSON boolean; not "yes", "true" or 1)',
    "float_type": "a number (a JSON number such as 0.5; not a string)",
    "string_type": "a string",
}
"""The strict refusals (`server.strict_arguments`): what is accepted."""


def describe_validation_error(error: ValidationError) -> str:
    """One ``invalid_argument`` sentence per bad argument: what was wrong and what is accepted."""
    parts: list[str] = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        name = loc[0] if loc else "arguments"
        where = ".".join(loc) or "arguments"
        rule = _RULES.get(name)
        if item["type"] == "missing":
            parts.append(f"{where} is required")
        elif name == "metadata":
            parts.append(_metadata_problem(loc, item))
        elif item["type"] in _STRICT_TYPES:
            parts.append(f"{where} must be {_STRICT_TYPES[item['type']]}; got {_shown(item.get('input'))}")
        elif rule and item["type"] in {"string_pattern_mismatch", "string_too_long", "string_too_short"}:
            parts.append(f"{where} {rule}; got {_shown(item.get('input'))}")
        else:
            parts.append(f"{where}: {_lower_first(item['msg'])}; got {_shown(item.get('input'))}")
    return "invalid_argument: " + "; ".join(parts) + "."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


_METADATA_RULE = (
    "metadata takes at most 16 string pairs, keys of 1-64 characters without '[' or ']' and values of at most "
    "512 characters"
)


def _metadata_problem(loc: list[str], item: Mapping[str, Any]) -> str:
    if len(loc) >= 3 and loc[-1] == "[key]":
        return f"metadata key {_shown(loc[1])} is not accepted; {_METADATA_RULE}"
    if len(loc) >= 2:
        value = item.get("input")
        got = f"{len(value)} characters" if isinstance(value, str) else f"got {_shown(value)}"
        return f"metadata value for {_shown(loc[1])} is not accepted ({got}); {_METADATA_RULE}"
    return f"metadata: {_lower_first(item['msg'])}; {_METADATA_RULE}"


IsoTime = Annotated[
    str,
    Field(
        min_length=4,
        max_length=40,
        description="ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T12:00:00Z (UTC unless an offset "
        "is given; a date alone means midnight UTC).",
    ),
]


def parse_iso_time(name: str, text: str) -> int:
    """An ISO 8601 date or date-time as Unix seconds (naive means UTC).

    Raises:
        ValueError: with an ``invalid_argument`` sentence naming the argument.
    """
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{name} must be an ISO 8601 date or date-time such as 2026-11-01 or 2026-11-01T12:00:00Z; "
            f"got {_shown(text)}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


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


def checked_goal(metric: str, goal: str | None) -> Goal | None:
    """The goal to rank by, checked once, before any request, against the metric's known direction.

    Raises:
        CheckpointsError: ``invalid_argument`` for a goal with metric='auto'.
        MetricChoiceError: a goal that contradicts a catalogue metric (the server makes it ``invalid_argument``).
    """
    if metric == "auto" and goal is not None:
        raise invalid_argument(
            "goal applies only to an explicit metric; with metric='auto' the direction follows the metric chosen. "
            "Omit goal, or name the metric."
        )
    chosen = Goal(goal) if goal else None
    check_goal(metric, chosen)
    return chosen


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
