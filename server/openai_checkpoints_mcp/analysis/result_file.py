"""Parse a fine-tuning job's result file: the per-step metrics CSV (``step_metrics.csv``).

The body of a ``fine-tune-results`` file is either the CSV itself or, as OpenAI has been seen to
serve it, the base64 encoding of the CSV; either may also come as a JSON string, since OpenAI's
spec declares file content an ``application/json`` string (``"step,train_loss\\n1,..."``).
Columns are read by header name, so OpenAI's SFT file
(``step, train_loss, train_accuracy, valid_loss, valid_mean_token_accuracy``), Azure's
``results.csv`` (``validation_mean_token_accuracy``, ``full_valid_*``) and reinforcement files
(``train_mean_reward``, ``full_valid_mean_reward``, ``pg_loss_sum``, ...) all parse, and unknown
columns are kept. Column names are mapped to the names checkpoints use (``train_accuracy`` becomes
``train_mean_token_accuracy``), so a curve and a checkpoint speak of the same metric.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from .metrics import CATALOGUE

ALIASES: dict[str, str] = {
    "train_accuracy": "train_mean_token_accuracy",
    "validation_mean_token_accuracy": "valid_mean_token_accuracy",
    "full_validation_mean_token_accuracy": "full_valid_mean_token_accuracy",
}
"""Result-file header -> the checkpoint metric name it means (OpenAI's and Azure's spellings)."""

Encoding = Literal["csv", "base64", "json", "json+base64"]
"""How a result file's body holds its CSV: as it is, base64 of it, or either of those as a JSON string."""

_PREVIEW = 80

MAX_ROWS = 200_000
"""Data rows of a result file read at most; the rest are counted (`ResultTable.unread_rows`), not read. Far more
steps than a fine-tuning job takes, and small enough that parsing and analysing them stays within seconds and
tens of megabytes."""
MAX_OTHER_COLUMNS = 64
"""Columns read besides the step and the metrics the catalogue knows (each by its first column); further columns
are counted (`ResultTable.unread_columns`), not read."""
MAX_COLUMN_NAME = 100
"""Characters of a column name that can be kept; a longer header is not a metric's and its column is dropped."""
CHECK_EVERY = 4096
"""Rows between two calls of a parse's `checkpoint` (which may stop it, e.g. when its tool call is cancelled)."""

Checkpoint = Callable[[], None]
"""Called now and then during a long parse; it stops the parse by raising (``anyio.from_thread.check_cancelled``)."""
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


class ResultFileError(ValueError):
    """The body is not a result file; the message says precisely what was wrong."""


@dataclass(frozen=True)
class ResultTable:
    """A result file as columns: one entry per step, ascending.

    ``columns`` maps a metric name (canonical where an alias applied, else the header as written) to
    its value at each step, None where the cell was empty, not a number, or not finite (nan, inf).
    A column whose header is known to the metric catalogue, or whose cells are all empty, is kept even
    without a single value; a column with non-empty cells none of which is a number (a text column)
    is dropped and named in ``dropped_columns``.
    """

    steps: tuple[int, ...]
    columns: dict[str, tuple[float | None, ...]]
    renamed: dict[str, str]
    """Source header -> canonical name, only where an alias (or a case fold) was applied."""
    encoding: Encoding
    skipped_rows: int
    """Rows dropped because their step cell was empty or not a non-negative integer."""
    duplicate_rows: int = 0
    """Rows replaced by a later row with the same step (the last row for a step wins)."""
    dropped_columns: tuple[str, ...] = field(default=())
    """Source headers dropped: text columns, unnamed columns, and repeats of an earlier column name."""
    unread_rows: int = 0
    """Data rows after the first `MAX_ROWS` (as the file's remaining lines count them): not read at all."""
    unread_columns: int = 0
    """Columns beyond `MAX_OTHER_COLUMNS` others: not read at all."""

    def values(self, name: str) -> list[tuple[int, float]]:
        """The (step, value) pairs of column `name` where it has a value, ascending by step; [] if absent."""
        column = self.columns.get(name)
        if column is None:
            return []
        return [(step, value) for step, value in zip(self.steps, column, strict=True) if value is not None]


def parse_result_file(
    content: bytes,
    *,
    max_rows: int = MAX_ROWS,
    max_other_columns: int = MAX_OTHER_COLUMNS,
    checkpoint: Checkpoint | None = None,
) -> ResultTable:
    """Parse a result file's body (plain CSV or base64 of CSV, or either as a JSON string) into a `ResultTable`.

    Lenient about a UTF-8 BOM, ``\\r\\n`` line ends, blank lines, trailing commas, padding around
    cells, and the case of ``step``. Raises `ResultFileError` for an empty body, a body without a
    ``step`` column, and anything that is neither CSV nor base64 of CSV (binary data, an HTML page,
    a JSON error body, a JSON string that holds neither).

    Bounded, whatever the body: at most `max_rows` data rows and, besides the step and the catalogue's metrics,
    `max_other_columns` columns are read; what is left is counted in ``unread_rows`` and ``unread_columns``.
    `checkpoint` is called every `CHECK_EVERY` rows (it may raise to stop the parse).
    """
    decoded = _decoded(content)
    return _table(
        decoded.text,
        decoded.encoding,
        max_rows=max_rows,
        max_other_columns=max_other_columns,
        checkpoint=checkpoint or _nothing,
    )


def _nothing() -> None:
    return None


def decode_result_file(content: bytes) -> tuple[bytes, Encoding]:
    """The CSV a result file's body holds (the body itself, or what its base64 encodes) and how it was served,
    decided exactly as `parse_result_file` decides it (and raising `ResultFileError` as it does)."""
    decoded = _decoded(content)
    return decoded.csv_bytes, decoded.encoding


def result_file_text(content: bytes) -> str:
    """The CSV text of a result file's body: the body itself, or what its base64 encodes (without a BOM).

    Raises `ResultFileError` in the same cases as `parse_result_file`.
    """
    return _decoded(content).text


@dataclass(frozen=True)
class _Decoded:
    """A result file's body as decoded: the CSV text, how the body was encoded, and the CSV bytes."""

    text: str
    encoding: Encoding
    csv_bytes: bytes


def _decoded(content: bytes, *, in_json: bool = False) -> _Decoded:
    """The body decided once, for `parse_result_file`, `decode_result_file` and `result_file_text` alike.
    `in_json`: `content` is what a JSON string held (which is not unwrapped again)."""
    if not content.strip():
        raise ResultFileError("the result file is empty")
    text = _decode_text(content)
    if text is not None:
        if _step_index(_header(text)) is not None:
            return _Decoded(text, "csv", content)
        held = None if in_json else _json_string(text)
        if held is not None:
            try:
                held_csv = _decoded(held.encode("utf-8", "surrogatepass"), in_json=True)
            except ResultFileError as exc:
                raise ResultFileError(f"{exc} (in the JSON string the body is)") from None
            return replace(held_csv, encoding="json" if held_csv.encoding == "csv" else "json+base64")
    decoded = _base64_decode(content)
    if decoded is not None:
        if not decoded.strip():
            raise ResultFileError("the result file is empty (after base64 decoding)")
        inner = _decode_text(decoded)
        if inner is not None:
            header = _header(inner)
            if _step_index(header) is not None:
                return _Decoded(inner, "base64", decoded)
            if len(header) > 1:
                raise ResultFileError(
                    f"no step column (in the base64-decoded CSV); header was: {_preview(','.join(header))}"
                )
    raise ResultFileError(_diagnose(content, text))


def table_from_rows(rows: Mapping[int, Mapping[str, float]]) -> ResultTable:
    """A `ResultTable` of per-step values that did not come from a file (a running job's metrics events): step ->
    {metric: value}. Names are mapped as a file's headers are, values that are not finite or absurdly large are
    missing; `encoding` says ``csv``, the form such rows would have in a file."""
    steps = tuple(sorted(step for step in rows if step >= 0))
    renamed: dict[str, str] = {}
    cells: dict[str, dict[int, float]] = {}
    for step in steps:
        for name, value in rows[step].items():
            canonical = _canonical(name)
            if canonical != name:
                renamed[name] = canonical
            if math.isfinite(value) and abs(value) <= MAX_MAGNITUDE:
                cells.setdefault(canonical, {}).setdefault(step, value)
    columns = {name: tuple(values.get(step) for step in steps) for name, values in cells.items()}
    return ResultTable(steps=steps, columns=columns, renamed=renamed, encoding="csv", skipped_rows=0)


# --- decoding ----------------------------------------------------------------------------------


def _decode_text(content: bytes) -> str | None:
    """The body as text (UTF-8, or UTF-16 with a BOM), without a BOM; None for binary data."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = content.decode("utf-16")
        except UnicodeDecodeError:
            return None
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    return None if "\x00" in text else text.lstrip("\ufeff")


def _json_string(text: str) -> str | None:
    """What `text` holds when it is one JSON string (``"step,train_loss\\n1,0.5\\n"``), else None."""
    stripped = text.strip()
    if len(stripped) < 2 or stripped[0] != '"' or stripped[-1] != '"':
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _base64_decode(content: bytes) -> bytes | None:
    """The bytes `content` encodes in base64 (standard or URL-safe, padding optional), or None."""
    compact = b"".join(content.split())
    try:
        ascii_text = compact.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not _BASE64_TEXT.fullmatch(ascii_text):
        return None
    stripped = ascii_text.rstrip("=")
    if len(stripped) % 4 == 1:
        return None
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        if "-" in padded or "_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _diagnose(content: bytes, text: str | None) -> str:
    """Why the body is neither CSV nor base64 of CSV, as precisely as can be told."""
    head = "not CSV and not base64 of CSV"
    if text is None:
        return f"{head}: the body is binary data ({len(content)} bytes, not UTF-8 text)"
    stripped = text.strip()
    lowered = stripped[:200].lower()
    if lowered.startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")) or "<html" in lowered:
        title = re.search(r"<title[^>]*>(.*?)</title>", stripped, re.IGNORECASE | re.DOTALL)
        about = f" titled {_preview(' '.join(title.group(1).split()))!r}" if title else ""
        return f"{head}: the body is an HTML page{about}"
    if stripped.startswith(("{", "[")):
        try:
            body = json.loads(stripped)
        except ValueError:
            body = None
        if body is not None:
            message = _json_error_message(body)
            about = f" with error message {_preview(message)!r}" if message else f": {_preview(stripped)!r}"
            return f"{head}: the body is JSON{about}"
    header = _header(text)
    if len(header) > 1:
        return f"no step column; header was: {_preview(','.join(header))}"
    return f"{head}; it starts with {_preview(stripped)!r}"


def _json_error_message(body: object) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return None


def _preview(text: str) -> str:
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


# --- the table -----------------------------------------------------------------------------------


def _rows(source: io.StringIO) -> Iterator[list[str]]:
    """The non-blank CSV rows of `source`, one at a time; a row whose cells are all blank counts as blank. An
    unterminated quote and the like end the rows there."""
    rows = csv.reader(source)
    try:
        for row in rows:
            # The first cell decides for nearly every row (its step), so the generator runs only for the rest.
            if row and (row[0].strip() or any(cell.strip() for cell in row)):
                yield row
    except csv.Error:
        return


def _header(text: str) -> list[str]:
    """The cells of the first non-blank row of `text` (only that row is parsed); [] without one."""
    first = next(_rows(io.StringIO(text)), None)
    return _header_cells(first) if first is not None else []


def _header_cells(row: list[str]) -> list[str]:
    return [cell.strip().lstrip("\ufeff").strip() for cell in row]


def _step_index(header: list[str]) -> int | None:
    for index, name in enumerate(header):
        if name.lower() == "step":
            return index
    return None


def _canonical(name: str) -> str:
    folded = name.lower()
    if folded in ALIASES:
        return ALIASES[folded]
    if folded in CATALOGUE:
        return folded
    return name


MAX_MAGNITUDE = 1e150
"""Larger values are treated as missing: no metric is that large, and differences and squares of such values
overflow to infinity in the analysis."""


def _number(cell: str) -> tuple[bool, float | None]:
    """(is a number, its value if usable): ``nan``, ``inf`` and values beyond `MAX_MAGNITUDE` are numbers without
    a usable value."""
    text = cell.strip()
    if not text or "_" in text:
        return False, None
    try:
        value = float(text)
    except ValueError:
        return False, None
    return True, value if math.isfinite(value) and abs(value) <= MAX_MAGNITUDE else None


def _step(cell: str) -> int | None:
    is_number, value = _number(cell)
    if not is_number or value is None or value < 0 or value != int(value):
        return None
    return int(value)


def _table(
    text: str,
    encoding: Encoding,
    *,
    max_rows: int,
    max_other_columns: int,
    checkpoint: Checkpoint,
) -> ResultTable:
    buffer = io.StringIO(text)
    rows = _rows(buffer)
    header = _header_cells(next(rows))
    step_at = _step_index(header)
    assert step_at is not None
    # Which source columns become which table columns; the first column of a name wins, and a
    # column already spelled canonically wins over an alias that maps to the same name. Every column but the
    # first of each catalogue metric takes one of `max_other_columns` places; the columns beyond are not read.
    direct = {name for name in header if _canonical(name) == name}
    chosen: dict[str, int] = {}
    renamed: dict[str, str] = {}
    dropped: list[str] = []
    others = unread_columns = 0
    for index, name in enumerate(header):
        if index == step_at:
            continue
        target = _canonical(name)
        if target not in CATALOGUE or target in chosen:
            if others >= max_other_columns:
                unread_columns += 1
                continue
            others += 1
        if len(name) > MAX_COLUMN_NAME:
            dropped.append(f"(column {index + 1}, a name of {len(name):,} characters)")
            continue
        if not name or target.lower() == "step" or target in chosen or (target != name and target in direct):
            dropped.append(name or f"(unnamed column {index + 1})")
            continue
        chosen[target] = index
        if target != name:
            renamed[name] = target

    # Only the chosen cells of each row are kept: a row of a million cells costs its parse, not its memory.
    indices = list(chosen.values())
    by_step: dict[int, tuple[str, ...]] = {}
    skipped = duplicates = read = unread_rows = 0
    for row in rows:
        if read >= max_rows:
            unread_rows = 1 + _lines_after(text, buffer.tell())
            break
        read += 1
        if read % CHECK_EVERY == 0:
            checkpoint()
        step = _step(row[step_at]) if step_at < len(row) else None
        if step is None:
            skipped += 1
            continue
        if step in by_step:
            duplicates += 1
        width = len(row)
        by_step[step] = tuple(row[i] if i < width else "" for i in indices)
    checkpoint()
    positions = {name: position for position, name in enumerate(chosen)}

    steps = tuple(sorted(by_step))
    columns: dict[str, tuple[float | None, ...]] = {}
    for name, position in positions.items():
        values: list[float | None] = []
        numeric = text_cells = 0
        for step in steps:
            cell = by_step[step][position]
            is_number, value = _number(cell)
            numeric += is_number
            text_cells += bool(cell.strip()) and not is_number
            values.append(value)
        if text_cells and not numeric and name not in CATALOGUE:
            source = next((src for src, dst in renamed.items() if dst == name), name)
            dropped.append(source)
            renamed.pop(source, None)
            continue
        columns[name] = tuple(values)
    return ResultTable(
        steps=steps,
        columns=columns,
        renamed=renamed,
        encoding=encoding,
        skipped_rows=skipped,
        duplicate_rows=duplicates,
        dropped_columns=tuple(dropped),
        unread_rows=unread_rows,
        unread_columns=unread_columns,
    )


def _lines_after(text: str, at: int) -> int:
    """The non-blank lines of `text` from position `at` on (counted, not parsed: a quoted cell may span lines)."""
    count = text.count("\n", at) + (not text.endswith("\n"))
    return max(0, count - text.count("\n\n", at))
