"""Azure OpenAI (the legacy dated API and the v1 API) end to end against the fake's Azure flavours: settings from the
Azure variables, the api-key header and api-version on every request, Azure's error bodies and advice."""

from __future__ import annotations

import re

import httpx2
import pytest

from openai_checkpoints_mcp.api.client import create_http_client
from openai_checkpoints_mcp.api.errors import error_from_status, parse_error_body
from openai_checkpoints_mcp.cli import _settings, build_parser
from openai_checkpoints_mcp.config import (
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_BASE_URL,
    DEMO_BASE_URL,
    Settings,
)
from openai_checkpoints_mcp.errors import ErrorCode
from openai_checkpoints_mcp.fake import (
    FakeData,
    FakeOpenAI,
    Fault,
)
from openai_checkpoints_mcp.fake.app import AZURE_ACCESS_DENIED
from openai_checkpoints_mcp.fake.azure import (
    AZURE_RESULT_COLUMNS,
    azure_checkpoint,
    azure_dataset,
    azure_error_body,
    azure_job,
)

from .helpers import TEST_KEY, checkpoint, checkpoint_records, job, serve_app

pytestmark = pytest.mark.anyio


DATA = azure_dataset()


DONE, FAILED, RUNNING = (j["id"] for j in DATA.jobs)


AZURE_FLAVOURS = ["azure", "azure-v1"]


HEX32 = r"[0-9a-f]{32}"


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _text(result) -> str:
    assert result.is_error is True, result
    return result.content[0].text


def _assert_sent_as(flavour: str, requests, prefix: str) -> None:
    """Every request went to the flavour's path, with its auth header and (legacy Azure) the api-version."""
    assert requests
    for request in requests:
        assert request.path.startswith(prefix), request.path
        if flavour == "openai":
            assert request.headers.get("authorization") == f"Bearer {TEST_KEY}"
            assert "api-key" not in request.headers and "api-version" not in request.query
        else:
            assert request.headers.get("api-key") == TEST_KEY
            assert "authorization" not in request.headers
            expected = [DEFAULT_AZURE_API_VERSION] if flavour == "azure" else None
            assert request.query.get("api-version") == expected
        assert "openai-organization" not in request.headers and "openai-project" not in request.headers


PREFIXES = {
    "openai": "/v1/fine_tuning/jobs",
    "azure": "/openai/fine_tuning/jobs",
    "azure-v1": "/openai/v1/fine_tuning/jobs",
}


async def test_core_tools_on_azure_data(serve_fake_flavoured, flavour):
    with serve_fake_flavoured(azure_dataset(), flavour) as api:
        async with api.client() as client:
            jobs = await client.call_tool("list_jobs", {})
            detail = await client.call_tool("get_job", {"job_id": DONE})
            listed = await client.call_tool("list_checkpoints", {"job_id": DONE})
            best = await client.call_tool("best_checkpoint", {"job_id": DONE})
        _assert_sent_as(flavour, api.upstream_requests("/fine_tuning"), PREFIXES[flavour])
        checkpoint_requests = api.upstream_requests("/checkpoints")
    assert not any(r.is_error for r in (jobs, detail, listed, best))
    # list_jobs: newest first, Azure ids, the next cursor is an Azure id
    page = jobs.structured_content
    assert [j["id"] for j in page["jobs"]] == [RUNNING, FAILED, DONE] and page["has_more"] is False
    assert page["jobs"][1]["error"] == "invalid_training_file: The training file has too few examples."
    # get_job: the Azure model name (no ft: prefix) and files
    d = detail.structured_content
    assert re.fullmatch(rf"gpt-4o-mini-2024-07-18\.ft-{HEX32}", d["fine_tuned_model"])
    assert d["organization_id"] is None and d["status"] == "succeeded" and d["method"] == "supervised"
    assert re.fullmatch(f"file-{HEX32}", d["result_files"][0])
    # list_checkpoints: ftchkpt- ids, checkpoint models <base>.ft-<hex>:ckpt-step-N; the page request kept its
    # own limit next to the client-level api-version
    cps = checkpoint_records(listed.structured_content)
    assert [c["step_number"] for c in cps] == [10, 20, 30]
    assert all(re.fullmatch(f"ftchkpt-{HEX32}", c["id"]) for c in cps)
    assert cps[1]["fine_tuned_model_checkpoint"] == f"{d['fine_tuned_model']}:ckpt-step-20"
    assert [r.query.get("limit") for r in checkpoint_requests] == [["100"]] * len(checkpoint_requests)
    # best_checkpoint: step 20 beats the final model
    b = best.structured_content
    assert b["metric"] == "full_valid_loss" and b["best"]["step_number"] == 20
    assert b["final_model"] == d["fine_tuned_model"] and b["best_is_final"] is False
    assert "rather than the final model" in b["rationale"]


@pytest.mark.parametrize("flavour", AZURE_FLAVOURS)
async def test_list_checkpoints_after_an_azure_checkpoint_id(serve_fake_flavoured, flavour):
    newest = DATA.checkpoints[DONE][-1]  # step 30; the API lists newest first
    assert re.fullmatch(f"ftchkpt-{HEX32}", newest["id"])
    with serve_fake_flavoured(azure_dataset(), flavour) as api:
        async with api.client() as client:
            rest = await client.call_tool("list_checkpoints", {"job_id": DONE, "after": newest["id"]})
        (page_request,) = api.upstream_requests("/checkpoints")
    assert rest.is_error is False, rest.content
    assert [c["step_number"] for c in checkpoint_records(rest.structured_content)] == [
        10,
        20,
    ]
    assert page_request.query["after"] == [newest["id"]] and page_request.query["limit"] == ["100"]
    assert page_request.query.get("api-version") == ([DEFAULT_AZURE_API_VERSION] if flavour == "azure" else None)


async def test_list_jobs_cursor_and_metadata_keep_the_api_version(serve_fake_flavoured):
    data = FakeData(
        jobs=[
            azure_job(
                f"j{n}",
                created_at=1754000000 + n,
                metadata={"team": "a" if n % 2 else "b"},
            )
            for n in range(5)
        ]
    )
    newest_a, older_a = data.jobs[3]["id"], data.jobs[1]["id"]
    with serve_fake_flavoured(data, "azure") as api:
        async with api.client() as client:
            first = (await client.call_tool("list_jobs", {"metadata": {"team": "a"}})).structured_content
            second = (
                await client.call_tool("list_jobs", {"after": newest_a, "metadata": {"team": "a"}})
            ).structured_content
        (request,) = [r for r in api.upstream_requests("/fine_tuning/jobs") if "after" in r.query]
    assert [j["id"] for j in first["jobs"]] == [newest_a, older_a]
    assert [j["id"] for j in second["jobs"]] == [older_a]
    assert set(request.query) == {"api-version", "limit", "after", "metadata[team]"}
    assert request.query["api-version"] == [DEFAULT_AZURE_API_VERSION]
    assert request.query["after"] == [newest_a] and request.query["metadata[team]"] == ["a"]


@pytest.mark.parametrize("flavour", AZURE_FLAVOURS)
async def test_bad_ids_are_refused_before_any_request_on_azure(serve_fake_flavoured, flavour):
    with serve_fake_flavoured(azure_dataset(), flavour) as api:
        async with api.client() as client:
            for bad in [
                f"ftjob-{'a' * 32}/../files",
                f"ftjob-{'a' * 32}?api-version=1",
                "ftjob-",
            ]:
                text = _text(await client.call_tool("get_job", {"job_id": bad}))
                assert text.startswith("invalid_argument: job_id must be 'ftjob-'"), text
            text = _text(await client.call_tool("list_checkpoints", {"job_id": DONE, "after": "ftchkpt-x/../y"}))
            assert text.startswith("invalid_argument: ") and "after" in text
        assert api.faults.requests == []


async def test_unknown_job_on_azure_is_not_found_with_azure_advice(
    serve_fake_flavoured,
):
    missing = f"ftjob-{'0' * 32}"
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client() as client:
            text = _text(await client.call_tool("best_checkpoint", {"job_id": missing}))
    assert text.startswith(f"not_found: Job {missing} was not found (HTTP 404). ")
    assert (
        f"The API said: \"The specified job '{missing}' was not found\" (code NotFound; target fine_tune_id; "
        "inner error fine_tune_not_found)." in text
    )
    assert "AZURE_OPENAI_ENDPOINT" in text and "organisation" not in text
    assert re.search(f"request id {UUID}", text)


@pytest.mark.parametrize("flavour", AZURE_FLAVOURS)
async def test_wrong_key_on_azure_names_the_azure_variables_and_never_the_key(
    serve_fake_flavoured, flavour, captured_logs
):
    wrong = "0123456789abcdef0123456789WRONG"
    with serve_fake_flavoured(azure_dataset(), flavour) as api:
        async with api.client(api_key=wrong) as client:
            text = _text(await client.call_tool("get_job", {"job_id": DONE}))
        (request,) = api.faults.requests  # 401 is not retried
    assert request.headers["api-key"] == wrong
    assert text.startswith('auth_failed: Azure OpenAI rejected the API key (HTTP 401). The API said: "Access denied')
    assert "AZURE_OPENAI_API_KEY" in text and "AZURE_OPENAI_ENDPOINT" in text and "OPENAI_ORG_ID" not in text
    assert re.search(f"request id {UUID}", text)  # the gateway's apim-request-id
    assert wrong not in text and wrong not in captured_logs.text


async def test_bearer_is_refused_by_azure(serve_fake_flavoured):
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client(auth_header="Authorization") as client:
            text = _text(await client.call_tool("list_jobs", {}))
        assert api.faults.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert text.startswith("auth_failed: ") and "AZURE_OPENAI_API_KEY" in text


async def test_missing_key_in_azure_mode_names_azure_variable_and_sends_nothing(
    serve_fake_flavoured,
):
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client(api_key=None) as client:
            text = _text(await client.call_tool("list_checkpoints", {"job_id": DONE}))
        assert api.faults.requests == []
    assert text.startswith("auth_missing: No API key is configured. Set AZURE_OPENAI_API_KEY (a key of the Azure")


async def test_missing_api_version_is_explained(serve_fake_flavoured):
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client(api_version=None) as client:
            text = _text(await client.call_tool("get_job", {"job_id": DONE}))
        assert "api-version" not in api.faults.requests[0].query
    assert text.startswith("not_found: Azure OpenAI found nothing at the address for job ")
    assert 'The API said: "Resource not found".' in text
    assert "OPENAI_API_VERSION" in text and "AZURE_OPENAI_ENDPOINT" in text


@pytest.mark.parametrize(("flavour", "version"), [("azure", "2024-10"), ("azure-v1", "2024-10-21")])
async def test_unsupported_api_version_is_explained(serve_fake_flavoured, flavour, version):
    with serve_fake_flavoured(azure_dataset(), flavour) as api:
        async with api.client(api_version=version) as client:
            text = _text(await client.call_tool("list_jobs", {}))
        assert api.faults.requests[0].query["api-version"] == [version]
    assert text.startswith("invalid_argument: Azure OpenAI refused the api-version of the request")
    assert "API version not supported" in text and "OPENAI_API_VERSION" in text


@pytest.mark.parametrize(
    ("fault", "start", "needles"),
    [
        (
            Fault(
                status=400,
                body=azure_error_body(
                    "BadRequest",
                    "Invalid value for 'limit'.",
                    target="limit",
                    inner_code="invalid_type",
                    details=[{"code": "RangeError", "message": "limit must be from 1 to 100"}],
                ),
            ),
            "invalid_argument: The API refused the request for fine-tuning jobs (HTTP 400). ",
            [
                "\"Invalid value for 'limit'\" (code BadRequest; target limit; inner error invalid_type; "
                "detail: limit must be from 1 to 100)."
            ],
        ),
        (
            Fault(
                status=403,
                body=azure_error_body("PermissionDenied", "Principal does not have access."),
            ),
            "permission_denied: ",
            ["(code PermissionDenied)", "AZURE_OPENAI_ENDPOINT"],
        ),
        (
            Fault(
                status=429,
                body=azure_error_body(
                    "429",
                    "Requests to the Fine-tuning API have exceeded the rate limit.",
                ),
                headers={"retry-after": "300"},
            ),
            "rate_limited: ",
            ["exceeded the rate limit", "Wait 300 s"],
        ),
        (
            Fault(
                status=500,
                body=azure_error_body("InternalServerError", "The server had an error."),
                times=3,
                headers={"retry-after-ms": "1"},
            ),
            "upstream_unavailable: ",
            ["(code InternalServerError)"],
        ),
    ],
    ids=["400", "403", "429", "500"],
)
async def test_azure_error_bodies_become_coded_tool_errors(serve_fake_flavoured, fault, start, needles):
    fault.headers.setdefault("apim-request-id", "0f3c5b7e-6a1d-4c52-9a43-1f6f3c2b8e10")  # as Azure always sends
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        api.faults.add(fault)
        async with api.client() as client:
            text = _text(await client.call_tool("list_jobs", {}))
    assert text.startswith(start), text
    for needle in needles:
        assert needle in text, text


async def test_azure_key_is_masked_in_results_and_logs(serve_fake_flavoured, captured_logs):
    leaky = Fault(
        status=500,
        body=azure_error_body("InternalServerError", f"gateway saw api-key {TEST_KEY}"),
        times=3,
        headers={
            "retry-after-ms": "1",
            "apim-request-id": "5d0c1a2b-0000-4000-8000-000000000001",
        },
    )
    with serve_fake_flavoured(azure_dataset(), "azure") as api:
        async with api.client() as client:
            outputs = [
                await client.call_tool(tool, args)
                for tool, args in [
                    ("list_jobs", {}),
                    ("get_job", {"job_id": DONE}),
                    ("list_checkpoints", {"job_id": DONE}),
                    ("best_checkpoint", {"job_id": DONE}),
                    ("get_job", {"job_id": f"ftjob-{'1' * 32}"}),
                ]
            ]
            api.faults.add(leaky)
            outputs.append(await client.call_tool("get_job", {"job_id": RUNNING}))  # not read before: not cached
    assert "gateway saw api-key ***" in _text(outputs[-1])
    for result in outputs:
        assert TEST_KEY not in result.model_dump_json()
    assert TEST_KEY not in captured_logs.text and TEST_KEY[-12:] not in captured_logs.text


def test_error_bodies_of_both_shapes_are_parsed():
    azure = parse_error_body(
        b'{"error": {"code": "NotFound", "message": "Gone.", "target": "jobId", '
        b'"innererror": {"code": "JobMissing", "innererror": {"code": "JobDeleted"}}}}'
    )
    assert azure is not None and azure.azure_shaped
    assert (azure.code, azure.message, azure.target, azure.inner_code) == (
        "NotFound",
        "Gone.",
        "jobId",
        "JobDeleted",
    )
    openai = parse_error_body(
        b'{"error": {"message": "No.", "type": "invalid_request_error", "param": "after", "code": null}}'
    )
    assert openai is not None and not openai.azure_shaped and openai.target == "after" and openai.code is None
    gateway = parse_error_body(b'{"error": {"code": "401", "message": "Access denied"}}')
    assert gateway is not None and not gateway.azure_shaped  # only the apim-request-id header says "Azure"
    assert parse_error_body(b"<html>") is None and parse_error_body(b"[]") is None


def test_azure_is_guessed_from_the_answer_unless_the_caller_says():
    body = b'{"error": {"code": "401", "message": "Access denied due to invalid subscription key."}}'
    guessed = error_from_status(401, body, {"apim-request-id": "abc"}, what="job x", attempts=1)
    assert guessed.code is ErrorCode.AUTH_FAILED and "AZURE_OPENAI_API_KEY" in guessed.message
    assert guessed.request_id == "abc"
    told = error_from_status(401, body, {"apim-request-id": "abc"}, what="job x", attempts=1, azure=False)
    assert "OPENAI_API_KEY" in told.message and "AZURE_OPENAI_API_KEY" not in told.message
    openai = error_from_status(401, body, {"x-request-id": "req_1"}, what="job x", attempts=1)
    assert "AZURE" not in openai.message


def test_openai_error_text_is_unchanged():
    body = (
        b'{"error": {"message": "Could not find fine tune: ftjob-abc", "type": "invalid_request_error", '
        b'"param": "fine_tune_id", "code": "fine_tune_not_found"}}'
    )
    error = error_from_status(404, body, {"x-request-id": "req_1"}, what="job ftjob-abc", attempts=1)
    assert str(error) == (
        'not_found: Job ftjob-abc was not found (HTTP 404). The API said: "Could not find fine tune: ftjob-abc". '
        "Check the id (list_jobs shows the jobs this key can see) and that the key belongs to the job's "
        "organisation and project. (request id req_1)"
    )


def test_azure_endpoint_settings():
    settings = Settings.from_env(
        {
            "AZURE_OPENAI_ENDPOINT": " https://contoso.openai.azure.com/ ",
            "AZURE_OPENAI_API_KEY": "azure-key-1",
        }
    )
    assert settings.base_url == "https://contoso.openai.azure.com/openai"
    assert (settings.api_key, settings.auth_header, settings.api_version) == (
        "azure-key-1",
        "api-key",
        DEFAULT_AZURE_API_VERSION,
    )
    assert settings.azure is True and settings.key_env == "AZURE_OPENAI_API_KEY"
    versioned = Settings.from_env(
        {
            "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com/openai",
            "OPENAI_API_VERSION": "2025-04-01-preview",
        }
    )
    assert versioned.base_url == "https://contoso.openai.azure.com/openai"
    assert versioned.api_version == "2025-04-01-preview" and versioned.api_key is None
    v1 = Settings.from_env(
        {
            "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com/openai/v1/",
            "OPENAI_API_VERSION": "2024-10-21",
            "AZURE_OPENAI_API_KEY": "k",
        }
    )
    assert v1.base_url == "https://contoso.openai.azure.com/openai/v1" and v1.api_version is None
    assert "not used: OPENAI_API_VERSION" in repr(v1)


def test_azure_endpoint_wins_over_openai_variables_and_the_log_line_says_so():
    env = {
        "OPENAI_API_KEY": "sk-openai-secret",
        "OPENAI_BASE_URL": "https://api.openai.com/v1",
        "OPENAI_ORG_ID": "org-a",
        "OPENAI_PROJECT_ID": "proj_b",
        "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com",
        "AZURE_OPENAI_API_KEY": "azure-secret",
    }
    settings = Settings.from_env(env)
    assert settings.api_key == "azure-secret" and settings.base_url == "https://contoso.openai.azure.com/openai"
    assert settings.organization is None and settings.project is None
    line = repr(settings)
    assert (
        "AZURE_OPENAI_ENDPOINT is set and wins; not used: OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_ORG_ID, "
        "OPENAI_PROJECT_ID" in line
    )
    assert "api_key=set (AZURE_OPENAI_API_KEY)" in line
    assert "azure-secret" not in line and "sk-openai-secret" not in line
    # an OpenAI key is never sent to Azure: without AZURE_OPENAI_API_KEY there is no key
    no_azure_key = Settings.from_env({k: v for k, v in env.items() if k != "AZURE_OPENAI_API_KEY"})
    assert no_azure_key.api_key is None and no_azure_key.key_env == "AZURE_OPENAI_API_KEY"


@pytest.mark.parametrize(
    ("env", "auth_header", "expected"),
    [
        (
            {
                "OPENAI_BASE_URL": "https://contoso.openai.azure.com/openai/v1",
                "AZURE_OPENAI_API_KEY": "ak",
                "OPENAI_API_KEY": "ok",
            },
            None,
            ("ak", "api-key", None, True, "AZURE_OPENAI_API_KEY"),
        ),
        (
            {
                "OPENAI_BASE_URL": "https://contoso.cognitiveservices.azure.com/openai/v1",
                "OPENAI_API_KEY": "ok",
            },
            None,
            ("ok", "Authorization", None, True, "OPENAI_API_KEY"),
        ),
        (
            {
                "OPENAI_BASE_URL": "https://contoso.services.ai.azure.com/openai/v1",
                "OPENAI_API_KEY": "ok",
            },
            "api-key",
            ("ok", "api-key", None, True, "OPENAI_API_KEY"),
        ),
        (
            {
                "OPENAI_BASE_URL": "https://contoso.openai.azure.com/openai",
                "AZURE_OPENAI_API_KEY": "ak",
                "OPENAI_API_VERSION": "2025-02-01-preview",
            },
            None,
            ("ak", "api-key", "2025-02-01-preview", True, "AZURE_OPENAI_API_KEY"),
        ),
        (
            {
                "OPENAI_BASE_URL": "https://openai.azure.com.example.org/v1",
                "AZURE_OPENAI_API_KEY": "ak",
                "OPENAI_API_KEY": "ok",
            },
            None,
            ("ok", "Authorization", None, False, "OPENAI_API_KEY"),
        ),
        (
            {
                "OPENAI_BASE_URL": "https://gateway.example.org/openai/v1",
                "AZURE_OPENAI_API_KEY": "ak",
            },
            "api-key",
            ("ak", "api-key", None, False, "AZURE_OPENAI_API_KEY"),
        ),
        (
            {
                "OPENAI_BASE_URL": "https://gateway.example.org/v1",
                "AZURE_OPENAI_API_KEY": "ak",
                "OPENAI_API_KEY": "ok",
            },
            "api-key",
            ("ok", "api-key", None, False, "OPENAI_API_KEY"),
        ),
        (
            {"OPENAI_API_KEY": "ok", "OPENAI_API_VERSION": "2024-10-21"},
            None,
            ("ok", "Authorization", None, False, "OPENAI_API_KEY"),
        ),
    ],
    ids=[
        "v1-azure-key",
        "v1-bearer",
        "v1-openai-key-in-api-key",
        "legacy-path",
        "lookalike-host",
        "gateway-api-key",
        "gateway-prefers-openai-key",
        "openai-ignores-api-version",
    ],
)
def test_base_url_surfaces(env, auth_header, expected):
    settings = Settings.from_env(env, auth_header=auth_header)
    assert (
        settings.api_key,
        settings.auth_header,
        settings.api_version,
        settings.azure,
        settings.key_env,
    ) == expected
    assert settings.base_url == env.get("OPENAI_BASE_URL", DEFAULT_BASE_URL)


def test_flags_win_and_demo_ignores_azure():
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com",
        "AZURE_OPENAI_API_KEY": "ak",
    }
    bearer = Settings.from_env(env, auth_header="Authorization")
    assert bearer.auth_header == "Authorization" and bearer.api_version == DEFAULT_AZURE_API_VERSION
    demo = Settings.from_env(env, demo=True)
    assert (
        demo.api_key,
        demo.base_url,
        demo.azure,
        demo.api_version,
        demo.auth_header,
    ) == (
        None,
        DEMO_BASE_URL,
        False,
        None,
        "Authorization",
    )


@pytest.mark.parametrize("bad", ["", "api key", "api-key:", "x\napi-key", "ключ"])
def test_auth_header_must_be_a_header_name(bad):
    with pytest.raises(ValueError, match="auth_header"):
        Settings(auth_header=bad)


async def test_auth_header_flag_sends_the_bare_key_in_that_header(monkeypatch):
    job_id = "ftjob-CustomHeader000000000001"
    data = FakeData(
        jobs=[job(job_id)],
        checkpoints={job_id: [checkpoint(job_id, s, {"train_loss": 1 / s}) for s in (10, 20)]},
    )
    fake = FakeOpenAI(data, api_key=TEST_KEY, auth_header="x-api-key")
    with serve_app(fake) as base_url:
        monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        for name in (
            "AZURE_OPENAI_ENDPOINT",
            "AZURE_OPENAI_API_KEY",
            "OPENAI_API_VERSION",
        ):
            monkeypatch.delenv(name, raising=False)
        settings = _settings(build_parser().parse_args(["--auth-header", "x-api-key"]))
        from mcp import Client

        from openai_checkpoints_mcp.server import create_server

        async with Client(create_server(settings)) as client:
            best = await client.call_tool("best_checkpoint", {"job_id": job_id})
        async with Client(create_server(Settings.from_env())) as client:  # Bearer: refused by this server
            refused = await client.call_tool("get_job", {"job_id": job_id})
    assert best.is_error is False and best.structured_content["best"]["step_number"] == 20
    sent = fake.requests_to("/fine_tuning")
    assert [r.headers.get("x-api-key") for r in sent[:-1]] == [TEST_KEY] * (len(sent) - 1)
    assert all("authorization" not in r.headers for r in sent[:-1])
    assert sent[-1].headers["authorization"] == f"Bearer {TEST_KEY}" and "x-api-key" not in sent[-1].headers
    assert _text(refused).startswith("auth_failed: ")


async def test_azure_flavour_serves_events_and_file_content_with_the_api_version():
    done = DATA.jobs[0]
    fake = FakeOpenAI(azure_dataset(), api_key=TEST_KEY, flavour="azure")
    with serve_app(fake, base_path="/openai") as base_url:
        settings = Settings.from_env(
            {
                "AZURE_OPENAI_ENDPOINT": base_url.removesuffix("/openai"),
                "AZURE_OPENAI_API_KEY": TEST_KEY,
            }
        )
        async with create_http_client(settings) as http:
            headers = {"api-key": TEST_KEY}
            events = await http.get(f"/fine_tuning/jobs/{DONE}/events", params={"limit": 3}, headers=headers)
            content = await http.get(f"/files/{done['result_files'][0]}/content", headers=headers)
            missing = await http.get("/files/file-nope/content", headers=headers)
    assert events.status_code == 200 and len(events.json()["data"]) == 3 and events.json()["has_more"] is True
    assert events.json()["data"][0]["message"] == "Job succeeded."
    assert content.status_code == 200
    header, first = content.text.splitlines()[:2]
    assert header.split(",") == list(AZURE_RESULT_COLUMNS) and first.startswith("1,")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "code": "NotFound",
            "message": "File with id 'file-nope' was not found.",
            "target": "id",
        }
    }
    assert [r.query["api-version"] for r in fake.requests] == [[DEFAULT_AZURE_API_VERSION]] * 3
    assert fake.requests[0].query["limit"] == ["3"]


async def test_azure_flavours_answer_as_azure_does():

    async def get(flavour: str, path: str, headers: dict[str, str] | None = None):
        fake = FakeOpenAI(azure_dataset(), api_key=TEST_KEY, flavour=flavour)
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake), base_url="http://r.test") as http:
            return await http.get(path, headers={"api-key": TEST_KEY} if headers is None else headers)

    no_version = await get("azure", "/openai/fine_tuning/jobs")
    assert no_version.status_code == 404
    assert no_version.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert re.fullmatch(UUID, no_version.headers["apim-request-id"])
    assert no_version.headers["x-request-id"] == no_version.headers["apim-request-id"]
    bad_version = await get("azure", "/openai/fine_tuning/jobs?api-version=latest")
    assert bad_version.status_code == 400
    assert bad_version.json()["error"]["code"] == "BadRequest"
    ok = await get("azure", "/openai/fine_tuning/jobs?api-version=2024-10-21&limit=1")
    assert ok.status_code == 200 and ok.json()["data"][0]["id"] == RUNNING
    wrong_path = await get("azure", "/openai/v1/fine_tuning/jobs?api-version=2024-10-21")
    assert wrong_path.json() == {"error": {"code": "404", "message": "Resource not found"}}
    bearer = await get(
        "azure",
        "/openai/fine_tuning/jobs?api-version=2024-10-21",
        {"authorization": f"Bearer {TEST_KEY}"},
    )
    assert bearer.status_code == 401
    assert bearer.json() == {"error": {"code": "401", "message": AZURE_ACCESS_DENIED}}
    assert "x-request-id" not in bearer.headers and bearer.headers["apim-request-id"]
    # The v1 API is OpenAI-compatible: the plain OpenAI client's `Authorization: Bearer <key>` works there.
    v1_bearer = await get(
        "azure-v1",
        "/openai/v1/fine_tuning/jobs",
        {"authorization": f"Bearer {TEST_KEY}"},
    )
    assert v1_bearer.status_code == 200
    v1_wrong = await get("azure-v1", "/openai/v1/fine_tuning/jobs", {"authorization": "Bearer wrong"})
    assert v1_wrong.status_code == 401
    v1 = await get("azure-v1", "/openai/v1/fine_tuning/jobs?api-version=preview")
    assert v1.status_code == 200
    v1_missing = await get("azure-v1", f"/openai/v1/fine_tuning/jobs/ftjob-{'0' * 32}")
    assert v1_missing.status_code == 404 and v1_missing.json()["error"]["type"] == "invalid_request_error"
    v1_dated = await get("azure-v1", "/openai/v1/fine_tuning/jobs?api-version=2024-10-21")
    assert v1_dated.status_code == 400 and v1_dated.json()["error"]["message"] == "API version not supported"


async def test_default_flavour_is_unchanged():

    fake = FakeOpenAI(azure_dataset(), api_key=TEST_KEY)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake), base_url="http://o.test/v1") as http:
        ok = await http.get("/fine_tuning/jobs", headers={"authorization": f"Bearer {TEST_KEY}"})
        api_key = await http.get("/fine_tuning/jobs", headers={"api-key": TEST_KEY})
    assert ok.status_code == 200 and "apim-request-id" not in ok.headers
    assert ok.headers["x-request-id"].startswith("req_")
    assert api_key.status_code == 401 and api_key.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(ValueError, match="flavour"):
        FakeOpenAI(FakeData(), flavour="gcp")


def test_azure_builders_make_azure_shaped_objects():
    made = azure_job("x", status="running")
    assert re.fullmatch(f"ftjob-{HEX32}", made["id"]) and made["fine_tuned_model"] is None
    assert made["result_files"] is None and made["organization_id"] is None
    point = azure_checkpoint(made, 10, {"train_loss": 0.5})
    assert re.fullmatch(f"ftchkpt-{HEX32}", point["id"])
    assert re.fullmatch(
        rf"gpt-4o-mini-2024-07-18\.ft-{HEX32}:ckpt-step-10",
        point["fine_tuned_model_checkpoint"],
    )
    assert azure_job("x") == azure_job("x") and azure_job("x")["id"] != azure_job("y")["id"]


def test_an_azure_key_never_goes_out_as_bearer_from_the_environment():
    azure = Settings.from_env(
        {
            "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/",
            "AZURE_OPENAI_API_KEY": "k",
            "OPENAI_API_KEY": "sk-openai",
        }
    )
    assert (azure.api_key, azure.auth_header) == ("k", "api-key")
    v1 = Settings.from_env(
        {
            "OPENAI_BASE_URL": "https://r.openai.azure.com/openai/v1/",
            "AZURE_OPENAI_API_KEY": "k",
        }
    )
    assert (v1.api_key, v1.auth_header, v1.api_version) == ("k", "api-key", None)
    demo = Settings.from_env({"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}, demo=True)
    assert demo.azure is False and demo.api_key is None
