"""The fake fine-tuning API itself: OpenAI's envelopes, paging, auth and recording, the fault injector, serving over
HTTP, and the demo dataset."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from openai_checkpoints_mcp.fake import (
    DEMO_JOB_IDS,
    FakeData,
    FakeFile,
    FakeOpenAI,
    Fault,
    FaultInjector,
    demo_data,
    running_server,
)

pytestmark = pytest.mark.anyio


KEY = "sk-fake-key"


AUTH = {"Authorization": f"Bearer {KEY}"}


SAMPLE_429 = {
    "error": {
        "message": "Rate limit reached for requests",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}


def make_client(app: Any, *, headers: dict[str, str] | None = AUTH) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app),
        base_url="http://fake.test/v1",
        headers=headers or {},
    )


def job(n: int, *, created_at: int | None = None, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    created = 1_700_000_000 + n if created_at is None else created_at
    return {
        "object": "fine_tuning.job",
        "id": f"ftjob-{n:024d}",
        "created_at": created,
        "status": "succeeded",
        "metadata": metadata,
    }


def checkpoint(job_id: str, step: int) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": f"ftckpt_{step:024d}",
        "created_at": 1_700_000_000 + step,
        "fine_tuning_job_id": job_id,
        "step_number": step,
        "metrics": {"step": float(step)},
    }


def event(n: int) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{n:024d}",
        "created_at": 1_700_000_000 + n,
        "level": "info",
        "message": f"event {n}",
        "data": {},
        "type": "message",
    }


def synthetic(n_jobs: int = 25, n_checkpoints: int = 250, n_events: int = 45) -> FakeData:
    """Jobs 0..n-1; job 0 carries the checkpoints and events, listed in scrambled order."""
    jobs = [job(n) for n in range(n_jobs)]
    first = jobs[0]["id"]
    return FakeData(
        jobs=jobs[::-1][::2] + jobs[::-1][1::2],
        checkpoints={first: [checkpoint(first, s) for s in sorted(range(1, n_checkpoints + 1), key=lambda s: s % 7)]},
        events={first: [event(n) for n in sorted(range(n_events), key=lambda n: n % 5)]},
        files={
            "file-abc": FakeFile(
                meta={
                    "object": "file",
                    "id": "file-abc",
                    "purpose": "fine-tune-results",
                    "filename": "step_metrics.csv",
                    "bytes": 22,
                    "created_at": 1,
                    "status": "processed",
                },
                content=b"step,train_loss\n1,0.5\n",
            )
        },
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with make_client(FakeOpenAI(synthetic())) as c:
        yield c


def assert_error(
    response: httpx2.Response,
    status: int,
    *,
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] == code
    return error


async def test_jobs_list_newest_first_with_plain_envelope(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.get("/fine_tuning/jobs", params={"limit": 100})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers["x-request-id"])
    body = response.json()
    assert set(body) == {"object", "data", "has_more"}
    assert body["object"] == "list" and body["has_more"] is False
    assert [j["id"] for j in body["data"]] == [f"ftjob-{n:024d}" for n in range(24, -1, -1)]


async def test_jobs_with_equal_created_at_keep_a_stable_order() -> None:
    data = FakeData(jobs=[job(n, created_at=5) for n in (3, 1, 2)])
    async with make_client(FakeOpenAI(data)) as c:
        first = [j["id"] for j in (await c.get("/fine_tuning/jobs")).json()["data"]]
        second = [j["id"] for j in (await c.get("/fine_tuning/jobs")).json()["data"]]
        paged = []
        for after in [None, *first[:2]]:
            params = {"limit": 1} | ({"after": after} if after else {})
            paged.append((await c.get("/fine_tuning/jobs", params=params)).json()["data"][0]["id"])
    assert first == second == paged


@pytest.mark.parametrize(
    ("path", "default"),
    [
        ("/fine_tuning/jobs", 20),
        (f"/fine_tuning/jobs/ftjob-{0:024d}/checkpoints", 10),
        (f"/fine_tuning/jobs/ftjob-{0:024d}/events", 20),
    ],
)
async def test_default_limits(client: httpx2.AsyncClient, path: str, default: int) -> None:
    body = (await client.get(path)).json()
    assert len(body["data"]) == default
    assert body["has_more"] is True


async def test_checkpoints_paged_by_after_in_step_order(
    client: httpx2.AsyncClient,
) -> None:
    path = f"/fine_tuning/jobs/ftjob-{0:024d}/checkpoints"
    pages, after = [], None
    while True:
        params: dict[str, Any] = {"limit": 100} | ({"after": after} if after else {})
        body = (await client.get(path, params=params)).json()
        pages.append(body)
        if not body["has_more"]:
            break
        after = body["data"][-1]["id"]
    assert [len(p["data"]) for p in pages] == [100, 100, 50]
    assert [p["has_more"] for p in pages] == [True, True, False]
    steps = [c["step_number"] for p in pages for c in p["data"]]
    assert steps == list(range(250, 0, -1))
    for page in pages:
        assert page["first_id"] == page["data"][0]["id"] and page["last_id"] == page["data"][-1]["id"]


async def test_events_newest_first_and_paged(client: httpx2.AsyncClient) -> None:
    path = f"/fine_tuning/jobs/ftjob-{0:024d}/events"
    first = (await client.get(path)).json()
    rest = (await client.get(path, params={"after": first["data"][-1]["id"]})).json()
    assert set(first) == {"object", "data", "has_more"}
    created = [e["created_at"] for e in first["data"] + rest["data"]]
    assert created == sorted(created, reverse=True) and len(created) == 40
    assert rest["has_more"] is True


async def test_empty_checkpoint_list_has_null_ids() -> None:
    async with make_client(FakeOpenAI(FakeData(jobs=[job(1)]))) as c:
        body = (await c.get(f"/fine_tuning/jobs/{job(1)['id']}/checkpoints")).json()
    assert body == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


async def test_limit_is_clamped_to_max_page_size() -> None:
    async with make_client(FakeOpenAI(synthetic(), max_page_size=7)) as c:
        body = (await c.get(f"/fine_tuning/jobs/ftjob-{0:024d}/checkpoints", params={"limit": 1000})).json()
        jobs = (await c.get("/fine_tuning/jobs")).json()
    assert len(body["data"]) == 7 and body["has_more"] is True
    assert len(jobs["data"]) == 7


@pytest.mark.parametrize("limit", ["abc", "0", "-3", "1.5", ""])
async def test_bad_limit_is_400(client: httpx2.AsyncClient, limit: str) -> None:
    assert_error(
        await client.get("/fine_tuning/jobs", params={"limit": limit}),
        400,
        param="limit",
        code="invalid_type" if limit in ("abc", "1.5", "") else "integer_below_min_value",
    )


async def test_unknown_after_is_400(client: httpx2.AsyncClient) -> None:
    job_path = f"/fine_tuning/jobs/ftjob-{0:024d}"
    for path in ("/fine_tuning/jobs", f"{job_path}/checkpoints", f"{job_path}/events"):
        assert_error(await client.get(path, params={"after": "nope"}), 400, param="after")


async def test_metadata_filter_and_empty_string_and_null() -> None:
    data = FakeData(
        jobs=[
            job(1, metadata={"team": "nlp", "env": "prod"}),
            job(2, metadata={"team": "nlp", "env": "dev"}),
            job(3, metadata={"team": "nlp", "env": ""}),
            job(4, metadata=None),
            job(5, metadata={}),
        ]
    )

    async def ids(c: httpx2.AsyncClient, query: str) -> list[int]:
        response = await c.get(f"/fine_tuning/jobs?{query}")
        assert response.status_code == 200, response.text
        return [int(j["id"][6:]) for j in response.json()["data"]]

    async with make_client(FakeOpenAI(data)) as c:
        assert await ids(c, "metadata%5Bteam%5D=nlp&metadata%5Benv%5D=prod") == [1]
        assert await ids(c, "metadata[team]=nlp") == [3, 2, 1]
        assert await ids(c, "metadata%5Benv%5D=") == [3]
        assert await ids(c, "metadata=null") == [4]
        assert await ids(c, "metadata[team]=nlp&limit=1&after=" + job(3)["id"]) == [2]
        assert await ids(c, "") == [5, 4, 3, 2, 1]
        assert_error(
            await c.get("/fine_tuning/jobs?metadata=null&metadata[team]=nlp"),
            400,
            param="metadata",
        )


async def test_not_found_envelopes(client: httpx2.AsyncClient) -> None:
    missing = "ftjob-doesnotexist000000000000"
    for suffix in ("", "/checkpoints", "/events"):
        error = assert_error(
            await client.get(f"/fine_tuning/jobs/{missing}{suffix}"),
            404,
            param="fine_tune_id",
            code="fine_tune_not_found",
        )
        assert error["message"] == f"Could not find fine tune: {missing}"
    for suffix in ("", "/content"):
        error = assert_error(await client.get(f"/files/file-nope{suffix}"), 404, param="id")
        assert error["message"] == "No such File object: file-nope"
    assert_error(await client.get("/fine_tuning/nothing"), 404)
    assert_error(await client.get("http://fake.test/v2/fine_tuning/jobs"), 404)


async def test_wrong_method_is_405(client: httpx2.AsyncClient) -> None:
    response = await client.post("/fine_tuning/jobs", json={})
    assert_error(response, 405)
    assert response.headers["allow"] == "GET"


async def test_auth_rejects_missing_and_wrong_keys_without_leaking_them() -> None:
    secret = "sk-proj-VerySecretValue9876"
    app = FakeOpenAI(synthetic(), api_key=secret)
    wrong = "sk-live-notTheRightOne1234"
    async with make_client(app, headers=None) as c:
        missing = await c.get("/fine_tuning/jobs")
        bad = await c.get("/fine_tuning/jobs", headers={"Authorization": f"Bearer {wrong}"})
        basic = await c.get("/fine_tuning/jobs", headers={"Authorization": f"Basic {secret}"})
        good = await c.get("/fine_tuning/jobs", headers={"Authorization": f"Bearer {secret}"})
        unknown = await c.get("/fine_tuning/jobs/ftjob-x", headers={"Authorization": "Bearer x"})
    assert assert_error(missing, 401)["message"].startswith("You didn't provide an API key")
    message = assert_error(bad, 401, code="invalid_api_key")["message"]
    assert "sk-...1234" in message
    assert assert_error(basic, 401)["message"].startswith("You didn't provide an API key")
    assert unknown.status_code == 401
    for response in (missing, bad, basic, unknown):
        assert wrong not in response.text and secret not in response.text
        assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers["x-request-id"])
    assert good.status_code == 200


async def test_no_auth_mode_accepts_anything() -> None:
    async with make_client(FakeOpenAI(synthetic(), api_key=None), headers=None) as c:
        assert (await c.get("/fine_tuning/jobs")).status_code == 200
        assert (await c.get("/fine_tuning/jobs", headers={"Authorization": "Bearer whatever"})).status_code == 200


@pytest.mark.parametrize("as_base64", [False, True])
async def test_file_metadata_and_content(as_base64: bool) -> None:
    async with make_client(FakeOpenAI(synthetic(), base64_results=as_base64)) as c:
        meta = (await c.get("/files/file-abc")).json()
        content = await c.get("/files/file-abc/content")
    assert meta["purpose"] == "fine-tune-results" and meta["object"] == "file"
    assert content.status_code == 200
    assert content.headers["content-type"] == "application/octet-stream"
    raw = b"step,train_loss\n1,0.5\n"
    assert content.content == (base64.b64encode(raw) if as_base64 else raw)


async def test_requests_are_recorded_with_decoded_query_and_lowercase_headers() -> None:
    app = FakeOpenAI(synthetic())
    async with make_client(app) as c:
        await c.get(
            "/fine_tuning/jobs",
            params={"metadata[team]": "nlp", "limit": 2},
            headers={"X-Stainless-Retry-Count": "0"},
        )
        await c.get(f"/fine_tuning/jobs/ftjob-{0:024d}/checkpoints")
    assert len(app.requests) == 2
    first = app.requests[0]
    assert (first.method, first.path) == ("GET", "/v1/fine_tuning/jobs")
    assert first.query == {"metadata[team]": ["nlp"], "limit": ["2"]}
    assert first.headers["x-stainless-retry-count"] == "0"
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert [r.path for r in app.requests_to("/checkpoints")] == [f"/v1/fine_tuning/jobs/ftjob-{0:024d}/checkpoints"]
    app.reset_requests()
    assert app.requests == []


async def test_custom_base_path() -> None:
    app = FakeOpenAI(synthetic(), base_path="/openai/v1")
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app),
        base_url="http://fake.test/openai/v1",
        headers=AUTH,
    ) as c:
        assert (await c.get("/fine_tuning/jobs")).status_code == 200
        assert (await c.get("http://fake.test/v1/fine_tuning/jobs")).status_code == 404


async def test_fault_429_with_default_body_and_headers_then_recovers() -> None:
    injector = FaultInjector(FakeOpenAI(synthetic()), [Fault(429, headers={"retry-after-ms": "10"})])
    async with make_client(injector) as c:
        faulted = await c.get("/fine_tuning/jobs")
        ok = await c.get("/fine_tuning/jobs")
    assert faulted.status_code == 429
    assert faulted.json() == SAMPLE_429
    assert faulted.headers["retry-after-ms"] == "10"
    assert faulted.headers["content-type"] == "application/json"
    assert re.fullmatch(r"req_[0-9a-f]{32}", faulted.headers["x-request-id"])
    assert ok.status_code == 200
    assert len(injector.requests) == 2 and injector.remaining == 0


async def test_faults_times_path_and_order() -> None:
    injector = FaultInjector(FakeOpenAI(synthetic()))
    injector.add(
        Fault(
            503,
            path_contains="/checkpoints",
            times=2,
            headers={"x-should-retry": "false"},
        ),
        Fault(500, times=1),
        Fault(409, path_contains="/checkpoints"),
    )
    path = f"/fine_tuning/jobs/ftjob-{0:024d}/checkpoints"
    async with make_client(injector) as c:
        order = [path, "/fine_tuning/jobs", path, path, path, "/fine_tuning/jobs"]
        statuses = [(await c.get(p)).status_code for p in order]
    assert statuses == [503, 500, 503, 409, 200, 200]
    assert injector.remaining == 0 and len(injector.requests) == 6
    assert [r.path.rsplit("/", 1)[-1] for r in injector.requests][:2] == [
        "checkpoints",
        "jobs",
    ]


async def test_fault_default_bodies_are_envelopes() -> None:
    injector = FaultInjector(FakeOpenAI(synthetic()), [Fault(500), Fault(418)])
    async with make_client(injector) as c:
        five = (await c.get("/fine_tuning/jobs")).json()["error"]
        teapot = (await c.get("/fine_tuning/jobs")).json()["error"]
    assert five["type"] == "server_error" and set(five) == {
        "message",
        "type",
        "param",
        "code",
    }
    assert teapot["type"] == "invalid_request_error"


async def test_fault_html_and_dict_bodies() -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    injector = FaultInjector(
        FakeOpenAI(synthetic()),
        [
            Fault(502, body=html, content_type="text/html"),
            Fault(
                400,
                body={
                    "error": {
                        "message": "custom",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
                headers={"x-should-retry": "true"},
            ),
        ],
    )
    async with make_client(injector) as c:
        page = await c.get("/fine_tuning/jobs")
        custom = await c.get("/fine_tuning/jobs")
    assert page.status_code == 502 and page.content == html
    assert page.headers["content-type"] == "text/html"
    assert custom.status_code == 400 and custom.json()["error"]["message"] == "custom"
    assert custom.headers["x-should-retry"] == "true"


async def test_fault_delay_then_passthrough() -> None:
    fake = FakeOpenAI(synthetic())
    injector = FaultInjector(fake, [Fault(delay=0.2, passthrough_after_delay=True)])
    async with make_client(injector) as c:
        started = time.monotonic()
        response = await c.get("/fine_tuning/jobs")
        elapsed = time.monotonic() - started
    assert response.status_code == 200 and len(response.json()["data"]) == 20
    assert elapsed >= 0.2
    assert len(fake.requests) == 1 and len(injector.requests) == 1


def test_fault_delay_provokes_client_timeout_over_http() -> None:
    injector = FaultInjector(FakeOpenAI(synthetic()), [Fault(delay=1.0, passthrough_after_delay=True)])
    with (
        running_server(injector) as base_url,
        httpx2.Client(base_url=base_url, headers=AUTH, timeout=0.2) as c,
    ):
        with pytest.raises(httpx2.ReadTimeout):
            c.get("/fine_tuning/jobs")
        assert c.get("/fine_tuning/jobs").status_code == 200


def test_running_server_serves_over_http() -> None:
    fake = FakeOpenAI(demo_data())
    with running_server(fake) as base_url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
        with httpx2.Client(base_url=base_url, headers=AUTH) as c:
            jobs = c.get("/fine_tuning/jobs")
            support_bot = c.get(f"/fine_tuning/jobs/{DEMO_JOB_IDS['support_bot']}").json()
            content = c.get(f"/files/{support_bot['result_files'][0]}/content")
    assert jobs.status_code == 200 and len(jobs.json()["data"]) == len(DEMO_JOB_IDS)
    assert content.content.startswith(b"step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n")
    assert len(fake.requests) == 3
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(base_url + "/fine_tuning/jobs", timeout=1)


async def test_running_server_with_async_client() -> None:
    with running_server(FakeOpenAI(demo_data(), api_key=None), base_path="/v1/") as base_url:
        async with httpx2.AsyncClient(base_url=base_url) as c:
            response = await c.get(f"/fine_tuning/jobs/{DEMO_JOB_IDS['dpo']}")
    assert response.json()["id"] == DEMO_JOB_IDS["dpo"]


def test_main_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    from openai_checkpoints_mcp.fake.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--base64-results" in capsys.readouterr().out


ALNUM24 = "[A-Za-z0-9]{24}"


@pytest.fixture(scope="module")
def demo() -> FakeData:
    return demo_data()


def demo_job(demo: FakeData, name: str) -> dict[str, Any]:
    return next(j for j in demo.jobs if j["id"] == DEMO_JOB_IDS[name])


def by_step(demo: FakeData, name: str) -> list[dict[str, Any]]:
    return sorted(demo.checkpoints.get(DEMO_JOB_IDS[name], []), key=lambda c: c["step_number"])


def csv_rows(demo: FakeData, name: str) -> list[dict[str, str]]:
    file = demo.files[demo_job(demo, name)["result_files"][0]]
    return list(csv.DictReader(io.StringIO(file.content.decode())))


def test_demo_ids_are_well_formed(demo: FakeData) -> None:
    assert set(DEMO_JOB_IDS) == {
        "support_bot",
        "no_validation",
        "dpo",
        "reinforcement",
        "failed",
        "running",
        "paused",
        "cancelled",
        "sweep_lr_0_5",
        "sweep_lr_1_0",
        "sweep_lr_2_0",
    }
    assert sorted(j["id"] for j in demo.jobs) == sorted(DEMO_JOB_IDS.values())
    eight_char_ids: list[str] = []
    for j in demo.jobs:
        assert re.fullmatch(f"ftjob-{ALNUM24}", j["id"])
        assert re.fullmatch(f"org-{ALNUM24}", j["organization_id"])
        assert j["object"] == "fine_tuning.job"
        for file_id in [j["training_file"], j["validation_file"], *j["result_files"]]:
            assert file_id is None or re.fullmatch(r"file-[A-Za-z0-9]{22}", file_id)
        if j["fine_tuned_model"]:
            assert j["fine_tuned_model"].startswith(f"ft:{j['model']}:")
            eight_char_ids.append(j["fine_tuned_model"].split(":")[4])
        for e in demo.events[j["id"]]:
            assert re.fullmatch(f"ftevent-{ALNUM24}", e["id"]) and e["level"] in {
                "info",
                "warn",
                "error",
            }
        for c in demo.checkpoints.get(j["id"], []):
            assert re.fullmatch(f"ftckpt_{ALNUM24}", c["id"])
            assert c["fine_tuning_job_id"] == j["id"]
            name = c["fine_tuned_model_checkpoint"]
            assert name.endswith(f":ckpt-step-{c['step_number']}")
            assert name.startswith(f"ft:{j['model']}:lumen-labs:{j['user_provided_suffix'] or ''}:")
            assert re.fullmatch(r"[A-Za-z0-9]{8}", name.split(":")[4])
            eight_char_ids.append(name.split(":")[4])
            assert c["metrics"]["step"] == float(c["step_number"])
    assert len(eight_char_ids) == len(set(eight_char_ids))


def test_demo_is_deterministic_and_now_only_shifts_time(demo: FakeData) -> None:
    again, shifted = demo_data(), demo_data(now=1_900_000_000)
    assert json.dumps(again.jobs) == json.dumps(demo.jobs)
    assert again.files.keys() == shifted.files.keys()
    assert [j["id"] for j in shifted.jobs] == [j["id"] for j in demo.jobs]
    delta = shifted.jobs[0]["created_at"] - demo.jobs[0]["created_at"]
    assert all(s["created_at"] - d["created_at"] == delta for s, d in zip(shifted.jobs, demo.jobs, strict=True))
    assert max(e["created_at"] for events in demo.events.values() for e in events) <= 1_795_176_000


def test_demo_support_bot_overfits_after_step_240(demo: FakeData) -> None:
    j = demo_job(demo, "support_bot")
    assert j["validation_file"] and j["hyperparameters"]["n_epochs"] == 3
    checkpoints = by_step(demo, "support_bot")
    assert [c["step_number"] for c in checkpoints] == [120, 240, 360]
    for c in checkpoints:
        assert set(c["metrics"]) == {
            "step",
            "train_loss",
            "train_mean_token_accuracy",
            "valid_loss",
            "valid_mean_token_accuracy",
            "full_valid_loss",
            "full_valid_mean_token_accuracy",
        }
    best = min(checkpoints, key=lambda c: c["metrics"]["full_valid_loss"])
    assert best["step_number"] == 240
    accuracies = [c["metrics"]["full_valid_mean_token_accuracy"] for c in checkpoints]
    assert best["metrics"]["full_valid_mean_token_accuracy"] == max(accuracies)
    train = [c["metrics"]["train_loss"] for c in checkpoints]
    assert train == sorted(train, reverse=True)
    checkpoint_ids = {c["fine_tuned_model_checkpoint"].split(":")[4] for c in checkpoints}
    assert j["fine_tuned_model"].split(":")[4] not in checkpoint_ids


def test_demo_result_csv_matches_checkpoints(demo: FakeData) -> None:
    for name in ("support_bot", "dpo", "sweep_lr_1_0", "no_validation"):
        rows = csv_rows(demo, name)
        assert list(rows[0]) == [
            "step",
            "train_loss",
            "train_accuracy",
            "valid_loss",
            "valid_mean_token_accuracy",
        ]
        assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
        assert all(re.fullmatch(r"\d+\.\d{5}", r["train_loss"]) for r in rows)
        for c in by_step(demo, name):
            row = rows[c["step_number"] - 1]
            assert float(row["train_loss"]) == c["metrics"]["train_loss"]
            assert float(row["train_accuracy"]) == c["metrics"]["train_mean_token_accuracy"]
        with_valid = [int(r["step"]) for r in rows if r["valid_loss"]]
        if name == "no_validation":
            assert with_valid == []
        else:
            assert with_valid[:3] == [10, 20, 30] and with_valid[-1] == len(rows)


def test_demo_no_validation_has_train_metrics_only(demo: FakeData) -> None:
    assert demo_job(demo, "no_validation")["validation_file"] is None
    checkpoints = by_step(demo, "no_validation")
    assert len(checkpoints) == 3
    assert all(set(c["metrics"]) == {"step", "train_loss", "train_mean_token_accuracy"} for c in checkpoints)


def test_demo_dpo_quirks(demo: FakeData) -> None:
    j = demo_job(demo, "dpo")
    assert j["status"] == "succeeded" and j["hyperparameters"] is None and j["error"] == {}
    assert j["method"]["type"] == "dpo" and "beta" in j["method"]["dpo"]["hyperparameters"]
    assert all({"train_loss", "valid_loss", "full_valid_loss"} <= set(c["metrics"]) for c in by_step(demo, "dpo"))


def test_demo_reinforcement_rewards(demo: FakeData) -> None:
    j = demo_job(demo, "reinforcement")
    assert j["model"] == "o4-mini-2025-04-16" and j["hyperparameters"] is None and j["eval_id"].startswith("eval_")
    assert j["method"]["reinforcement"]["grader"]["type"] == "string_check"
    assert "reasoning_effort" in j["method"]["reinforcement"]["hyperparameters"]
    checkpoints = by_step(demo, "reinforcement")
    assert len(checkpoints) == 3
    for c in checkpoints:
        metrics = c["metrics"]
        assert not any("loss" in key for key in metrics)
        rewards = {
            "train_mean_reward",
            "full_valid_mean_reward",
            "completion_tokens_mean",
            "reasoning_tokens_mean",
        }
        assert rewards <= set(metrics)
        assert any(isinstance(v, dict) for v in metrics.values())
    best = max(checkpoints, key=lambda c: c["metrics"]["full_valid_mean_reward"])
    assert best["step_number"] != checkpoints[-1]["step_number"]
    rows = csv_rows(demo, "reinforcement")
    assert list(rows[0]) == ["step", "train_mean_reward", "full_valid_mean_reward"]
    assert float(rows[best["step_number"] - 1]["full_valid_mean_reward"]) == best["metrics"]["full_valid_mean_reward"]


def test_demo_unfinished_and_failed_jobs(demo: FakeData) -> None:
    failed = demo_job(demo, "failed")
    assert failed["status"] == "failed" and failed["error"]["code"] and failed["error"]["param"] == "training_file"
    assert failed["result_files"] == [] and not demo.checkpoints.get(failed["id"])
    assert any(e["level"] == "error" for e in demo.events[failed["id"]])
    running = demo_job(demo, "running")
    assert running["finished_at"] is None and running["estimated_finish"] and running["fine_tuned_model"] is None
    assert running["trained_tokens"] is None and running["error"] == {
        "code": None,
        "message": None,
        "param": None,
    }
    assert not demo.checkpoints.get(running["id"])
    assert demo_job(demo, "paused")["status"] == "paused" and len(by_step(demo, "paused")) == 1
    cancelled = demo_job(demo, "cancelled")
    assert cancelled["status"] == "cancelled" and not demo.checkpoints.get(cancelled["id"])


def test_demo_sweep(demo: FakeData) -> None:
    names = {"sweep_lr_0_5": 0.5, "sweep_lr_1_0": 1.0, "sweep_lr_2_0": 2.0}
    best: dict[str, float] = {}
    for name, lr in names.items():
        j = demo_job(demo, name)
        assert j["metadata"] == {"sweep": "lr-2026-11", "lr": str(lr)} and j["user_provided_suffix"] == "lr-sweep"
        assert j["hyperparameters"]["learning_rate_multiplier"] == lr and j["validation_file"]
        best[name] = min(c["metrics"]["full_valid_loss"] for c in by_step(demo, name))
    assert min(best, key=best.__getitem__) == "sweep_lr_1_0"
    overfit = [c["metrics"]["full_valid_loss"] for c in by_step(demo, "sweep_lr_2_0")]
    assert overfit[-1] > min(overfit)
    created = sorted(demo_job(demo, n)["created_at"] for n in names)
    assert created[-1] - created[0] < 3600


def test_demo_events_tell_the_story(demo: FakeData) -> None:
    for j in demo.jobs:
        messages = [e["message"] for e in demo.events[j["id"]]]
        assert any(m.startswith("Created fine-tuning job") for m in messages)
        if j["status"] == "succeeded":
            assert "The job has successfully completed" in messages and "New fine-tuned model created" in messages
            created = {f"Checkpoint created at step {c['step_number']}" for c in demo.checkpoints[j["id"]]}
            assert created <= set(messages)
            metrics = [e for e in demo.events[j["id"]] if e["type"] == "metrics"]
            assert metrics and all(e["message"].startswith("Step ") and e["data"]["total_steps"] for e in metrics)
            assert max(e["created_at"] for e in demo.events[j["id"]]) == j["finished_at"]


async def test_demo_through_the_api(demo: FakeData) -> None:
    async with make_client(FakeOpenAI(demo)) as c:
        jobs = (await c.get("/fine_tuning/jobs")).json()["data"]
        checkpoints = (await c.get(f"/fine_tuning/jobs/{DEMO_JOB_IDS['support_bot']}/checkpoints")).json()
        team = (await c.get("/fine_tuning/jobs", params={"metadata[team]": "support"})).json()["data"]
        sweep = (await c.get("/fine_tuning/jobs", params={"metadata[sweep]": "lr-2026-11"})).json()["data"]
    assert jobs[0]["id"] == DEMO_JOB_IDS["running"]
    assert [j["created_at"] for j in jobs] == sorted((j["created_at"] for j in jobs), reverse=True)
    assert [c["step_number"] for c in checkpoints["data"]] == [360, 240, 120]
    assert DEMO_JOB_IDS["support_bot"] in {j["id"] for j in team}
    assert [j["id"] for j in sweep] == [DEMO_JOB_IDS[n] for n in ("sweep_lr_2_0", "sweep_lr_1_0", "sweep_lr_0_5")]
