"""Typed failures that the tools turn into MCP tool errors.

Every failure the server anticipates is a `CheckpointsError` carrying a short
`code` (what an assistant can branch on) and an actionable sentence. The text
an assistant sees is always ``"<code>: <message>"``, optionally followed by
the upstream request id, so it can be quoted to OpenAI support.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The short codes that start every tool error text."""

    INVALID_ARGUMENT = "invalid_argument"
    AUTH_MISSING = "auth_missing"
    AUTH_FAILED = "auth_failed"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    TIMEOUT = "timeout"
    BAD_RESPONSE = "bad_response"
    MISSING_DEPENDENCY = "missing_dependency"
    """An optional part of this server is not installed (plot_training_curve without the ``[plot]`` extra)."""
    INTERNAL_ERROR = "internal_error"
    """Something this server did not anticipate went wrong (out of memory, a bug); its log has the traceback."""


class CheckpointsError(Exception):
    """An anticipated failure: bad input, or the upstream API said no.

    Attributes:
        code: the short code, one of `ErrorCode`.
        message: one or two sentences saying what happened and what to do.
        status: the upstream HTTP status, when there was one.
        request_id: the upstream ``x-request-id``, when there was one.
        retry_after: seconds the upstream asked us to wait (rate limits).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self.text)

    @property
    def text(self) -> str:
        """The text an assistant reads: code first, then the sentence, then the request id."""
        text = f"{self.code.value}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


def internal_error(tool: str, exc: BaseException) -> CheckpointsError:
    """The error for an unanticipated failure of `tool` (anything but a `CheckpointsError`): what kind, and what to
    do. Only the exception's type is named: its text may hold anything."""
    if isinstance(exc, MemoryError):
        return CheckpointsError(
            ErrorCode.INTERNAL_ERROR,
            f"The server ran out of memory while running {tool}. Ask for less at once (fewer jobs, fewer points), "
            "or give the server more memory; the server's log (stderr) has the details.",
        )
    return CheckpointsError(
        ErrorCode.INTERNAL_ERROR,
        f"The server failed unexpectedly while running {tool} ({type(exc).__name__}). Try again; if it happens "
        "again, report it with the server's log (stderr), which has the traceback.",
    )


def invalid_argument(message: str) -> CheckpointsError:
    """A caller mistake, found before any request was made."""
    return CheckpointsError(ErrorCode.INVALID_ARGUMENT, message)
