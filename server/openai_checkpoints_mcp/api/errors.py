"""Turning an upstream failure into a `CheckpointsError` with a code and a sentence to act on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import CheckpointsError, ErrorCode

REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id")
_MAX_UPSTREAM_MESSAGE = 300


def request_id_from(headers: Mapping[str, str]) -> str | None:
    """The upstream request id (OpenAI's ``x-request-id``, Azure's ``apim-request-id``)."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value[:100]
    return None


def upstream_message(body: bytes, secrets: tuple[str, ...] = ()) -> str | None:
    """The ``error.message`` of an OpenAI (or Azure) error envelope, shortened and with secrets masked."""
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
    elif isinstance(error, str):
        message = error
    else:
        message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, str) or not message.strip():
        return None
    return redact(" ".join(message.split())[:_MAX_UPSTREAM_MESSAGE], secrets)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret in `text` with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _said(message: str | None) -> str:
    return f' The API said: "{message.rstrip(".")}".' if message else ""


def error_from_status(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    what: str,
    attempts: int,
    server_wait: float | None = None,
    secrets: tuple[str, ...] = (),
) -> CheckpointsError:
    """The error for a final non-2xx answer about `what` (e.g. "job ftjob-abc") after `attempts` attempts."""
    message = upstream_message(body, secrets)
    said = _said(message)
    request_id = request_id_from(headers)
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"

    def make(code: ErrorCode, sentence: str, retry_after: float | None = None) -> CheckpointsError:
        return CheckpointsError(code, sentence, status=status, request_id=request_id, retry_after=retry_after)

    if 300 <= status < 400:
        location = headers.get("location", "")
        target = f" to {redact(location[:200], secrets)}" if location else ""
        return make(
            ErrorCode.BAD_RESPONSE,
            f"The API redirected the request for {what} (HTTP {status}{target}) instead of answering it. Set "
            "OPENAI_BASE_URL to the API's final address (it usually ends in /v1).",
        )
    if status == 401:
        return make(
            ErrorCode.AUTH_FAILED,
            f"The API rejected the API key (HTTP 401).{said} Set a valid OPENAI_API_KEY (and OPENAI_ORG_ID / "
            "OPENAI_PROJECT_ID if the key belongs to another organisation or project) and restart the server.",
        )
    if status == 403:
        return make(
            ErrorCode.PERMISSION_DENIED,
            f"The API key may not read {what} (HTTP 403).{said} Use a key with access to fine-tuning in the "
            "job's organisation and project (OPENAI_ORG_ID, OPENAI_PROJECT_ID).",
        )
    if status == 404:
        return make(
            ErrorCode.NOT_FOUND,
            f"{what[:1].upper()}{what[1:]} was not found (HTTP 404).{said} Check the id (list_jobs shows the "
            "jobs this key can see) and that the key belongs to the job's organisation and project.",
        )
    if status == 429:
        if server_wait is not None and server_wait > 0:
            wait = f"Wait {server_wait:.0f} s, then call again."
        else:
            wait = "Wait a minute, then call again."
        return make(
            ErrorCode.RATE_LIMITED,
            f"The API is rate limiting requests (HTTP 429, {tries}).{said} {wait}",
            retry_after=server_wait,
        )
    if status >= 500:
        return make(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"The API failed while reading {what} (HTTP {status}, {tries}).{said} It is probably a passing "
            "outage: try again in a minute.",
            retry_after=server_wait,
        )
    if status == 408:
        return make(ErrorCode.TIMEOUT, f"The API timed out reading {what} (HTTP 408, {tries}).{said} Try again.")
    if status == 409:
        return make(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"The API reported a conflict reading {what} (HTTP 409, {tries}).{said} Try again shortly.",
        )
    return make(
        ErrorCode.INVALID_ARGUMENT,
        f"The API refused the request for {what} (HTTP {status}).{said} Check the arguments.",
    )


def bad_response(
    what: str, detail: str, *, status: int | None = None, request_id: str | None = None
) -> CheckpointsError:
    """The API answered, but not with what an OpenAI-compatible API sends."""
    return CheckpointsError(
        ErrorCode.BAD_RESPONSE,
        f"The API's answer for {what} was not usable: {detail}. Check that OPENAI_BASE_URL points at an "
        "OpenAI-compatible API (it usually ends in /v1).",
        status=status,
        request_id=request_id,
    )
