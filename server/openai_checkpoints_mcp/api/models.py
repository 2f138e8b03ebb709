"""Lenient models of what the fine-tuning API returns.

The API's real responses break its own spec (status ``paused``, ``hyperparameters:
null``, ``error`` as ``{}`` or all nulls, reward metrics outside the schema), so
these models accept anything that has an ``id``: unknown fields are kept
(``extra="allow"``), every other field is optional, and a value of the wrong type
becomes None instead of an error. Normalising helpers (`Job.method_type`,
`Job.effective_hyperparameters`, `Checkpoint.numeric_metrics`, ...) hide the quirks
from the rest of the server.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr

from ..analysis.metrics import finite_number


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if math.isfinite(number) and number.is_integer() else None
    return None


def _timestamp_or_none(value: Any) -> int | None:
    """Unix seconds, or None: the API's timestamps mean "not yet" or "unknown" by null (``estimated_finish`` of a job
    that is not running, ``finished_at`` of one that has not finished), and a zero or negative one (``0``, which an
    answer generated from the spec holds, would read as 1970) can only mean the same."""
    seconds = _int_or_none(value)
    return seconds if seconds is not None and seconds > 0 else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _dict_list_or_none(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, dict)]


def _str_dict_or_none(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items() if v is not None}


LenientInt = Annotated[int | None, BeforeValidator(_int_or_none)]
Timestamp = Annotated[int | None, BeforeValidator(_timestamp_or_none)]
LenientStr = Annotated[str | None, BeforeValidator(_str_or_none)]
LenientDict = Annotated[dict[str, Any] | None, BeforeValidator(_dict_or_none)]
StrList = Annotated[list[str], BeforeValidator(_str_list)]
StrDict = Annotated[dict[str, str] | None, BeforeValidator(_str_dict_or_none)]


class ApiObject(BaseModel):
    """Any API object: it must have an ``id``; everything else is optional and unknown fields are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1)
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_api(cls, payload: dict[str, Any]) -> Self:
        """Validate `payload` and keep it verbatim (see `raw`). Raises pydantic's ValidationError."""
        parsed = cls.model_validate(payload)
        parsed._raw = payload
        return parsed

    @property
    def raw(self) -> dict[str, Any]:
        """The object exactly as the API sent it when it was parsed with `from_api` (what the archive keeps);
        otherwise its fields as parsed, unknown ones included."""
        if self._raw is not None:
            return self._raw
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _code_or_none(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        return str(value)
    return None


class JobError(BaseModel):
    """A failed job's error; all fields optional because non-failed jobs carry ``{}`` or nulls.
    A numeric code is kept as text, as openai-python does."""

    model_config = ConfigDict(extra="allow")

    code: Annotated[str | None, BeforeValidator(_code_or_none)] = None
    message: LenientStr = None
    param: LenientStr = None

    @property
    def is_empty(self) -> bool:
        return not (self.code or self.message or self.param)


def _error_or_none(value: Any) -> Any:
    return value if isinstance(value, dict) else None


TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
"""Statuses after which a job no longer changes: its checkpoints and result file are final."""
ACTIVE_STATUSES = frozenset({"validating_files", "queued", "running", "paused"})
"""Statuses of a job that has not finished (it may still gain checkpoints, a result file, or fail)."""


class Job(ApiObject):
    """A ``fine_tuning.job``."""

    status: LenientStr = None
    model: LenientStr = None
    fine_tuned_model: LenientStr = None
    created_at: Timestamp = None
    finished_at: Timestamp = None
    estimated_finish: Timestamp = None
    organization_id: LenientStr = None
    training_file: LenientStr = None
    validation_file: LenientStr = None
    result_files: StrList = Field(default_factory=list)
    trained_tokens: LenientInt = None
    seed: LenientInt = None
    hyperparameters: LenientDict = None
    method: LenientDict = None
    metadata: StrDict = None
    integrations: Annotated[list[dict[str, Any]] | None, BeforeValidator(_dict_list_or_none)] = None
    error: Annotated[JobError | None, BeforeValidator(_error_or_none)] = None
    user_provided_suffix: LenientStr = None

    @property
    def is_finished(self) -> bool:
        """Whether the job has ended (succeeded, failed or cancelled) and so no longer changes."""
        return self.status in TERMINAL_STATUSES

    @property
    def method_type(self) -> str:
        """``supervised``, ``dpo``, ``reinforcement`` (or whatever the API says); jobs from before
        the ``method`` field existed are supervised."""
        kind = self.method.get("type") if self.method else None
        return kind if isinstance(kind, str) else "supervised"

    @property
    def effective_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters wherever the API put them: ``method.<type>.hyperparameters`` first,
        then the deprecated top-level ``hyperparameters`` (null for DPO and RFT jobs)."""
        merged: dict[str, Any] = {}
        if self.hyperparameters:
            merged.update(self.hyperparameters)
        section = (self.method or {}).get(self.method_type)
        if isinstance(section, dict) and isinstance(section.get("hyperparameters"), dict):
            merged.update(section["hyperparameters"])
        return merged

    @property
    def grader_summary(self) -> dict[str, str] | None:
        """Reinforcement jobs: the grader's ``type`` and ``name`` (its full definition can be long code)."""
        section = (self.method or {}).get(self.method_type)
        grader = section.get("grader") if isinstance(section, dict) else None
        if not isinstance(grader, dict):
            return None
        return {key: grader[key] for key in ("type", "name") if isinstance(grader.get(key), str)}

    @property
    def error_info(self) -> JobError | None:
        """The error, or None when the API sent null, ``{}`` or all nulls."""
        if self.error is None or self.error.is_empty:
            return None
        return self.error

    @property
    def suffix(self) -> str | None:
        """The user's suffix: ``user_provided_suffix``, else the 4th field of an ``ft:`` model name."""
        if self.user_provided_suffix:
            return self.user_provided_suffix
        azure_suffix = (self.model_extra or {}).get("suffix")  # Azure OpenAI's jobs carry a plain `suffix`
        if isinstance(azure_suffix, str) and azure_suffix:
            return azure_suffix
        name = self.fine_tuned_model or ""
        parts = name.split(":")
        if len(parts) >= 5 and parts[0] == "ft" and parts[3]:
            return parts[3]
        return None

    @property
    def has_validation_file(self) -> bool:
        return bool(self.validation_file)


class Checkpoint(ApiObject):
    """A ``fine_tuning.job.checkpoint``."""

    step_number: LenientInt = None
    created_at: Timestamp = None
    fine_tuned_model_checkpoint: LenientStr = None
    fine_tuning_job_id: LenientStr = None
    metrics: LenientDict = None

    @property
    def step(self) -> int | None:
        """``step_number``, else the ``step`` metric."""
        if self.step_number is not None:
            return self.step_number
        return _int_or_none((self.metrics or {}).get("step"))

    @property
    def numeric_metrics(self) -> dict[str, float]:
        """Every metric that is a finite number, unknown keys included; ``step`` is left out
        (it repeats `step`)."""
        return {
            key: number
            for key, value in (self.metrics or {}).items()
            if key != "step" and (number := finite_number(value)) is not None
        }


class Event(ApiObject):
    """A ``fine_tuning.job.event``."""

    created_at: Timestamp = None
    level: LenientStr = None
    message: LenientStr = None
    type: LenientStr = None
    data: LenientDict = None


class Model(ApiObject):
    """A model the account can call (``GET /models``); unknown fields (a shutdown date, Azure's ``deprecation``,
    ``lifecycle_status``) are kept."""

    created: Timestamp = None
    owned_by: LenientStr = None

    @property
    def is_fine_tuned(self) -> bool:
        """OpenAI names fine-tuned models ``ft:<base>:...``, Azure ``<base>.ft-<hex>``; checkpoints are not models."""
        return (self.id.startswith("ft:") or ".ft-" in self.id) and ":ckpt-step-" not in self.id


class Permission(ApiObject):
    """A ``checkpoint.permission``: a project a fine-tuned checkpoint is shared with (``cp_...``)."""

    project_id: LenientStr = None
    created_at: Timestamp = None


class ListPage(BaseModel):
    """One page of a cursor-paginated list; ``data`` is parsed item by item by the caller."""

    model_config = ConfigDict(extra="allow")

    data: list[Any]
    has_more: bool | None = None
    last_id: LenientStr = None
    """The last item's id, on the checkpoint and permission lists (the permission list's next cursor)."""


def by_step(checkpoints: Iterable[Checkpoint]) -> list[Checkpoint]:
    """Checkpoints in training order: by step, then by creation time; a checkpoint without a step goes last."""
    return sorted(checkpoints, key=lambda c: (c.step if c.step is not None else math.inf, c.created_at or 0))
