"""The API client against the fake over real HTTP: exact attempts and the waits it actually sleeps.

The client's sleep is replaced by a recorder, so the waits are checked exactly without slowing the suite.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import replace

import pytest

from openai_checkpoints_mcp.api.client import OpenAIClient, create_http_client
from openai_checkpoints_mcp.errors import CheckpointsError
from openai_checkpoints_mcp.fake import FakeData, Fault

from .factories import job

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


@pytest.mark.parametrize(("header", "status", "attempts"), [("true", 400, 3), ("false", 503, 1), ("false", 429, 1)])
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
