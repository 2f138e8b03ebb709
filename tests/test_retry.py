"""Retries as openai-python retries: the policy (`api.retry`) as a pure function, and the client's request loop over
real HTTP against the fault injector (statuses, Retry-After forms, x-should-retry, timeouts, headers sent)."""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import replace

import pytest

from openai_checkpoints_mcp.api.client import OpenAIClient, create_http_client
from openai_checkpoints_mcp.api.retry import (
    DEFAULT_MAX_RETRIES,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RetryDecision,
    backoff_delay,
    decide,
    is_retryable_status,
    parse_retry_after,
)
from openai_checkpoints_mcp.errors import CheckpointsError
from openai_checkpoints_mcp.fake import FakeData, Fault

from .helpers import job

pytestmark = pytest.mark.anyio


JOB = "ftjob-Retry00000000000000000001"


async def _get_job_with(serve_fake, faults: list[Fault], **overrides):
    """Returns (outcome, sleeps, attempts): outcome is the Job or the CheckpointsError raised."""
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    with serve_fake(FakeData(jobs=[job(JOB)])) as api:
        api.faults.add(*faults)
        settings = replace(api.settings, **overrides)
        async with create_http_client(settings) as http:
            client = OpenAIClient(http, settings, sleep=record)
            try:
                outcome = await client.get_job(JOB)
            except CheckpointsError as exc:
                outcome = exc
        attempts = len(api.faults.requests)
        counts = [r.headers.get("x-stainless-retry-count") for r in api.faults.requests]
    assert counts == [str(n) for n in range(attempts)]
    return outcome, sleeps, attempts


def _backoff_ok(sleeps: list[float]) -> bool:
    bases = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    return all(0.75 * base <= s <= base for s, base in zip(sleeps, bases, strict=False))


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_statuses_take_three_attempts_with_backoff(serve_fake, status):
    outcome, sleeps, attempts = await _get_job_with(serve_fake, [Fault(status=status, times=3)])
    assert isinstance(outcome, CheckpointsError)
    assert attempts == 3 and len(sleeps) == 2 and _backoff_ok(sleeps)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_statuses_are_not_retried(serve_fake, status):
    outcome, sleeps, attempts = await _get_job_with(serve_fake, [Fault(status=status)])
    assert isinstance(outcome, CheckpointsError) and outcome.status == status
    assert attempts == 1 and sleeps == []


async def test_retry_then_success_returns_the_job(serve_fake):
    outcome, sleeps, attempts = await _get_job_with(serve_fake, [Fault(status=500), Fault(status=502)])
    assert not isinstance(outcome, CheckpointsError) and outcome.id == JOB
    assert attempts == 3 and len(sleeps) == 2


async def test_retry_after_ms_is_honoured_exactly(serve_fake):
    fault = Fault(status=429, headers={"retry-after-ms": "250", "retry-after": "7"}, times=3)
    outcome, sleeps, attempts = await _get_job_with(serve_fake, [fault])
    assert outcome.code == "rate_limited" and outcome.retry_after == 0.25
    assert attempts == 3 and sleeps == [0.25, 0.25]


async def test_retry_after_seconds_is_honoured(serve_fake):
    outcome, sleeps, attempts = await _get_job_with(
        serve_fake, [Fault(status=503, headers={"retry-after": "1.5"}, times=2)]
    )
    assert outcome.id == JOB and sleeps == [1.5, 1.5] and attempts == 3


async def test_retry_after_http_date_is_honoured(serve_fake):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    outcome, sleeps, attempts = await _get_job_with(serve_fake, [Fault(status=429, headers={"retry-after": when})])
    assert outcome.id == JOB and attempts == 2
    assert 27 <= sleeps[0] <= 31


async def test_retry_after_above_120_s_is_reported_not_slept(serve_fake):
    outcome, sleeps, attempts = await _get_job_with(serve_fake, [Fault(status=429, headers={"retry-after": "200"})])
    assert outcome.code == "rate_limited" and outcome.retry_after == 200
    assert attempts == 1 and sleeps == []
    assert "Wait 200 s" in outcome.text


async def test_a_wait_longer_than_the_deadline_left_is_reported_not_slept(serve_fake):
    import anyio

    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    with serve_fake(FakeData(jobs=[job(JOB)])) as api:
        api.faults.add(Fault(status=429, headers={"retry-after": "60"}))
        async with create_http_client(api.settings) as http:
            client = OpenAIClient(http, api.settings, sleep=record)
            with anyio.fail_after(10), pytest.raises(CheckpointsError) as raised:
                await client.get_job(JOB)
    assert raised.value.code == "rate_limited" and "60 s" in raised.value.text and sleeps == []


@pytest.mark.parametrize(
    ("header", "status", "attempts"),
    [("true", 400, 3), ("false", 503, 1), ("false", 429, 1)],
)
async def test_x_should_retry_overrides_the_status(serve_fake, header, status, attempts):
    fault = Fault(status=status, headers={"x-should-retry": header}, times=3)
    outcome, sleeps, made = await _get_job_with(serve_fake, [fault])
    assert isinstance(outcome, CheckpointsError) and made == attempts and len(sleeps) == attempts - 1


async def test_max_retries_zero_makes_one_attempt(serve_fake):
    outcome, sleeps, attempts = await _get_job_with(serve_fake, [Fault(status=500, times=3)], max_retries=0)
    assert outcome.code == "upstream_unavailable" and attempts == 1 and sleeps == []
    assert "1 attempt)" in outcome.text


async def test_timeouts_are_retried_then_reported(serve_fake):
    slow = Fault(delay=0.5, passthrough_after_delay=True, times=3)
    outcome, sleeps, attempts = await _get_job_with(serve_fake, [slow], timeout=0.1)
    assert outcome.code == "timeout" and attempts == 3 and len(sleeps) == 2 and _backoff_ok(sleeps)


async def test_headers_sent(serve_fake):
    with serve_fake(FakeData(jobs=[job(JOB)])) as api:
        settings = replace(api.settings, organization="org-abc", project="proj_xyz")
        async with create_http_client(settings) as http:
            await OpenAIClient(http, settings).get_job(JOB)
        headers = api.faults.requests[0].headers
    assert headers["authorization"] == f"Bearer {settings.api_key}"
    assert headers["openai-organization"] == "org-abc" and headers["openai-project"] == "proj_xyz"


NOW = 1754035200.0
"""Fri, 01 Aug 2025 08:00:00 GMT, as a unix time."""


def zero() -> float:
    return 0.0


def one() -> float:
    return 1.0


def fixed_now() -> float:
    return NOW


def first_failure(status: int | None, headers: dict[str, str] | None = None, **kwargs: object) -> RetryDecision:
    """The decision after the first attempt failed, with jitter off and the clock fixed."""
    options: dict[str, object] = {
        "retries_taken": 0,
        "max_retries": 2,
        "rand": zero,
        "now": fixed_now,
    }
    options.update(kwargs)
    return decide(status=status, headers=headers, **options)  # type: ignore[arg-type]


def test_constants_match_openai_python() -> None:
    assert DEFAULT_MAX_RETRIES == 2
    assert INITIAL_RETRY_DELAY == 0.5
    assert MAX_RETRY_DELAY == 8.0
    assert MAX_RETRY_AFTER == 120.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_retryable_status_is_retried_with_backoff(status: int) -> None:
    assert first_failure(status) == RetryDecision(retry=True, wait=0.5, server_wait=None)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_error_status_is_not_retried(status: int) -> None:
    assert first_failure(status) == RetryDecision(retry=False, wait=0.0, server_wait=None)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (407, False),
        (408, True),
        (409, True),
        (410, False),
        (422, False),
        (428, False),
        (429, True),
        (499, False),
        (500, True),
        (501, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
    ],
)
def test_is_retryable_status(status: int, expected: bool) -> None:
    assert is_retryable_status(status) is expected


def test_connection_error_is_retried() -> None:
    assert first_failure(None) == RetryDecision(retry=True, wait=0.5, server_wait=None)


def test_connection_error_ignores_headers() -> None:
    # Without a response there are no headers to obey, even if some are passed in by mistake.
    decision = first_failure(None, {"x-should-retry": "false", "retry-after": "200"})
    assert decision == RetryDecision(retry=True, wait=0.5, server_wait=None)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_should_retry_true_retries_any_status(status: int) -> None:
    assert first_failure(status, {"x-should-retry": "true"}) == RetryDecision(retry=True, wait=0.5)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 503])
def test_should_retry_false_never_retries(status: int) -> None:
    assert first_failure(status, {"x-should-retry": "false"}) == RetryDecision(retry=False)


@pytest.mark.parametrize("value", ["yes", "1", ""])
def test_other_should_retry_values_fall_back_to_the_status(value: str) -> None:
    assert first_failure(404, {"x-should-retry": value}).retry is False
    assert first_failure(503, {"x-should-retry": value}).retry is True


def test_should_retry_true_sleeps_the_servers_short_wait() -> None:
    decision = first_failure(404, {"x-should-retry": "true", "retry-after-ms": "250"})
    assert decision == RetryDecision(retry=True, wait=0.25, server_wait=0.25)


def test_should_retry_false_wins_over_a_short_server_wait() -> None:
    decision = first_failure(429, {"x-should-retry": "false", "retry-after": "1"})
    assert decision == RetryDecision(retry=False, server_wait=1.0)


def test_should_retry_true_does_not_outlast_max_retries() -> None:
    assert first_failure(400, {"x-should-retry": "true"}, retries_taken=2).retry is False


def test_no_retry_headers_means_no_server_wait() -> None:
    assert parse_retry_after({}) is None


def test_retry_after_ms_is_milliseconds() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25


def test_retry_after_ms_takes_precedence_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "30"}) == 1.5


def test_unparsable_retry_after_ms_falls_back_to_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "soon", "retry-after": "7"}) == 7.0


def test_retry_after_as_float_seconds() -> None:
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5


def test_retry_after_as_http_date() -> None:
    headers = {"retry-after": "Fri, 01 Aug 2025 08:00:30 GMT"}
    assert parse_retry_after(headers, now=fixed_now) == 30.0


def test_retry_after_http_date_in_the_past_is_negative() -> None:
    headers = {"retry-after": "Fri, 01 Aug 2025 07:59:50 GMT"}
    assert parse_retry_after(headers, now=fixed_now) == -10.0


def test_garbage_retry_after_is_ignored() -> None:
    assert parse_retry_after({"retry-after": "whenever"}, now=fixed_now) is None


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_retry_after_is_ignored(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) is None


def test_server_wait_is_slept_exactly() -> None:
    decision = first_failure(429, {"retry-after-ms": "10"})
    assert decision == RetryDecision(retry=True, wait=0.01, server_wait=0.01)


def test_server_wait_from_http_date_is_slept() -> None:
    decision = first_failure(503, {"retry-after": "Fri, 01 Aug 2025 08:00:30 GMT"})
    assert decision == RetryDecision(retry=True, wait=30.0, server_wait=30.0)


def test_server_wait_of_exactly_120_s_is_honoured() -> None:
    assert first_failure(429, {"retry-after": "120"}) == RetryDecision(retry=True, wait=120.0, server_wait=120.0)


@pytest.mark.parametrize(
    "headers",
    [{"retry-after": "120.5"}, {"retry-after": "200"}, {"retry-after-ms": "121000"}],
)
def test_server_wait_above_120_s_is_not_retried_but_reported(
    headers: dict[str, str],
) -> None:
    decision = first_failure(429, headers)
    expected_wait = parse_retry_after(headers)
    assert expected_wait is not None and expected_wait > 120
    assert decision == RetryDecision(retry=False, wait=0.0, server_wait=expected_wait)


def test_long_server_wait_beats_should_retry_true() -> None:
    decision = first_failure(500, {"retry-after": "200", "x-should-retry": "true"})
    assert decision == RetryDecision(retry=False, server_wait=200.0)


def test_long_http_date_wait_is_not_retried() -> None:
    decision = first_failure(503, {"retry-after": "Fri, 01 Aug 2025 08:05:00 GMT"})
    assert decision == RetryDecision(retry=False, server_wait=300.0)


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "0"},
        {"retry-after-ms": "0"},
        {"retry-after": "-3"},
        {"retry-after-ms": "-5"},
        {"retry-after": "Fri, 01 Aug 2025 07:59:50 GMT"},
    ],
)
def test_zero_or_negative_server_wait_falls_back_to_backoff(
    headers: dict[str, str],
) -> None:
    decision = first_failure(429, headers)
    assert decision.retry is True
    assert decision.wait == 0.5
    assert decision.server_wait is not None and decision.server_wait <= 0


def test_server_wait_reported_on_a_status_that_is_not_retried() -> None:
    assert first_failure(404, {"retry-after": "5"}) == RetryDecision(retry=False, server_wait=5.0)


def test_server_wait_reported_when_retries_are_exhausted() -> None:
    decision = first_failure(429, {"retry-after": "5"}, retries_taken=2)
    assert decision == RetryDecision(retry=False, server_wait=5.0)


@pytest.mark.parametrize(
    ("retries_taken", "expected"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)],
)
def test_backoff_without_jitter(retries_taken: int, expected: float) -> None:
    assert backoff_delay(retries_taken, rand=zero) == expected


@pytest.mark.parametrize(
    ("retries_taken", "expected"),
    [(0, 0.375), (1, 0.75), (2, 1.5), (3, 3.0), (4, 6.0), (5, 6.0)],
)
def test_backoff_with_full_jitter_is_75_percent(retries_taken: int, expected: float) -> None:
    assert backoff_delay(retries_taken, rand=one) == expected


def test_backoff_with_half_jitter() -> None:
    assert backoff_delay(1, rand=lambda: 0.5) == 0.875


@pytest.mark.parametrize(
    ("retries_taken", "expected"),
    [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0)],
)
def test_decide_uses_backoff_for_the_nth_retry(retries_taken: int, expected: float) -> None:
    decision = first_failure(500, retries_taken=retries_taken, max_retries=10)
    assert decision == RetryDecision(retry=True, wait=expected)


def test_decide_passes_its_rand_to_the_backoff() -> None:
    assert first_failure(500, retries_taken=3, max_retries=10, rand=one).wait == 3.0


@pytest.mark.parametrize(("retries_taken", "max_retries"), [(0, 0), (2, 2), (3, 2), (10, 10)])
def test_exhausted_retries_are_not_retried(retries_taken: int, max_retries: int) -> None:
    decision = first_failure(503, retries_taken=retries_taken, max_retries=max_retries)
    assert decision == RetryDecision(retry=False)


def test_last_allowed_retry_is_taken() -> None:
    assert first_failure(503, retries_taken=1, max_retries=2).retry is True


def test_exhausted_connection_error_is_not_retried() -> None:
    assert first_failure(None, retries_taken=2, max_retries=2).retry is False


def simulate(
    status: int | None,
    headers: dict[str, str],
    *,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> tuple[int, list[float], RetryDecision]:
    """Drive `decide` as a request loop would against a server that always fails the same way.

    Returns the number of attempts, the waits slept in between, and the final decision.
    """
    waits: list[float] = []
    for retries_taken in range(max_retries + 5):  # a bound, so a policy bug cannot loop forever
        decision = decide(
            status=status,
            headers=headers,
            retries_taken=retries_taken,
            max_retries=max_retries,
            rand=zero,
            now=fixed_now,
        )
        if not decision.retry:
            return retries_taken + 1, waits, decision
        waits.append(decision.wait)
    raise AssertionError("the retry policy never gave up")


@pytest.mark.parametrize(
    ("status", "headers", "attempts", "waits"),
    [
        (500, {}, 3, [0.5, 1.0]),
        (409, {}, 3, [0.5, 1.0]),
        (404, {}, 1, []),
        (429, {"retry-after-ms": "10"}, 3, [0.01, 0.01]),
        (400, {"x-should-retry": "true"}, 3, [0.5, 1.0]),
        (503, {"x-should-retry": "false"}, 1, []),
        (429, {"retry-after": "200"}, 1, []),
        (None, {}, 3, [0.5, 1.0]),
    ],
    ids=[
        "500",
        "409",
        "404",
        "429-retry-after-ms-10",
        "400-should-retry-true",
        "503-should-retry-false",
        "429-retry-after-200",
        "connection-error",
    ],
)
def test_request_loop_attempts(status: int | None, headers: dict[str, str], attempts: int, waits: list[float]) -> None:
    taken, slept, _ = simulate(status, headers)
    assert taken == attempts
    assert slept == waits


def test_request_loop_reports_the_refused_long_wait() -> None:
    _, _, final = simulate(429, {"retry-after": "200"})
    assert final.server_wait == 200.0


def test_request_loop_with_no_retries_makes_one_attempt() -> None:
    assert simulate(500, {}, max_retries=0)[0] == 1


def test_request_loop_total_backoff_with_five_retries() -> None:
    taken, slept, _ = simulate(502, {}, max_retries=5)
    assert taken == 6
    assert slept == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert math.isclose(sum(slept), 15.5)
