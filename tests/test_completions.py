"""completion/complete through the real MCP client in both eras, and over streamable HTTP: job ids for every job_id of
a prompt or a resource template (most recent first, by the typed prefix, at most 100, from one listing page that
later completions reuse), suffixes and metadata pairs for review_sweep; nothing to complete and a failing API are
empty completions, never errors."""

from __future__ import annotations

import logging

import pytest
from mcp.types import PromptReference, ResourceTemplateReference

from openai_checkpoints_mcp.fake import DEMO_JOB_IDS, FakeData, Fault
from openai_checkpoints_mcp.tools.resources import TEMPLATES

from .helpers import demo_server, fake_id, job, mcp_client

pytestmark = pytest.mark.anyio

CREATED = 1_760_000_000


def many_jobs(n: int = 130) -> FakeData:
    """`n` jobs created a minute apart, listed in no particular order; every tenth is a run of the sweep."""
    data = FakeData()
    for k in range(n):
        sweep = k % 10 == 0
        data.jobs.append(
            job(
                fake_id("ftjob-", k),
                created_at=CREATED + 60 * ((k * 37) % n),
                suffix="lr-sweep" if sweep else f"run-{k % 3}",
                metadata={"sweep": "lr-2026-11"} if sweep else {"team": "support"},
            )
        )
    return data


def newest_first(data: FakeData) -> list[str]:
    return [j["id"] for j in sorted(data.jobs, key=lambda j: j["created_at"], reverse=True)]


JOB_ID_REFS = [PromptReference(name="choose_checkpoint")] + [
    ResourceTemplateReference(uri=spec.uri_template) for spec in TEMPLATES
]


async def test_the_server_advertises_completions(serve_fake, mode):
    with serve_fake(many_jobs(3)) as api:
        async with api.client(mode) as client:
            assert client.server_capabilities.completions is not None


async def test_job_ids_are_the_100_most_recent_for_every_job_id_argument(serve_fake, mode):
    data = many_jobs()
    with serve_fake(data) as api:
        async with api.client(mode) as client:
            completions = [(await client.complete(ref, {"name": "job_id", "value": "ftjob-"})) for ref in JOB_ID_REFS]
        listings = api.upstream_requests("/fine_tuning/jobs")
    expected = newest_first(data)[:100]
    for result in completions:
        assert result.completion.values == expected
        assert result.completion.has_more is True  # 130 jobs: the listing goes on
    assert len(listings) == 1 and listings[0].query == {"limit": ["100"]}  # one page, reused by later completions


async def test_job_ids_match_the_typed_prefix_with_or_without_ftjob(serve_fake, mode):
    data = many_jobs(40)
    ids = newest_first(data)
    typed = ids[5][:8]  # "ftjob-" and two characters
    with serve_fake(data) as api:
        async with api.client(mode) as client:
            ref = PromptReference(name="choose_checkpoint")
            full = await client.complete(ref, {"name": "job_id", "value": typed})
            bare = await client.complete(ref, {"name": "job_id", "value": typed.removeprefix("ftjob-")})
            exact = await client.complete(ref, {"name": "job_id", "value": ids[5]})
    matching = [i for i in ids if i.startswith(typed)]
    assert full.completion.values == bare.completion.values == matching and ids[5] in matching
    assert full.completion.total == len(matching) and full.completion.has_more is False
    assert exact.completion.values == [ids[5]]


async def test_review_sweep_completes_suffixes_and_metadata_pairs(serve_fake, mode):
    with serve_fake(many_jobs(30)) as api:
        async with api.client(mode) as client:
            ref = PromptReference(name="review_sweep")
            suffixes = await client.complete(ref, {"name": "suffix", "value": ""})
            runs = await client.complete(ref, {"name": "suffix", "value": "run-"})
            pairs = await client.complete(ref, {"name": "metadata", "value": "sw"})
    assert sorted(suffixes.completion.values) == ["lr-sweep", "run-0", "run-1", "run-2"]
    assert len(set(suffixes.completion.values)) == len(suffixes.completion.values)
    assert sorted(runs.completion.values) == ["run-0", "run-1", "run-2"]
    assert pairs.completion.values == ["sweep=lr-2026-11"]


@pytest.mark.parametrize(
    ("ref", "argument"),
    [
        (PromptReference(name="test_prompt_with_arguments"), "arg1"),  # the conformance suite's
        (PromptReference(name="before_shutdown"), "job_id"),
        (PromptReference(name="choose_checkpoint"), "metric"),
        (ResourceTemplateReference(uri="openai-ft://jobs/{job_id}/nothing"), "job_id"),
        (ResourceTemplateReference(uri="test://template/{id}/data"), "id"),
    ],
)
async def test_nothing_to_complete_is_an_empty_completion_without_requests(serve_fake, mode, ref, argument):
    with serve_fake(many_jobs(5)) as api:
        async with api.client(mode) as client:
            result = await client.complete(ref, {"name": argument, "value": "x"})
        assert api.faults.requests == []
    assert result.completion.values == []


@pytest.mark.parametrize(
    "fault",
    [Fault(status=500, headers={"retry-after-ms": "5"}, times=3), Fault(status=401), Fault(status=200, body=b"[")],
    ids=["500", "401", "garbage"],
)
async def test_a_failing_api_is_an_empty_completion_logged_at_debug(serve_fake, mode, captured_logs, fault):
    with serve_fake(many_jobs(5)) as api:
        api.faults.add(fault)
        async with api.client(mode) as client:
            ref = PromptReference(name="choose_checkpoint")
            failed = await client.complete(ref, {"name": "job_id", "value": "ftjob-"})
            recovered = await client.complete(ref, {"name": "job_id", "value": "ftjob-"})
    assert failed.completion.values == [] and len(recovered.completion.values) == 5
    notes = [r for r in captured_logs.records if "completion of job_id" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.DEBUG
    assert not [r for r in captured_logs.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_no_key_is_an_empty_completion(serve_fake, mode):
    with serve_fake(many_jobs(5)) as api:
        async with api.client(mode, api_key=None) as client:
            result = await client.complete(PromptReference(name="choose_checkpoint"), {"name": "job_id", "value": ""})
        assert api.faults.requests == []
    assert result.completion.values == []


async def test_completions_over_streamable_http(mode):
    with demo_server() as root:
        async with mcp_client(root, mode) as client:
            ref = ResourceTemplateReference(uri="openai-ft://jobs/{job_id}/metrics.csv")
            result = await client.complete(ref, {"name": "job_id", "value": "ftjob-gwW"})
    assert result.completion.values == [DEMO_JOB_IDS["support_bot"]]


async def test_a_prompt_that_toolsets_leave_out_is_not_completed():
    """--toolsets jobs serves no prompt (each needs a tool outside it): none of them completes, though a resource
    template's job id still does."""
    from mcp import Client

    from openai_checkpoints_mcp.config import Settings
    from openai_checkpoints_mcp.server import create_server

    async with Client(create_server(Settings.from_env({}, demo=True, toolsets="jobs"))) as client:
        assert (await client.list_prompts()).prompts == []
        for ref, argument in [
            (PromptReference(name="choose_checkpoint"), "job_id"),
            (PromptReference(name="review_sweep"), "suffix"),
        ]:
            left_out = await client.complete(ref, {"name": argument, "value": ""})
            assert left_out.completion.values == []
        template = await client.complete(
            ResourceTemplateReference(uri=TEMPLATES[0].uri_template), {"name": "job_id", "value": ""}
        )
    assert DEMO_JOB_IDS["support_bot"] in template.completion.values
