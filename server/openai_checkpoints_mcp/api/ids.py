"""The ids this server puts into URL paths, and the check of those that come from the API.

A job id or a file id becomes a path segment (``/fine_tuning/jobs/<id>/checkpoints``, ``/files/<id>/content``). Ids
from the assistant are checked against these patterns by the tools' input schemas (`tools.arguments`); ids that come
from the API (a listed job, a job's result, training and validation files) are checked against the same patterns
before any request is built from them, so that an answer can never steer a request somewhere else
(``ftjob-x/../../admin/delete``). Every segment is escaped as well (`client.path_segment`).
"""

from __future__ import annotations

import re

from ..errors import CheckpointsError, ErrorCode

JOB_ID_PATTERN = r"^ftjob-[A-Za-z0-9_-]+$"
FILE_ID_PATTERN = r"^file-[A-Za-z0-9_-]+$"
MAX_ID_LENGTH = 100

JOB_ID_RULE = "'ftjob-' followed by letters, digits, '_' or '-', at most 100 characters"
FILE_ID_RULE = "'file-' followed by letters, digits, '_' or '-', at most 100 characters"

_SHOWN = 60
_FAITHFUL = "Check that OPENAI_BASE_URL points at a faithful OpenAI-compatible API."


def is_job_id(value: object) -> bool:
    """Whether `value` is a fine-tuning job id as the API makes them (and the tools accept them)."""
    return isinstance(value, str) and len(value) <= MAX_ID_LENGTH and re.fullmatch(JOB_ID_PATTERN, value) is not None


def is_file_id(value: object) -> bool:
    """Whether `value` is a file id as the API makes them (``file-`` and 22 or 32 letters or digits)."""
    return isinstance(value, str) and len(value) <= MAX_ID_LENGTH and re.fullmatch(FILE_ID_PATTERN, value) is not None


def shown_id(value: str) -> str:
    """An id from the API for an error sentence: quoted, its control characters escaped, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 4] + "...'"


def not_a_job_id(job_id: str, *, where: str) -> CheckpointsError:
    """``bad_response``: the API gave `job_id` (`where`: "listed a job", ...) but it is not a job id; no request is made
    with it."""
    return CheckpointsError(
        ErrorCode.BAD_RESPONSE,
        f"The API {where} with the id {shown_id(job_id)}, which is not a fine-tuning job id ({JOB_ID_RULE}), so no "
        f"request was made with it. {_FAITHFUL}",
    )


def not_a_file_id(file_id: str) -> CheckpointsError:
    """``bad_response``: the API named `file_id` as a job's file, but it is not a file id; it is not requested."""
    return CheckpointsError(
        ErrorCode.BAD_RESPONSE,
        f"The API named {shown_id(file_id)} as a job's file (its result, training or validation file), which is not a "
        f"file id ({FILE_ID_RULE}), so it was not requested. {_FAITHFUL}",
    )
