"""Turning an upstream failure into a `CheckpointsError` with a code and a sentence to act on.

Two error bodies are understood: OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}`` (also
Azure's v1 API) and the Microsoft REST guidelines body of Azure OpenAI's legacy API and gateway
``{"error": {"code", "message", "target", "details", "innererror"}}``, e.g. a 401
``{"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint..."}}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ADMIN_KEY_ENV, DEFAULT_AZURE_API_VERSION
from ..errors import CheckpointsError, ErrorCode
from ..redaction import redactor_for

AZURE_REQUEST_ID_HEADER = "apim-request-id"
REQUEST_ID_HEADERS = ("x-request-id", AZURE_REQUEST_ID_HEADER)
_MAX_UPSTREAM_MESSAGE = 300
_MAX_DETAIL = 120


def request_id_from(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> str | None:
    """The upstream request id (OpenAI's ``x-request-id``, Azure's ``apim-request-id``), on one line, with any echo
    of the `secrets` masked (before it is shortened, which could cut an echo below the length that is recognised)."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return redact(" ".join(value.split()), secrets)[:100] or None
    return None


@dataclass(frozen=True)
class UpstreamError:
    """What an error body says, whichever of the two shapes it has; every text is shortened and masked."""

    message: str | None = None
    code: str | None = None
    target: str | None = None
    """OpenAI's ``param``, or Azure's ``target``: the argument the error is about."""
    inner_code: str | None = None
    """Azure's ``innererror.code`` (the most specific one), when it differs from `code`."""
    details: tuple[str, ...] = ()
    """Azure's ``details[].message`` (at most two)."""
    azure_shaped: bool = False
    """An error object with Azure's keys (``target``, ``details`` or ``innererror``) and no OpenAI ``type``."""


def _text(value: Any, secrets: tuple[str, ...], limit: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = redact(" ".join(str(value).split()), secrets)[:limit]  # masked before the cut, which could split a key
    return text or None


def parse_error_body(body: bytes, secrets: tuple[str, ...] = ()) -> UpstreamError | None:
    """The parts of an OpenAI or Azure error body, or None when it is not JSON or has no error in it."""
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, str):
        return UpstreamError(message=_text(error, secrets, _MAX_UPSTREAM_MESSAGE))
    if not isinstance(error, dict):
        message = _text(payload.get("message"), secrets, _MAX_UPSTREAM_MESSAGE)
        return UpstreamError(message=message) if message else None
    code = _text(error.get("code"), secrets, _MAX_DETAIL)
    inner_code = None
    inner = error.get("innererror")
    for _ in range(5):  # the most specific of nested inner errors
        if not isinstance(inner, dict):
            break
        inner_code = _text(inner.get("code"), secrets, _MAX_DETAIL) or inner_code
        inner = inner.get("innererror")
    details = error.get("details")
    detail_messages = tuple(
        text
        for item in (details if isinstance(details, list) else [])[:2]
        if isinstance(item, dict) and (text := _text(item.get("message"), secrets, _MAX_DETAIL))
    )
    return UpstreamError(
        message=_text(error.get("message"), secrets, _MAX_UPSTREAM_MESSAGE),
        code=code,
        target=_text(
            error.get("param") if error.get("param") is not None else error.get("target"), secrets, _MAX_DETAIL
        ),
        inner_code=inner_code if inner_code != code else None,
        details=detail_messages,
        azure_shaped="type" not in error and any(key in error for key in ("target", "details", "innererror")),
    )


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every echo of the `secrets` masked (`redaction.Redactor.mask`: any run of 8 of a secret's
    characters, also split by whitespace or encoded)."""
    return redactor_for(secrets).mask(text) if secrets else text


MAX_TOLD_WAIT = 86400.0
"""A wait the API asks for beyond a day is not told as a number: it is implausible, or the account is blocked."""


def say_wait(seconds: float) -> str:
    """The sentence for a wait the API asked for (``retry-after``): tenths below 10 s, whole seconds (rounded up) to
    10 minutes, then minutes, then hours; beyond a day, words instead of an absurd number (``1e308``)."""
    if not seconds < MAX_TOLD_WAIT:
        return (
            "The API asks for a wait of more than a day: try again later, and check the account's rate limits and "
            "quota."
        )
    if seconds < 10:
        shown = f"{math.ceil(seconds * 10) / 10:.1f}".removesuffix(".0")
        return f"Wait {shown} s, then call again."
    if seconds <= 600:
        return f"Wait {math.ceil(seconds)} s, then call again."
    if seconds < 7200:
        return f"Wait about {math.ceil(seconds / 60)} minutes, then call again."
    return f"Wait about {math.ceil(seconds / 3600)} hours, then call again."


def _said(error: UpstreamError | None, status: int, *, azure: bool) -> str:
    """`` The API said: "..."``; on Azure also the code, target, inner code and details the body carries
    (OpenAI's own code and param are left out: its message already names them)."""
    if error is None or not (error.message or error.code):
        return ""
    parts: list[str] = []
    if azure:
        if error.code and error.code != str(status):
            parts.append(f"code {error.code}")
        if error.target:
            parts.append(f"target {error.target}")
        if error.inner_code:
            parts.append(f"inner error {error.inner_code}")
        parts.extend(f"detail: {detail}" for detail in error.details)
    extra = f" ({'; '.join(parts)})" if parts else ""
    if error.message:
        return f' The API said: "{error.message.rstrip(".")}"{extra}.'
    return f" The API answered with error code {error.code}{extra}." if azure else ""


def _is_azure(azure: bool | None, error: UpstreamError | None, headers: Mapping[str, str]) -> bool:
    """The caller's answer, else a guess from the answer: Azure's gateway sets ``apim-request-id`` on every
    response, and only Azure's error bodies carry ``target``/``details``/``innererror`` without ``type``."""
    if azure is not None:
        return azure
    return bool(headers.get(AZURE_REQUEST_ID_HEADER)) or (error is not None and error.azure_shaped)


def error_from_status(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    what: str,
    attempts: int,
    server_wait: float | None = None,
    secrets: tuple[str, ...] = (),
    azure: bool | None = None,
    doing: str = "reading",
    admin: bool = False,
    listing: bool = False,
) -> CheckpointsError:
    """The error for a final non-2xx answer about `what` (e.g. "job ftjob-abc") after `attempts` attempts.

    `doing` is what the request did, for the sentences: "reading", or "changing" for a write.

    `azure`: whether the server is Azure OpenAI (``Settings.azure``), which changes the advice (Azure's
    variables, api-version); None guesses it from the answer (`_is_azure`).

    `admin`: the request was sent with the admin key (``OPENAI_ADMIN_KEY``, the checkpoint permissions endpoint),
    so a 401 or 403 is about that key, and a 404 about the checkpoint.
    """
    error = parse_error_body(body, secrets)
    azure = _is_azure(azure, error, headers)
    said = _said(error, status, azure=azure)
    message = error.message if error else None
    request_id = request_id_from(headers, secrets)
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"

    def make(code: ErrorCode, sentence: str, retry_after: float | None = None) -> CheckpointsError:
        return CheckpointsError(code, sentence, status=status, request_id=request_id, retry_after=retry_after)

    if admin and status in (401, 403, 404):
        return make(*_admin_answer(status, what, said))
    if 300 <= status < 400:
        location = headers.get("location", "")
        target = f" to {redact(location, secrets)[:200]}" if location else ""
        fix = (
            "AZURE_OPENAI_ENDPOINT to the resource's endpoint (https://<resource>.openai.azure.com)"
            if azure
            else "OPENAI_BASE_URL to the API's final address (it usually ends in /v1)"
        )
        return make(
            ErrorCode.BAD_RESPONSE,
            f"The API redirected the request for {what} (HTTP {status}{target}) instead of answering it. Set {fix}.",
        )
    if status == 401:
        if azure:
            return make(
                ErrorCode.AUTH_FAILED,
                f"Azure OpenAI rejected the API key (HTTP 401).{said} Set AZURE_OPENAI_API_KEY to a key of the "
                "resource (Keys and Endpoint in the Azure portal) and check that AZURE_OPENAI_ENDPOINT (or, on the "
                "v1 API, OPENAI_BASE_URL) is that resource's endpoint, then restart the server.",
            )
        return make(
            ErrorCode.AUTH_FAILED,
            f"The API rejected the API key (HTTP 401).{said} Set a valid OPENAI_API_KEY (and OPENAI_ORG_ID / "
            "OPENAI_PROJECT_ID if the key belongs to another organisation or project) and restart the server.",
        )
    if status == 403:
        fix = (
            "a key (or Entra ID role) of the Azure OpenAI resource that owns the job (AZURE_OPENAI_ENDPOINT)"
            if azure
            else "a key with access to fine-tuning in the job's organisation and project (OPENAI_ORG_ID, "
            "OPENAI_PROJECT_ID)"
        )
        return make(ErrorCode.PERMISSION_DENIED, f"The API key may not read {what} (HTTP 403).{said} Use {fix}.")
    if status == 404:
        if azure and message == "Resource not found":  # Azure's answer for a path or api-version it does not serve
            return make(
                ErrorCode.NOT_FOUND,
                f"Azure OpenAI found nothing at the address for {what} (HTTP 404).{said} On Azure this usually "
                "means a wrong AZURE_OPENAI_ENDPOINT (https://<resource>.openai.azure.com, without a path) or a "
                f"missing or unknown api-version (OPENAI_API_VERSION, default {DEFAULT_AZURE_API_VERSION}), rather "
                "than an unknown id.",
            )
        where = (
            "the jobs of this resource) and that AZURE_OPENAI_ENDPOINT is the resource the job was created on"
            if azure
            else "the jobs this key can see) and that the key belongs to the job's organisation and project"
        )
        if listing or error is None or (message or "").lower().startswith("invalid url"):
            # A listing always exists, and a 404 without an API error object is not the API's: the address is wrong.
            setting = "AZURE_OPENAI_ENDPOINT (or OPENAI_BASE_URL)" if azure else "OPENAI_BASE_URL"
            return make(
                ErrorCode.NOT_FOUND,
                f"The API address answered HTTP 404 for {what}, as if it were not the API.{said} Check "
                f"{setting}: OpenAI's is https://api.openai.com/v1 (it usually ends in /v1).",
            )
        return make(
            ErrorCode.NOT_FOUND,
            f"{what[:1].upper()}{what[1:]} was not found (HTTP 404).{said} Check the id (list_jobs shows {where}.",
        )
    if status == 429:
        if server_wait is not None and server_wait > 0:
            wait = say_wait(server_wait)
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
            f"The API failed while {doing} {what} (HTTP {status}, {tries}).{said} It is probably a passing "
            "outage: try again in a minute.",
            retry_after=server_wait,
        )
    if status == 408:
        return make(ErrorCode.TIMEOUT, f"The API timed out {doing} {what} (HTTP 408, {tries}).{said} Try again.")
    if status == 409:
        return make(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"The API reported a conflict {doing} {what} (HTTP 409, {tries}).{said} Try again shortly.",
        )
    if azure and message and "api version" in message.lower().replace("-", " "):
        return make(
            ErrorCode.INVALID_ARGUMENT,
            f"Azure OpenAI refused the api-version of the request for {what} (HTTP {status}).{said} Set "
            f"OPENAI_API_VERSION to a version this resource supports (default {DEFAULT_AZURE_API_VERSION}; the v1 "
            "API at .../openai/v1 needs none) and restart the server.",
        )
    return make(
        ErrorCode.INVALID_ARGUMENT,
        f"The API refused the request for {what} (HTTP {status}).{said} Check the arguments.",
    )


def _admin_answer(status: int, what: str, said: str) -> tuple[ErrorCode, str]:
    """The code and sentence for a 401, 403 or 404 of a request sent with the admin key."""
    if status == 401:
        return ErrorCode.AUTH_FAILED, (
            f"The API rejected the admin key (HTTP 401).{said} Set {ADMIN_KEY_ENV} to a valid admin key "
            "(sk-admin-...) of the organisation and restart the server."
        )
    if status == 403:
        return ErrorCode.PERMISSION_DENIED, (
            f"The key may not read the {what} (HTTP 403).{said} Reading them needs an admin key (sk-admin-...) of "
            f"the organisation, not a project or user key: set {ADMIN_KEY_ENV} to one and restart the server."
        )
    return ErrorCode.NOT_FOUND, (
        f"The {what} could not be read: the API knows no such checkpoint or model (HTTP 404).{said} Check the "
        "name: list_checkpoints shows each checkpoint's "
        "fine_tuned_model_checkpoint, list_fine_tuned_models the fine-tuned models."
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
