"""End to end: the real MCP client (in memory) -> our server -> httpx2 over real HTTP -> the fake API."""

from __future__ import annotations

import pytest
from mcp import Client, MCPError

from openai_checkpoints_mcp.config import Settings
from openai_checkpoints_mcp.fake import FakeData, FakeOpenAI, Fault, running_server
from openai_checkpoints_mcp.server import create_server

from .conftest import TEST_KEY
from .factories import checkpoint, fake_id, job

pytestmark = pytest.mark.anyio

JOB = "ftjob-Qm7vR2kTz9LpXa4NcW8bHd3E"


def _sft_data(job_id: str = JOB) -> FakeData:
    metrics = {
        120: (0.5274, 0.8533, 0.5102, 0.8572),
        240: (0.3046, 0.9105, 0.3705, 0.8874),
        360: (0.2113, 0.9412, 0.3812, 0.8890),
    }
    checkpoints = [
        checkpoint(
            job_id,
            step,
            {
                "train_loss": tl,
                "train_mean_token_accuracy": ta,
                "full_valid_loss": fl,
                "full_valid_mean_token_accuracy": fa,
            },
        )
        for step, (tl, ta, fl, fa) in metrics.items()
    ]
    return FakeData(jobs=[job(job_id)], checkpoints={job_id: checkpoints})


async def test_best_checkpoint_is_not_the_final_model(serve_fake, mode):
    with serve_fake(_sft_data()) as api:
        async with api.client(mode) as client:
            result = await client.call_tool("best_checkpoint", {"job_id": JOB})
    assert result.is_error is False
    data = result.structured_content
    assert data["metric"] == "full_valid_loss" and data["goal"] == "min"
    assert data["best"]["step_number"] == 240
    assert data["best"]["job_id"] == JOB
    assert data["best"]["fine_tuned_model_checkpoint"].endswith(":ckpt-step-240")
    assert data["best_is_final"] is False
    assert data["final_model"] == "ft:gpt-4o-mini-2024-07-18:acme-labs:support-bot:Bx72KpQd"
    assert [c["step_number"] for c in data["ranking"]] == [240, 360, 120]
    assert "full_valid_loss" in data["rationale"] and "step 360" in data["rationale"]
    assert data["notice"] is None


async def test_250_checkpoints_best_on_last_page_takes_three_page_requests(serve_fake):
    job_id = "ftjob-Big250Checkpoints0000000"
    # The API lists newest (highest step) first, so the lowest steps arrive on the last page.
    checkpoints = [
        checkpoint(job_id, step, {"train_loss": 1.0 + step / 1000, "full_valid_loss": 1.0 + abs(step - 30) / 1000})
        for step in range(10, 2510, 10)
    ]
    data = FakeData(jobs=[job(job_id)], checkpoints={job_id: checkpoints})
    with serve_fake(data, max_page_size=1000) as api:
        async with api.client() as client:
            listed = await client.call_tool("list_checkpoints", {"job_id": job_id})
            page_requests = api.upstream_requests("/checkpoints")
            assert len(page_requests) == 3
            assert [r.query.get("limit") for r in page_requests] == [["100"]] * 3
            assert "after" not in page_requests[0].query
            assert page_requests[1].query["after"] == [checkpoints[-100]["id"]]
            api.faults.requests.clear()
            best = await client.call_tool("best_checkpoint", {"job_id": job_id, "top_k": 5, "refresh": True})
            assert len(api.upstream_requests("/checkpoints")) == 3
            api.faults.requests.clear()
            again = await client.call_tool("best_checkpoint", {"job_id": job_id, "top_k": 5})
            assert api.upstream_requests() == []  # a finished job: served from the cache
            assert again.structured_content == best.structured_content
    assert listed.structured_content["count"] == 250
    assert listed.structured_content["pages_fetched"] == 3
    steps = [c["step_number"] for c in listed.structured_content["checkpoints"]]
    assert steps == sorted(steps) and steps[0] == 10 and steps[-1] == 2500
    assert best.structured_content["best"]["step_number"] == 30
    assert len(best.structured_content["ranking"]) == 5
    assert best.structured_content["checkpoints_considered"] == 250


async def test_list_checkpoints_coverage_without_validation_file(serve_fake):
    job_id = "ftjob-NoValidation0000000000001"
    data = FakeData(
        jobs=[job(job_id, validation=False)],
        checkpoints={
            job_id: [
                checkpoint(job_id, s, {"train_loss": 1 / s, "train_mean_token_accuracy": 0.5}) for s in (100, 200, 300)
            ]
        },
    )
    with serve_fake(data) as api:
        async with api.client() as client:
            listed = await client.call_tool("list_checkpoints", {"job_id": job_id})
            best = await client.call_tool("best_checkpoint", {"job_id": job_id})
    coverage = listed.structured_content["coverage"]
    assert coverage["has_validation_file"] is False and coverage["method"] == "supervised"
    assert "last 3 epochs" in coverage["retention"]
    assert set(listed.structured_content["checkpoints"][0]["metrics"]) == {"train_loss", "train_mean_token_accuracy"}
    assert best.structured_content["metric"] == "train_loss"
    assert "no validation file" in best.structured_content["rationale"]
    assert "cannot detect overfitting" in best.structured_content["rationale"]
    assert best.structured_content["best_is_final"] is True


async def test_failed_job_has_no_best_and_says_why(serve_fake):
    job_id = "ftjob-Hc6Tn1Qv9YpR4wKs2ZmB7dLx"
    error = {
        "code": "invalid_n_examples",
        "message": "Training file has 6 example(s), but must have at least 10",
        "param": "training_file",
    }
    with serve_fake(FakeData(jobs=[job(job_id, status="failed", error=error)])) as api:
        async with api.client() as client:
            result = await client.call_tool("best_checkpoint", {"job_id": job_id})
    assert result.is_error is False
    data = result.structured_content
    assert data["best"] is None and data["ranking"] == [] and data["best_is_final"] is None
    assert "failed" in data["rationale"] and "Training file has 6 example(s)" in data["rationale"]


async def test_ties_break_on_accuracy_then_earlier_step(serve_fake):
    job_id = "ftjob-Ties000000000000000000001"
    cps = [
        checkpoint(job_id, 100, {"full_valid_loss": 0.3, "full_valid_mean_token_accuracy": 0.80}),
        checkpoint(job_id, 200, {"full_valid_loss": 0.3, "full_valid_mean_token_accuracy": 0.85}),
        checkpoint(job_id, 300, {"full_valid_loss": 0.3, "full_valid_mean_token_accuracy": 0.85}),
    ]
    with serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api:
        async with api.client() as client:
            result = await client.call_tool("best_checkpoint", {"job_id": job_id})
    assert [c["step_number"] for c in result.structured_content["ranking"]] == [200, 300, 100]


async def test_custom_metric_needs_goal_and_unknown_metric_lists_accepted(serve_fake):
    job_id = "ftjob-Custom00000000000000000001"
    cps = [checkpoint(job_id, s, {"train_loss": 1.0, "my_score": s / 1000}) for s in (10, 20, 30)]
    with serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api:
        async with api.client() as client:
            no_goal = await client.call_tool("best_checkpoint", {"job_id": job_id, "metric": "my_score"})
            ok = await client.call_tool("best_checkpoint", {"job_id": job_id, "metric": "my_score", "goal": "min"})
            unknown = await client.call_tool("best_checkpoint", {"job_id": job_id, "metric": "bleu"})
    assert no_goal.is_error and no_goal.content[0].text.startswith("invalid_argument: ")
    assert "goal" in no_goal.content[0].text
    assert ok.structured_content["best"]["step_number"] == 10 and ok.structured_content["goal"] == "min"
    assert unknown.is_error and "full_valid_loss" in unknown.content[0].text and "my_score" in unknown.content[0].text


async def test_list_jobs_and_get_job_normalise_quirks(serve_fake):
    dpo = job(
        "ftjob-Zp3Kq8WmN2rT6yVb1XcL5sGh",
        status="running",
        method="dpo",
        validation=False,
        created_at=1754121600,
        error={"code": None, "message": None, "param": None},
        metadata={"team": "support"},
    )
    dpo["method"]["dpo"]["hyperparameters"]["beta"] = 0.1
    failed = job(
        "ftjob-Hc6Tn1Qv9YpR4wKs2ZmB7dLx",
        status="failed",
        created_at=1753948800,
        suffix=None,
        error={"code": "invalid_n_examples", "message": "Too few\nexamples", "param": "training_file"},
    )
    paused = job("ftjob-Paused000000000000000001", status="paused", created_at=1754000000, error={})
    with serve_fake(FakeData(jobs=[failed, dpo, job(JOB), paused])) as api:
        async with api.client() as client:
            listed = await client.call_tool("list_jobs", {"max_results": 2})
            rest = await client.call_tool(
                "list_jobs", {"max_results": 2, "after": listed.structured_content["next_after"]}
            )
            failed_only = await client.call_tool("list_jobs", {"status": "failed"})
            by_team = await client.call_tool("list_jobs", {"metadata": {"team": "support"}})
            detail = await client.call_tool("get_job", {"job_id": dpo["id"]})
    first = listed.structured_content
    assert [j["id"] for j in first["jobs"]] == [dpo["id"], JOB]
    assert first["has_more"] is True and first["next_after"] == JOB
    assert first["jobs"][0]["method"] == "dpo" and first["jobs"][0]["error"] is None
    assert first["jobs"][0]["created_at"] == "2025-08-02T08:00:00Z"
    assert [j["id"] for j in rest.structured_content["jobs"]] == [paused["id"], failed["id"]]
    assert rest.structured_content["jobs"][0]["status"] == "paused"
    assert rest.structured_content["has_more"] is False and rest.structured_content["next_after"] is None
    assert [j["id"] for j in failed_only.structured_content["jobs"]] == [failed["id"]]
    assert failed_only.structured_content["jobs"][0]["error"] == "invalid_n_examples: Too few examples"
    assert [j["id"] for j in by_team.structured_content["jobs"]] == [dpo["id"]]
    d = detail.structured_content
    assert d["method"] == "dpo" and d["hyperparameters"]["beta"] == 0.1 and d["error"] is None
    assert d["finished_at"] is None and d["metadata"] == {"team": "support"}


# --- errors -----------------------------------------------------------------------------------------------


def _text(result) -> str:
    assert result.is_error is True, result
    assert result.structured_content is None
    return result.content[0].text


async def test_not_found(serve_fake, mode):
    with serve_fake(_sft_data()) as api:
        async with api.client(mode) as client:
            text = _text(await client.call_tool("best_checkpoint", {"job_id": "ftjob-doesnotexist000000000000"}))
    assert text.startswith("not_found: ")
    assert "Could not find fine tune: ftjob-doesnotexist000000000000" in text
    assert "request id req_" in text


async def test_auth_missing_makes_no_request(serve_fake):
    with serve_fake(_sft_data()) as api:
        async with api.client(api_key=None) as client:
            for tool, args in [
                ("list_jobs", {}),
                ("get_job", {"job_id": JOB}),
                ("list_checkpoints", {"job_id": JOB}),
                ("best_checkpoint", {"job_id": JOB}),
            ]:
                text = _text(await client.call_tool(tool, args))
                assert text.startswith("auth_missing: ") and "OPENAI_API_KEY" in text
        assert api.faults.requests == []


async def test_auth_failed_never_shows_the_key(serve_fake, captured_logs):
    with serve_fake(_sft_data()) as api:
        async with api.client(api_key="sk-wrong-key-0000000000WRONG") as client:
            text = _text(await client.call_tool("get_job", {"job_id": JOB}))
    assert text.startswith("auth_failed: ") and "OPENAI_API_KEY" in text
    assert "sk-wrong-key-0000000000WRONG" not in text
    assert len(api.faults.requests) == 1  # 401 is not retried
    assert "sk-wrong-key-0000000000WRONG" not in captured_logs.text


@pytest.mark.parametrize(
    ("fault", "code", "attempts"),
    [
        (Fault(status=403), "permission_denied: ", 1),
        (Fault(status=429, headers={"retry-after-ms": "5"}, times=3), "rate_limited: ", 3),
        (Fault(status=503, headers={"retry-after-ms": "5"}, times=3), "upstream_unavailable: ", 3),
        (Fault(status=400), "invalid_argument: ", 1),
        (
            Fault(status=200, body=b"<html><body>Welcome to nginx</body></html>", content_type="text/html"),
            "bad_response: ",
            1,
        ),
        (
            Fault(status=200, body=b'{"object": "fine_tuning.job", "id": ', content_type="application/json"),
            "bad_response: ",
            1,
        ),
        (Fault(status=200, body=b"[1, 2]", content_type="application/json"), "bad_response: ", 1),
        (Fault(status=200, body={"object": "fine_tuning.job"}), "bad_response: ", 1),
        (Fault(status=301, body=b"", headers={"location": "https://example.invalid/v1/"}), "bad_response: ", 1),
    ],
    ids=["403", "429", "503", "400", "html", "malformed-json", "not-an-object", "no-id", "redirect"],
)
async def test_upstream_failures_become_coded_tool_errors(serve_fake, fault, code, attempts):
    with serve_fake(_sft_data()) as api:
        api.faults.add(fault)
        async with api.client() as client:
            text = _text(await client.call_tool("get_job", {"job_id": JOB}))
    assert text.startswith(code), text
    assert len(api.faults.requests) == attempts


async def test_rate_limited_reports_a_wait_longer_than_it_sleeps(serve_fake):
    with serve_fake(_sft_data()) as api:
        api.faults.add(Fault(status=429, headers={"retry-after": "200"}))
        async with api.client() as client:
            text = _text(await client.call_tool("get_job", {"job_id": JOB}))
    assert text.startswith("rate_limited: ") and "200 s" in text
    assert len(api.faults.requests) == 1


async def test_429_then_success(serve_fake):
    with serve_fake(_sft_data()) as api:
        api.faults.add(Fault(status=429, headers={"retry-after-ms": "10"}, path_contains="/checkpoints"))
        async with api.client() as client:
            result = await client.call_tool("best_checkpoint", {"job_id": JOB})
        checkpoint_requests = api.upstream_requests("/checkpoints")
    assert result.is_error is False and result.structured_content["best"]["step_number"] == 240
    assert len(checkpoint_requests) == 2
    assert [r.headers.get("x-stainless-retry-count") for r in checkpoint_requests] == ["0", "1"]


async def test_timeout(serve_fake):
    with serve_fake(_sft_data()) as api:
        api.faults.add(Fault(delay=1.0, passthrough_after_delay=True, times=5))
        async with api.client(timeout=0.2, max_retries=1) as client:
            text = _text(await client.call_tool("get_job", {"job_id": JOB}))
    assert text.startswith("timeout: ") and "2 attempts" in text


async def test_overall_deadline(serve_fake):
    with serve_fake(_sft_data()) as api:
        api.faults.add(Fault(delay=3.0, passthrough_after_delay=True))
        async with api.client(timeout=10.0, deadline=0.5) as client:
            text = _text(await client.call_tool("get_job", {"job_id": JOB}))
    assert text.startswith("timeout: ") and "deadline" in text


async def test_connection_refused_is_upstream_unavailable(serve_fake):
    with serve_fake(_sft_data()) as api:
        dead_url = api.base_url
    async with api.client(base_url=dead_url, max_retries=0) as client:
        text = _text(await client.call_tool("get_job", {"job_id": JOB}))
    assert text.startswith("upstream_unavailable: ") and "Could not reach" in text


def _ignoring_cursor(app):
    """Wrap an ASGI app so it never sees ``after``: a broken server that serves the first page forever."""

    async def broken(scope, receive, send):
        if scope["type"] == "http":
            query = "&".join(p for p in scope["query_string"].decode().split("&") if not p.startswith("after="))
            scope = {**scope, "query_string": query.encode()}
        await app(scope, receive, send)

    return broken


async def test_a_server_that_ignores_the_cursor_is_bad_response_not_a_loop():
    cps = [checkpoint(JOB, step, {"train_loss": 1 / step}) for step in range(1, 31)]
    fake = FakeOpenAI(FakeData(jobs=[job(JOB)], checkpoints={JOB: cps}), api_key=TEST_KEY, max_page_size=10)
    with running_server(_ignoring_cursor(fake)) as base_url:
        settings = Settings(api_key=TEST_KEY, base_url=base_url, page_size=10)
        async with Client(create_server(settings)) as client:
            text = _text(await client.call_tool("list_checkpoints", {"job_id": JOB}))
    assert text.startswith("bad_response: ") and "twice" in text
    assert len(fake.requests_to("/checkpoints")) == 2  # stopped at the first repeat


BAD_JOB_IDS = [
    "ftjob-../../v1/files",
    "ftjob-abc/def",
    "ftjob-abc.def",
    "ftjob-abc%2F",
    "ftjob-abc def",
    "ftjob-",
    "ftjob-" + "a" * 95,
    "job-abc",
    "FTJOB-abc",
    "",
    "ftjob-abc?x=1",
    "ftjob-abc#",
    "ftjob-ä",
]


@pytest.mark.parametrize("tool", ["get_job", "list_checkpoints", "best_checkpoint"])
async def test_bad_job_ids_reach_nothing_upstream(serve_fake, tool):
    with serve_fake(_sft_data()) as api:
        async with api.client() as client:
            for bad in BAD_JOB_IDS:
                text = _text(await client.call_tool(tool, {"job_id": bad}))
                assert text.startswith("invalid_argument: job_id must be 'ftjob-'"), text
            missing = _text(await client.call_tool(tool, {}))
            assert missing.startswith("invalid_argument: job_id is required")
        assert api.faults.requests == []


@pytest.mark.parametrize(
    ("tool", "args", "needle"),
    [
        ("list_jobs", {"max_results": 0}, "max_results"),
        ("list_jobs", {"limit": 2}, "limit is not an argument of list_jobs; it takes: status, model"),
        ("list_jobs", {"max_results": 1001}, "max_results"),
        ("list_jobs", {"status": "done"}, "status"),
        ("list_jobs", {"after": "ftjob-x/y"}, "after"),
        ("list_jobs", {"metadata": {"a[b]": "c"}}, "metadata"),
        ("list_jobs", {"metadata": {f"k{i}": "v" for i in range(17)}}, "at most 16"),
        ("list_jobs", {"metadata": {"team": "x" * 513}}, "metadata value for 'team' is not accepted (513 characters)"),
        ("list_jobs", {"metadata": {"a[b]": "c"}}, "metadata key 'a[b]' is not accepted"),
        ("best_checkpoint", {"job_id": JOB, "top_k": 0}, "top_k"),
        ("best_checkpoint", {"job_id": JOB, "top_k": 51}, "top_k"),
        ("best_checkpoint", {"job_id": JOB, "goal": "up"}, "goal"),
        ("best_checkpoint", {"job_id": JOB, "goal": "min"}, "goal applies only"),
        (
            "best_checkpoint",
            {"job_id": JOB, "metric": "full_valid_loss", "goal": "max"},
            "full_valid_loss is better when lower",
        ),
        ("best_checkpoint", {"job_id": JOB, "metric": "a b"}, "metric"),
        ("list_checkpoints", {"job_id": JOB, "after": "../x"}, "after"),
    ],
)
async def test_bad_arguments_are_precise_and_make_no_request(serve_fake, tool, args, needle):
    with serve_fake(_sft_data()) as api:
        async with api.client() as client:
            text = _text(await client.call_tool(tool, args))
        assert api.faults.requests == []
    assert text.startswith("invalid_argument: ") and needle in text


async def test_unknown_tool_is_a_protocol_error(serve_fake):
    with serve_fake(_sft_data()) as api:
        async with api.client() as client:
            with pytest.raises(MCPError) as raised:
                await client.call_tool("delete_everything", {})
    assert raised.value.error.code == -32602


async def test_key_never_appears_in_results_or_logs(serve_fake, captured_logs):
    leaky = Fault(
        status=500,
        body={
            "error": {
                "message": f"upstream proxy saw Bearer {TEST_KEY}",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        },
        times=3,
    )
    with serve_fake(_sft_data()) as api:
        async with api.client(max_retries=2) as client:
            outputs = []
            for tool, args in [
                ("list_jobs", {}),
                ("get_job", {"job_id": JOB}),
                ("list_checkpoints", {"job_id": JOB}),
                ("best_checkpoint", {"job_id": JOB}),
                ("get_job", {"job_id": "ftjob-missing0000"}),
            ]:
                outputs.append(await client.call_tool(tool, args))
            api.faults.add(leaky)
            outputs.append(await client.call_tool("get_job", {"job_id": JOB, "refresh": True}))
        assert all(r.headers.get("authorization") == f"Bearer {TEST_KEY}" for r in api.faults.requests)
    assert outputs[-1].is_error and "***" in outputs[-1].content[0].text
    for result in outputs:
        assert TEST_KEY not in result.model_dump_json()
    assert TEST_KEY not in captured_logs.text
    assert TEST_KEY[-12:] not in captured_logs.text


async def test_progress_is_reported_per_page(serve_fake, mode):
    job_id = "ftjob-Progress000000000000000001"
    cps = [checkpoint(job_id, step, {"train_loss": 1 / step}) for step in range(1, 251)]
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    with serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api:
        async with api.client(mode) as client:
            result = await client.call_tool("list_checkpoints", {"job_id": job_id}, progress_callback=on_progress)
    assert result.structured_content["count"] == 250
    assert [u[0] for u in updates] == [1, 2, 3]
    assert updates[-1][2] == "read 3 pages, 250 checkpoints"


async def test_item_cap_truncates_and_says_how_to_continue(serve_fake):
    job_id = "ftjob-Capped00000000000000000001"
    cps = [checkpoint(job_id, step, {"train_loss": 1 / step}) for step in range(1, 26)]
    with serve_fake(FakeData(jobs=[job(job_id)], checkpoints={job_id: cps})) as api:
        async with api.client(page_size=10, max_items=15) as client:
            first = (await client.call_tool("list_checkpoints", {"job_id": job_id})).structured_content
            rest = (
                await client.call_tool("list_checkpoints", {"job_id": job_id, "after": first["next_after"]})
            ).structured_content
            best = (await client.call_tool("best_checkpoint", {"job_id": job_id})).structured_content
    assert first["truncated"] is True and first["count"] == 15 and first["pages_fetched"] == 2
    assert [c["step_number"] for c in first["checkpoints"]] == list(range(11, 26))
    assert rest["truncated"] is False and [c["step_number"] for c in rest["checkpoints"]] == list(range(1, 11))
    assert best["truncated"] is True and "Only the 15 most recent checkpoints" in best["rationale"]


async def test_status_filter_scans_pages_and_continues_where_it_stopped(serve_fake):
    jobs = [job(fake_id("ftjob-", n), created_at=1750000000 + n, status="succeeded") for n in range(1200)]
    jobs[5]["status"] = "failed"  # among the oldest: beyond the first 1,000 scanned
    jobs[1150]["status"] = "failed"  # among the newest
    jobs[1149]["status"] = "failed"
    with serve_fake(FakeData(jobs=jobs)) as api:
        async with api.client() as client:
            first = (await client.call_tool("list_jobs", {"status": "failed", "max_results": 1})).structured_content
            second = (
                await client.call_tool("list_jobs", {"status": "failed", "after": first["next_after"]})
            ).structured_content
            assert len(api.upstream_requests("/jobs")) == 1 + 10
            third = (
                await client.call_tool("list_jobs", {"status": "failed", "after": second["next_after"]})
            ).structured_content
    assert [j["id"] for j in first["jobs"]] == [jobs[1150]["id"]] and first["has_more"] is True
    assert first["scanned"] == 50 and first["next_after"] == jobs[1150]["id"]
    assert [j["id"] for j in second["jobs"]] == [jobs[1149]["id"]]
    assert second["scanned"] == 1000 and second["has_more"] is True
    assert second["next_after"] == jobs[1150 - 1000]["id"]
    assert [j["id"] for j in third["jobs"]] == [jobs[5]["id"]] and third["has_more"] is False


async def test_odd_but_valid_api_data_never_crashes_a_tool(serve_fake):
    """Quirks seen in the wild and plain junk in optional fields: every tool still answers sensibly."""
    job_id = "ftjob-Odd000000000000000000000001"
    odd_job = job(
        job_id,
        status="paused",
        error={},
        hyperparameters=None,
        method="supervised",
        metadata=None,
        created_at=10**20,
        finished_at="soon",
        trained_tokens=1.5,
        integrations={"wandb": 1},
        result_files=None,
        usage_metrics=None,
        shared_with_openai=False,
        eval_id="eval_1",
    )
    odd_job["method"] = "not-a-dict"
    cps = [
        checkpoint(job_id, 100, {"full_valid_loss": "NaN", "train_loss": True, "scores": {"a": 1}}),
        checkpoint(job_id, 200, {"full_valid_loss": 10**400, "train_loss": None}),
        checkpoint(job_id, 300, {"full_valid_loss": 0.5, "full_valid_mean_reward": 0.7, "extra": 3}),
        {
            "object": "fine_tuning.job.checkpoint",
            "id": "ftckpt_NoStepNoMetrics0000000000",
            "created_at": None,
            "metrics": None,
            "step_number": None,
        },
    ]
    with serve_fake(FakeData(jobs=[odd_job], checkpoints={job_id: cps})) as api:
        async with api.client() as client:
            results = {
                tool: await client.call_tool(tool, args)
                for tool, args in [
                    ("list_jobs", {}),
                    ("get_job", {"job_id": job_id}),
                    ("list_checkpoints", {"job_id": job_id}),
                    ("best_checkpoint", {"job_id": job_id}),
                ]
            }
    assert not any(r.is_error for r in results.values()), {k: r.content for k, r in results.items()}
    detail = results["get_job"].structured_content
    assert detail["status"] == "paused" and detail["method"] == "supervised" and detail["finished_at"] is None
    assert detail["created_at"] is None and detail["trained_tokens"] is None and detail["result_files"] == []
    listed = results["list_checkpoints"].structured_content
    assert [c["step_number"] for c in listed["checkpoints"]] == [100, 200, 300, None]
    assert listed["checkpoints"][0]["metrics"] == {}
    assert listed["checkpoints"][2]["metrics"] == {"full_valid_loss": 0.5, "full_valid_mean_reward": 0.7, "extra": 3}
    best = results["best_checkpoint"].structured_content
    assert best["metric"] == "full_valid_loss" and best["best"]["step_number"] == 300
    assert {e["step_number"] for e in best["excluded"]} == {100, 200, None}
