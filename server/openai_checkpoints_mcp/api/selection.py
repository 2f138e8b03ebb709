"""Which jobs a listing selects: `JobFilter`, applied by the store's callers while they scan the API's pages, or
pushed down to an archive, which filters in SQL (see `archive.reader`)."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Job


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
