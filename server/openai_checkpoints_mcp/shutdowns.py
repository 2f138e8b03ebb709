"""When base models shut down, and with them the models fine-tuned from them.

The bundled table holds only dates a source states; a model it does not name has no known date (never guessed).
A user's JSON file (``OPENAI_CHECKPOINTS_MCP_SHUTDOWNS``) overrides it: ``{"<base model>": "YYYY-MM-DD"}``, where
``null`` removes a bundled date.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from .config import SHUTDOWNS_ENV
from .errors import CheckpointsError, ErrorCode

SOURCE = "OpenAI's deprecations page, https://developers.openai.com/api/docs/deprecations"
AS_OF = "2026-12-02"
"""When the bundled table was last checked against its source."""

BUNDLED: Mapping[str, str] = {
    # Announced 2026-04-22 ("Legacy GPT model snapshots"), shut down 2026-10-23.
    "gpt-3.5-turbo-0125": "2026-10-23",
    "gpt-4-0613": "2026-10-23",
    "gpt-4.1-nano-2025-04-14": "2026-10-23",
    "o4-mini-2025-04-16": "2026-10-23",
    "gpt-4o-2024-05-13": "2026-10-23",
    # Announced 2026-10-14: the GPT-4o and GPT-4.1 snapshots, fine-tuned models included, shut down 2027-01-14
    # (checked on 2026-12-02 against copies of the page of 2026-10-15 and 2026-10-27; the latter also matched the
    # shutdown_date that GET /v1/models reported for every dated model).
    "gpt-4o-2024-08-06": "2027-01-14",
    "gpt-4o-2024-11-20": "2027-01-14",
    "gpt-4o-mini-2024-07-18": "2027-01-14",
    "gpt-4.1-2025-04-14": "2027-01-14",
    "gpt-4.1-mini-2025-04-14": "2027-01-14",
}
"""Base model -> shutdown date, only as the source states them (gpt-3.5-turbo-1106 and others it does not date are
left out)."""

OPENAI_NEW_JOBS_END = date(2027, 1, 6)
"""From this day OpenAI's self-serve fine-tuning takes no new jobs (same source, announced 2026-05-07)."""

_API_DATE_FIELDS = ("shutdown_date", "shutdown_at", "retirement_date", "retires_at", "deprecation_date")


@dataclass(frozen=True)
class ShutdownTable:
    dates: Mapping[str, date]
    source: str
    """Where the dates come from: the bundled table's source and as-of date, and the user's file if any."""

    def lookup(self, base_model: str | None) -> date | None:
        if not base_model:
            return None
        return self.dates.get(base_model)


def parse_date(value: Any) -> date | None:
    """A date from what an API may send: ``YYYY-MM-DD``, an ISO 8601 time, or unix seconds; anything else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value <= 0:
            return None
        try:
            return datetime.fromtimestamp(value, tz=UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def reported_by_api(extra: Mapping[str, Any] | None) -> date | None:
    """The shutdown date a ``/models`` object itself reports, if any: OpenAI's ``shutdown_date`` (and similar
    names), or Azure's ``deprecation.inference``."""
    if not extra:
        return None
    for name in _API_DATE_FIELDS:
        found = parse_date(extra.get(name))
        if found is not None:
            return found
    deprecation = extra.get("deprecation")
    if isinstance(deprecation, Mapping):
        return parse_date(deprecation.get("inference"))
    return None


def load(path: str | None) -> ShutdownTable:
    """The bundled table, overridden by the JSON file at `path` (when given).

    Raises:
        CheckpointsError: ``invalid_argument`` when the file cannot be read or is not an object of dates.
    """
    dates = {model: date.fromisoformat(day) for model, day in BUNDLED.items()}
    source = f"{SOURCE} (as of {AS_OF})"
    if not path:
        return ShutdownTable(dates, source)
    file = Path(path).expanduser()
    try:
        overrides = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointsError(
            ErrorCode.INVALID_ARGUMENT,
            f"Could not read the shutdown dates in {file} ({SHUTDOWNS_ENV}): {type(exc).__name__}. "
            'Make it a JSON object such as {"gpt-4o-mini-2024-07-18": "2027-01-14"}, or unset the variable.',
        ) from exc
    if not isinstance(overrides, dict):
        raise CheckpointsError(
            ErrorCode.INVALID_ARGUMENT,
            f"The shutdown dates in {file} ({SHUTDOWNS_ENV}) must be a JSON object of model names to "
            '"YYYY-MM-DD" dates (or null to forget one).',
        )
    for model, day in overrides.items():
        if day is None:
            dates.pop(str(model), None)
            continue
        parsed = parse_date(day) if isinstance(day, str) else None
        if parsed is None:
            raise CheckpointsError(
                ErrorCode.INVALID_ARGUMENT,
                f"The shutdown date of {model} in {file} ({SHUTDOWNS_ENV}) is {day!r}, not a YYYY-MM-DD date.",
            )
        dates[str(model)] = parsed
    return ShutdownTable(dates, f"{source}, overridden by {file}")
