"""The retry policy of openai-python, in one place and free of I/O.

Which failures are retried and how long to wait in between follow
openai-python 3.x (``_constants.py`` and ``_base_client.py``):

* a server-directed wait (``retry-after-ms``, then ``retry-after`` as seconds or an
  HTTP date) is honoured when it is above 0 and at most `MAX_RETRY_AFTER` seconds;
  a longer one is not slept: the failure is reported with the wait instead;
* ``x-should-retry: true|false`` overrides the status;
* otherwise 408, 409, 429 and every status from 500 up are retried, and so are
  connection errors and timeouts;
* without a server-directed wait: exponential backoff from `INITIAL_RETRY_DELAY`,
  doubling up to `MAX_RETRY_DELAY`, with jitter that only shortens it (75-100 %).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 120.0
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def parse_retry_after(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say (or said nonsense).

    `headers` must be case-insensitive or lower-cased (httpx headers are).
    """
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            seconds = float(value) / 1000
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return seconds
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - now()
    return seconds if math.isfinite(seconds) else None


@dataclass(frozen=True)
class RetryDecision:
    """What to do after one failed attempt."""

    retry: bool
    wait: float = 0.0
    """Seconds to sleep before the next attempt (when `retry`)."""
    server_wait: float | None = None
    """The server-directed wait, when the server gave one (reported even when not slept)."""


def backoff_delay(retries_taken: int, *, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: 0.5 s doubling up to 8 s, times 0.75-1."""
    base = min(INITIAL_RETRY_DELAY * 2.0 ** min(retries_taken, 16), MAX_RETRY_DELAY)
    return base * (1 - 0.25 * rand())


def is_retryable_status(status: int) -> bool:
    """408, 409, 429 and every 5xx."""
    return status in RETRYABLE_STATUSES or status >= 500


def decide(
    *,
    status: int | None,
    headers: Mapping[str, str] | None,
    retries_taken: int,
    max_retries: int,
    rand: Callable[[], float] = random.random,
    now: Callable[[], float] = time.time,
) -> RetryDecision:
    """Decide whether to retry after an attempt that failed.

    Args:
        status: the HTTP status, or None for a connection error or a timeout.
        headers: the response headers (None without a response).
        retries_taken: retries already made (0 after the first attempt).
        max_retries: retries allowed in all.
    """
    headers = headers or {}
    server_wait = parse_retry_after(headers, now=now) if status is not None else None
    if retries_taken >= max_retries:
        return RetryDecision(retry=False, server_wait=server_wait)
    if server_wait is not None and server_wait > MAX_RETRY_AFTER:
        return RetryDecision(retry=False, server_wait=server_wait)
    should_retry = headers.get("x-should-retry") if status is not None else None
    if should_retry == "true":
        retry = True
    elif should_retry == "false":
        retry = False
    else:
        retry = status is None or is_retryable_status(status)
    if not retry:
        return RetryDecision(retry=False, server_wait=server_wait)
    if server_wait is not None and 0 < server_wait <= MAX_RETRY_AFTER:
        wait = server_wait
    else:
        wait = backoff_delay(retries_taken, rand=rand)
    return RetryDecision(retry=True, wait=wait, server_wait=server_wait)
