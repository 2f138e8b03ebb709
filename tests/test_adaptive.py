"""Concurrency that adapts: the AIMD bound (`api.adaptive`) as a pure class, the fake's rate limit, and the client
under that rate limit over real HTTP through MCP (few 429s; the bound measured at the fake shrinks, then recovers)."""

from __future__ import annotations

import random
import time

import anyio
import httpx2
import pytest
from mcp import Client

from openai_checkpoints_mcp.api.adaptive import REMAINING_HEADER, AdaptiveLimit
from openai_checkpoints_mcp.api.client import OpenAIClient, create_http_client
from openai_checkpoints_mcp.config import DEFAULT_CONCURRENCY, Settings
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, Fault, FaultInjector
from openai_checkpoints_mcp.server import create_server

from .helpers import TEST_KEY, Clock, job, one_job, serve_app, sweep_data

pytestmark = pytest.mark.anyio


# --- the AIMD class -------------------------------------------------------------------------------------------------


def test_starts_at_the_ceiling():
    assert AdaptiveLimit(16).bound == 16
    assert DEFAULT_CONCURRENCY == 16
    with pytest.raises(ValueError):
        AdaptiveLimit(0)


def test_a_throttle_halves_the_bound_down_to_one():
    limit = AdaptiveLimit(16)
    bounds = []
    for _ in range(6):
        limit.on_throttle(limit.begin())
        bounds.append(limit.bound)
    assert bounds == [8, 4, 2, 1, 1, 1]


def test_successes_grow_it_back_by_about_one_per_round():
    limit = AdaptiveLimit(16)
    for _ in range(3):
        limit.on_throttle(limit.begin())
    assert limit.bound == 2
    for _ in range(2):  # one round at bound 2
        limit.on_success()
    assert limit.bound == 3
    for _ in range(1000):
        limit.on_success()
    assert limit.bound == 16  # and no further


def test_answers_to_requests_sent_before_a_decrease_do_not_shrink_it_again():
    limit = AdaptiveLimit(16)
    tokens = [limit.begin() for _ in range(16)]  # a full round in flight, all answered 429
    assert [limit.on_throttle(t) for t in tokens].count(True) == 1
    assert limit.bound == 8
    assert limit.on_throttle(limit.begin()) and limit.bound == 4  # a request sent after it does


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {}, 8),
        (200, {REMAINING_HEADER: "0"}, 8),
        (200, {REMAINING_HEADER: "15"}, 8),  # fewer left than one round at the bound
        (200, {REMAINING_HEADER: "16"}, 16),
        (200, {REMAINING_HEADER: "nonsense"}, 16),
        (500, {}, 16),
        (404, {}, 16),
        (None, None, 16),
    ],
)
def test_observe_treats_429_and_too_few_remaining_requests_as_throttles(status, headers, expected):
    limit = AdaptiveLimit(16)
    limit.observe(limit.begin(), status, headers)
    assert limit.bound == expected


@pytest.mark.parametrize("seed", range(30))
def test_property_the_bound_stays_within_one_and_the_ceiling(seed):
    rng = random.Random(seed)
    ceiling = rng.randint(1, 64)
    limit = AdaptiveLimit(ceiling)
    tokens = []
    for _ in range(2000):
        roll = rng.random()
        if roll < 0.3 or not tokens:
            tokens.append(limit.begin())
            continue
        token = tokens.pop(rng.randrange(len(tokens)))
        before = limit.bound
        if roll < 0.4:
            shrank = limit.on_throttle(token)
            assert limit.bound == (max(1, before // 2) if shrank else before)
        else:
            limit.on_success()
            assert before <= limit.bound <= before + 1
        assert 1 <= limit.bound <= ceiling


# --- the fake's rate limit ------------------------------------------------------------------------------------------


async def test_the_fake_answers_429_beyond_its_rate_with_retry_after_and_limit_headers():
    clock = Clock()
    fake = FakeOpenAI(one_job(), api_key=TEST_KEY, rate_limit=3, clock=clock)
    headers = {"authorization": f"Bearer {TEST_KEY}"}
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake), base_url="http://fake/v1") as http:
        answers = [await http.get("/fine_tuning/jobs", headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["2", "1", "0", "0"]
        assert answers[0].headers["x-ratelimit-limit-requests"] == "3"
        assert answers[3].headers["retry-after"] == "1" and answers[3].headers["retry-after-ms"] == "1000"
        assert answers[3].json()["error"]["code"] == "rate_limit_exceeded"
        assert fake.throttled == 1
        clock.now += 1.0  # the window has passed
        assert (await http.get("/fine_tuning/jobs", headers=headers)).status_code == 200


async def test_the_fake_has_no_rate_limit_by_default():
    fake = FakeOpenAI(one_job(), api_key=TEST_KEY)
    headers = {"authorization": f"Bearer {TEST_KEY}"}
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake), base_url="http://fake/v1") as http:
        answers = [await http.get("/fine_tuning/jobs", headers=headers) for _ in range(50)]
    assert {a.status_code for a in answers} == {200}
    assert "x-ratelimit-remaining-requests" not in answers[0].headers and fake.throttled == 0


async def test_after_a_429_no_other_request_is_sent_until_its_wait_is_over_and_the_bound_halves(serve_fake):
    first, second = "ftjob-" + "a" * 24, "ftjob-" + "b" * 24
    with serve_fake(FakeData(jobs=[job(first), job(second)])) as api:
        api.faults.add(Fault(status=429, headers={"retry-after-ms": "400"}, path_contains=first))
        async with create_http_client(api.settings) as http:
            client = OpenAIClient(http, api.settings)
            started: dict[str, float] = {}

            async def read(job_id: str) -> None:
                await client.get_job(job_id)
                started.setdefault(job_id, time.perf_counter())

            begin = time.perf_counter()
            async with anyio.create_task_group() as tg:
                tg.start_soon(read, first)
                await anyio.sleep(0.15)  # the 429 has come back; its retry waits 0.4 s
                tg.start_soon(read, second)
            assert started[second] - begin >= 0.35  # it waited for the pause, not only for its own answer
            paths = [r.path.rsplit("/", 1)[1] for r in api.faults.requests]
            assert paths[0] == first and sorted(paths[1:]) == [first, second]  # the retry and the other, together
            assert client.limit.bound == DEFAULT_CONCURRENCY // 2  # halved; two successes since add only 2/8


# --- the client under a rate limit, through MCP ---------------------------------------------------------------------


async def test_a_sweep_under_a_rate_limit_finishes_with_few_429s_and_the_bound_shrinks_then_recovers():
    data, ids = sweep_data(lrs=tuple(0.05 * n for n in range(1, 21)), winner_lr=1.0, others=0)
    fake = FakeOpenAI(data, api_key=TEST_KEY, rate_limit=60)
    faults = FaultInjector(fake, latency=0.05)  # 16 in flight would send ~320 requests a second; ~3 keep to 60
    with serve_app(faults) as base_url:
        settings = Settings(api_key=TEST_KEY, base_url=base_url, timeout=5.0, deadline=60.0, cache_size=0)
        assert settings.concurrency == 16
        async with Client(create_server(settings)) as client:
            job_ids = list(ids.values())
            for _ in range(3):  # 120 reads under the limit
                out = (await client.call_tool("compare_jobs", {"job_ids": job_ids})).structured_content
                assert out["jobs_compared"] == 20 and not out.get("failed")
            requests, arrivals = len(faults.requests), faults.arrivals[:]
            assert fake.throttled / requests < 0.15, (fake.throttled, requests)  # measured 5-10 %
            later = arrivals[len(arrivals) // 2 :]
            assert max(arrivals[:16]) == 16  # it starts at the ceiling...
            assert max(later) < 16 and sum(later) / len(later) <= 8, later  # ...and shrinks under the limit
            fake.rate_limit = None  # the limit lifts: successes grow the bound back to the ceiling
            for _ in range(15):
                faults.reset_peak()
                await client.call_tool("compare_jobs", {"job_ids": job_ids})
                if faults.peak == 16:
                    break
            assert faults.peak == 16


@pytest.mark.parametrize("retry_after", ["-5", "0", "soon"])
async def test_a_429_whose_wait_is_not_a_positive_time_pauses_no_other_request(serve_fake, retry_after):
    """Only a wait the server directs pauses the whole process; a negative, zero or garbage retry-after is the
    request's own backoff."""
    job_id = "ftjob-" + "c" * 24
    with serve_fake(FakeData(jobs=[job(job_id)])) as api:
        api.faults.add(Fault(status=429, headers={"retry-after": retry_after}))
        async with create_http_client(api.settings) as http:
            slept: list[float] = []

            async def record(seconds: float) -> None:
                slept.append(seconds)

            client = OpenAIClient(http, api.settings, sleep=record)
            await client.get_job(job_id)
    assert len(slept) == 1 and slept[0] > 0  # its own backoff
    assert client._resume_at == 0.0  # no pause for the others
