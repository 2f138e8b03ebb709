"""The response cache: its unit rules (what is cached, for how long, the bounds) and, end to end, the README's cache
promises (the 5-minute settle rule, listings and events read afresh, refresh=true), request counts
measured at the fake."""

from __future__ import annotations

import time

import pytest

from openai_checkpoints_mcp.api.cache import MAX_FILE_BYTES, MAX_MEMORY_BYTES, MemoryBackend
from openai_checkpoints_mcp.api.models import Checkpoint
from openai_checkpoints_mcp.fake import FakeData

from .helpers import README_JOB, Clock, checkpoint_records, fake_id, job, one_job, open_store

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("finished_ago", "checkpoint_requests"), [(60, 2), (600, 1)])
async def test_checkpoints_read_with_the_job_are_cached_only_five_minutes_after_it_finished(
    serve_fake, finished_ago, checkpoint_requests
):
    """README, Cache: "Checkpoints read in the same instant as the job object are cached only when the job finished
    more than 5 minutes earlier"."""
    now = int(time.time())
    with serve_fake(one_job(created_at=now - 4000, finished_at=now - finished_ago)) as api:
        async with api.client() as client:
            first = await client.call_tool("list_checkpoints", {"job_id": README_JOB})
            second = await client.call_tool("list_checkpoints", {"job_id": README_JOB})
    assert first.structured_content["rows"] == second.structured_content["rows"]
    assert len(checkpoint_records(first.structured_content)) == 3
    assert len(api.upstream_requests("/checkpoints")) == checkpoint_requests
    assert (
        len([r for r in api.upstream_requests() if r.path.endswith(README_JOB)]) == 1
    )  # the finished job object is kept


@pytest.mark.parametrize(
    ("tool", "args", "path_end"),
    [
        ("list_jobs", {}, "/fine_tuning/jobs"),
        ("list_jobs", {"suffix": "support-bot"}, "/fine_tuning/jobs"),
        ("list_events", {"job_id": README_JOB}, "/events"),
        ("list_events", {"job_id": README_JOB, "level": "info"}, "/events"),
    ],
)
async def test_list_jobs_and_list_events_always_read_afresh(serve_fake, tool, args, path_end):
    """README, Cache: "list_jobs and list_events always read afresh" (even for a job finished long ago)."""
    data = one_job()
    data.events[README_JOB] = [
        {
            "object": "fine_tuning.job.event",
            "id": fake_id("ftevent-", 1),
            "created_at": 1754039000,
            "level": "info",
            "message": "The job has successfully completed",
            "data": {},
        }
    ]
    with serve_fake(data) as api:
        async with api.client() as client:
            first = await client.call_tool(tool, args)
            second = await client.call_tool(tool, args)
    assert first.structured_content == second.structured_content
    assert len([r for r in api.faults.requests if r.path.endswith(path_end)]) == 2


async def test_refresh_true_rereads_cached_checkpoints(serve_fake):
    """README, Cache: "refresh=true on the other tools bypasses the cache" (list_checkpoints)."""
    with serve_fake(one_job()) as api:  # finished in 2025: its checkpoints are cached at once
        async with api.client() as client:
            await client.call_tool("list_checkpoints", {"job_id": README_JOB})
            await client.call_tool("list_checkpoints", {"job_id": README_JOB})
            cached = len(api.upstream_requests("/checkpoints"))
            refreshed = await client.call_tool("list_checkpoints", {"job_id": README_JOB, "refresh": True})
    assert cached == 1
    assert len(api.upstream_requests("/checkpoints")) == 2 and refreshed.structured_content["count"] == 3


@pytest.mark.parametrize(
    ("status", "job_requests"),
    [
        ("failed", 1),
        ("cancelled", 1),
        ("succeeded", 1),
        ("running", 2),
        ("paused", 2),
    ],
)
async def test_failed_and_cancelled_jobs_are_cached_like_succeeded_ones(serve_fake, status, job_requests):
    """README, Cache: "Once a job is succeeded, failed or cancelled, ... the server keeps ... the job object"; nothing
    of a running or paused job is cached."""
    with serve_fake(one_job(status=status)) as api:
        async with api.client() as client:
            first = await client.call_tool("get_job", {"job_id": README_JOB})
            second = await client.call_tool("get_job", {"job_id": README_JOB})
    assert first.structured_content == second.structured_content and first.structured_content["status"] == status
    assert len(api.upstream_requests(f"/fine_tuning/jobs/{README_JOB}")) == job_requests


async def test_a_result_file_over_64_mib_is_not_cached_and_one_at_the_cap_is():
    """README, Cache: "result files at most 64 MiB"."""
    cap = 64 * 1024 * 1024
    assert cap == MAX_FILE_BYTES
    cache = MemoryBackend(8)
    await cache.put(("file", "file-over"), bytes(cap + 1), stored_at=0, size=cap + 1)
    assert await cache.get(("file", "file-over")) is None and len(cache) == 0
    await cache.put(("file", "file-at-cap"), bytes(cap), stored_at=0, size=cap)
    stored = await cache.get(("file", "file-at-cap"))
    assert stored is not None and len(stored.value) == cap


async def test_the_cache_is_a_bounded_lru():
    cache = MemoryBackend(2)
    for name in ("a", "b"):
        await cache.put(("checkpoints", name), (Checkpoint.model_validate({"id": f"ftckpt_{name}"}),), stored_at=0)
    assert await cache.get(("checkpoints", "a")) is not None  # a is now the most recent
    await cache.put(("file", "file-1"), b"x", stored_at=0, size=1)
    assert await cache.get(("checkpoints", "b")) is None and await cache.get(("checkpoints", "a")) is not None
    assert len(cache) == 2


async def test_files_are_bounded_by_bytes_and_size_zero_keeps_nothing():
    cache = MemoryBackend(100)
    for name in ("big", "bigger"):
        await cache.put(("file", name), b"x", stored_at=0, size=MAX_FILE_BYTES // 2 + 1)
    assert await cache.get(("file", "big")) is None and await cache.get(("file", "bigger")) is not None
    nothing = MemoryBackend(0)
    await nothing.put(("file", "f"), b"1", stored_at=0, size=1)
    assert await nothing.get(("file", "f")) is None


async def test_the_memory_cache_is_bounded_by_bytes_not_only_by_entries():
    """Hardening issue, item 7: 24 jobs of 9,900 checkpoints took 456 MB within the 512 entries; the default bound
    (`MAX_MEMORY_BYTES`, 256 MiB) now counts each checkpoint list by its estimated size."""
    one = Checkpoint.model_validate({"id": "ftckpt_x", "metrics": {"step": 1, "train_loss": 0.5}})
    cache = MemoryBackend(512)
    for n in range(24):
        await cache.put(("checkpoints", f"ftjob-{n}"), (one,) * 9900, stored_at=0)
    assert cache.bytes <= MAX_MEMORY_BYTES and len(cache) < 24
    assert await cache.get(("checkpoints", "ftjob-23")) is not None  # the newest stays, the oldest went first
    assert await cache.get(("checkpoints", "ftjob-0")) is None
    small = MemoryBackend(100, max_bytes=64 * 1024)
    for name in ("a", "b", "c"):
        await small.put(("job", name), None, stored_at=0)
    assert len(small) == 3
    await small.put(("checkpoints", "big"), (one,) * 30, stored_at=0)  # ~90 KB: over the bound, not kept
    assert await small.get(("checkpoints", "big")) is None and len(small) == 3


async def test_drop_kind_forgets_only_that_kind():
    cache = MemoryBackend(10)
    await cache.put(("listing", "a"), (), stored_at=0)
    await cache.put(("listing", "b"), (), stored_at=0)
    await cache.put(("job", "a"), None, stored_at=0)
    await cache.drop_kind("listing")
    assert len(cache) == 1 and await cache.get(("job", "a")) is not None


async def test_only_finished_jobs_are_cached_and_job_objects_expire(serve_fake):
    """The store's rules: a running job is always read afresh; a finished one is served for the job TTL."""
    running, done = fake_id("ftjob-", 1), fake_id("ftjob-", 2)
    data = FakeData(jobs=[job(running, status="running"), job(done)])
    clock = Clock(0)
    with serve_fake(data) as api:
        async with open_store(api.base_url, clock, cache_ttl=60) as store:
            for _ in range(2):
                assert (await store.job(running)).status == "running"
                assert (await store.job(done)).status == "succeeded"
            assert len(api.upstream_requests(running)) == 2 and len(api.upstream_requests(done)) == 1
            clock.now = 61
            await store.job(done)
            assert len(api.upstream_requests(done)) == 2


async def test_listings_expire_after_their_ttl(serve_fake):
    clock = Clock(0)
    with serve_fake(FakeData(jobs=[job(fake_id("ftjob-", 1), status="running")])) as api:
        async with open_store(api.base_url, clock, listing_ttl=5) as store:

            async def ages() -> list[float | None]:
                return [page.cached_age async for page in store.job_pages(page_size=100)]

            assert await ages() == [None]
            clock.now = 4
            assert await ages() == [4.0]
            clock.now = 6
            assert await ages() == [None]
    assert len(api.upstream_requests("/fine_tuning/jobs")) == 2
