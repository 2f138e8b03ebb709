"""Upstream failures become coded tool errors: missing or wrong keys, statuses, rate limits, timeouts, the deadline,
refused connections, error bodies of every shape; the key never shows in a result or a log line."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from openai_checkpoints_mcp.api.errors import parse_error_body, say_wait
from openai_checkpoints_mcp.fake import (
    FakeData,
    Fault,
)
from openai_checkpoints_mcp.fake.azure import azure_error_body

from .helpers import (
    EDGE_JOB,
    SFT_JOB,
    TEST_KEY,
    error_text,
    error_texts,
    job,
    sft_data,
)

pytestmark = pytest.mark.anyio


async def test_auth_missing_makes_no_request(serve_fake):
    with serve_fake(sft_data()) as api:
        async with api.client(api_key=None) as client:
            for tool, args in [
                ("list_jobs", {}),
                ("get_job", {"job_id": SFT_JOB}),
                ("list_checkpoints", {"job_id": SFT_JOB}),
                ("best_checkpoint", {"job_id": SFT_JOB}),
            ]:
                text = error_text(await client.call_tool(tool, args))
                assert text.startswith("auth_missing: ") and "OPENAI_API_KEY" in text
        assert api.faults.requests == []


async def test_auth_failed_never_shows_the_key(serve_fake, captured_logs):
    with serve_fake(sft_data()) as api:
        async with api.client(api_key="sk-wrong-key-0000000000WRONG") as client:
            text = error_text(await client.call_tool("get_job", {"job_id": SFT_JOB}))
    assert text.startswith("auth_failed: ") and "OPENAI_API_KEY" in text
    assert "sk-wrong-key-0000000000WRONG" not in text
    assert len(api.faults.requests) == 1  # 401 is not retried
    assert "sk-wrong-key-0000000000WRONG" not in captured_logs.text


@pytest.mark.parametrize(
    ("fault", "code", "attempts"),
    [
        (Fault(status=403), "permission_denied: ", 1),
        (
            Fault(status=429, headers={"retry-after-ms": "5"}, times=3),
            "rate_limited: ",
            3,
        ),
        (
            Fault(status=503, headers={"retry-after-ms": "5"}, times=3),
            "upstream_unavailable: ",
            3,
        ),
        (Fault(status=400), "invalid_argument: ", 1),
        (
            Fault(
                status=200,
                body=b"<html><body>Welcome to nginx</body></html>",
                content_type="text/html",
            ),
            "bad_response: ",
            1,
        ),
        (
            Fault(
                status=200,
                body=b'{"object": "fine_tuning.job", "id": ',
                content_type="application/json",
            ),
            "bad_response: ",
            1,
        ),
        (
            Fault(status=200, body=b"[1, 2]", content_type="application/json"),
            "bad_response: ",
            1,
        ),
        (Fault(status=200, body={"object": "fine_tuning.job"}), "bad_response: ", 1),
        (
            Fault(
                status=301,
                body=b"",
                headers={"location": "https://example.invalid/v1/"},
            ),
            "bad_response: ",
            1,
        ),
    ],
    ids=[
        "403",
        "429",
        "503",
        "400",
        "html",
        "malformed-json",
        "not-an-object",
        "no-id",
        "redirect",
    ],
)
async def test_upstream_failures_become_coded_tool_errors(serve_fake, fault, code, attempts):
    with serve_fake(sft_data()) as api:
        api.faults.add(fault)
        async with api.client() as client:
            text = error_text(await client.call_tool("get_job", {"job_id": SFT_JOB}))
    assert text.startswith(code), text
    assert len(api.faults.requests) == attempts


async def test_rate_limited_reports_a_wait_longer_than_it_sleeps(serve_fake):
    with serve_fake(sft_data()) as api:
        api.faults.add(Fault(status=429, headers={"retry-after": "200"}))
        async with api.client() as client:
            text = error_text(await client.call_tool("get_job", {"job_id": SFT_JOB}))
    assert text.startswith("rate_limited: ") and "200 s" in text
    assert len(api.faults.requests) == 1


@pytest.mark.parametrize(
    ("header", "told"),
    [
        ("0.5", "Wait 0.5 s, then call again."),
        ("1e308", "The API asks for a wait of more than a day"),
        ("200", "Wait 200 s, then call again."),
    ],
)
async def test_a_retry_after_is_told_sensibly(serve_fake, header, told):
    """Hardening issue, item 7: ``retry-after: 0.5`` was told as "Wait 0 s", ``1e308`` as a 309-digit number."""
    with serve_fake(sft_data()) as api:
        api.faults.add(Fault(status=429, headers={"retry-after": header}))
        async with api.client(max_retries=0) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": SFT_JOB}))
    assert text.startswith("rate_limited: ") and told in text and "00000" not in text


@pytest.mark.parametrize(
    ("seconds", "told"),
    [(0.04, "Wait 0.1 s"), (2, "Wait 2 s"), (9.95, "Wait 10 s"), (61.2, "Wait 62 s"), (1800, "about 30 minutes")],
)
def test_say_wait(seconds, told):
    assert told in say_wait(seconds) and say_wait(float("inf")) == say_wait(1e308)


async def test_429_then_success(serve_fake):
    with serve_fake(sft_data()) as api:
        api.faults.add(
            Fault(
                status=429,
                headers={"retry-after-ms": "10"},
                path_contains="/checkpoints",
            )
        )
        async with api.client() as client:
            result = await client.call_tool("best_checkpoint", {"job_id": SFT_JOB})
        checkpoint_requests = api.upstream_requests("/checkpoints")
    assert result.is_error is False and result.structured_content["best"]["step_number"] == 240
    assert len(checkpoint_requests) == 2
    assert [r.headers.get("x-stainless-retry-count") for r in checkpoint_requests] == [
        "0",
        "1",
    ]


async def test_timeout(serve_fake):
    with serve_fake(sft_data()) as api:
        api.faults.add(Fault(delay=1.0, passthrough_after_delay=True, times=5))
        async with api.client(timeout=0.2, max_retries=1) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": SFT_JOB}))
    assert text.startswith("timeout: ") and "2 attempts" in text


async def test_overall_deadline(serve_fake):
    with serve_fake(sft_data()) as api:
        api.faults.add(Fault(delay=3.0, passthrough_after_delay=True))
        async with api.client(timeout=10.0, deadline=0.5) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": SFT_JOB}))
    assert text.startswith("timeout: ") and "deadline" in text


async def test_connection_refused_is_upstream_unavailable(serve_fake):
    with serve_fake(sft_data()) as api, socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connecting to it is refused
        dead_url = f"http://127.0.0.1:{unused.getsockname()[1]}/v1"
        async with api.client(base_url=dead_url, max_retries=0) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": SFT_JOB}))
    assert not api.faults.requests
    assert text.startswith("upstream_unavailable: ") and "Could not reach" in text


async def test_credentials_in_the_base_url_never_reach_errors_logs_or_repr(serve_fake, captured_logs):
    """Hardening issue, item 7: ``OPENAI_BASE_URL=http://user:pass@host/v1`` showed the password in the tool error and
    the log. It is masked as ``***@`` (the user name too: it may be a token by itself)."""
    password = "s3cretPassw0rdXYZ"
    with serve_fake(sft_data()) as api, socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_url = f"http://alice-user:{password}@127.0.0.1:{unused.getsockname()[1]}/v1"
        async with api.client(base_url=dead_url, max_retries=0) as client:
            text = error_text(await client.call_tool("get_job", {"job_id": SFT_JOB}))
        shown = repr(replace(api.settings, base_url=dead_url))
    assert text.startswith("upstream_unavailable: ") and "http://***@127.0.0.1:" in text
    logged = "\n".join(record.getMessage() for record in captured_logs.records)
    for where in (text, logged, shown):
        assert password not in where and "alice-user" not in where
    assert "***@127.0.0.1" in shown


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
    with serve_fake(sft_data()) as api:
        async with api.client(max_retries=2) as client:
            outputs = []
            for tool, args in [
                ("list_jobs", {}),
                ("get_job", {"job_id": SFT_JOB}),
                ("list_checkpoints", {"job_id": SFT_JOB}),
                ("best_checkpoint", {"job_id": SFT_JOB}),
                ("get_job", {"job_id": "ftjob-missing0000"}),
            ]:
                outputs.append(await client.call_tool(tool, args))
            api.faults.add(leaky)
            outputs.append(await client.call_tool("get_job", {"job_id": SFT_JOB, "refresh": True}))
        assert all(r.headers.get("authorization") == f"Bearer {TEST_KEY}" for r in api.faults.requests)
    assert outputs[-1].is_error and "***" in outputs[-1].content[0].text
    for result in outputs:
        assert TEST_KEY not in result.model_dump_json()
    assert TEST_KEY not in captured_logs.text
    assert TEST_KEY[-12:] not in captured_logs.text


@pytest.mark.parametrize("shape", ["openai-message", "azure-detail", "azure-target", "redirect-location"])
async def test_an_upstream_text_cut_at_its_limit_never_shows_part_of_the_key(serve_fake, shape, captured_logs):
    """Upstream texts are shortened (300 characters for a message, 120 for a detail, 200 for a Location): the key
    must be masked before the cut, or a key that straddles the cut shows its first characters."""
    faults = {
        "openai-message": Fault(
            status=400,
            body={
                "error": {
                    "message": "x" * 280 + " " + TEST_KEY,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
        "azure-detail": Fault(
            status=400,
            body=azure_error_body(
                "BadRequest",
                "Bad.",
                details=[{"code": "X", "message": "y" * 100 + TEST_KEY}],
            ),
            headers={"apim-request-id": "0f3c5b7e-6a1d-4c52-9a43-1f6f3c2b8e10"},
        ),
        "azure-target": Fault(
            status=400,
            body=azure_error_body("BadRequest", "Bad.", target="t" * 105 + TEST_KEY),
            headers={"apim-request-id": "0f3c5b7e-6a1d-4c52-9a43-1f6f3c2b8e10"},
        ),
        "redirect-location": Fault(
            status=302,
            body=b"",
            headers={"location": "https://h/" + "a" * 180 + TEST_KEY},
        ),
    }
    with serve_fake(FakeData(jobs=[job(EDGE_JOB)])) as api:
        api.faults.add(faults[shape])
        async with api.client() as client:
            result = await client.call_tool("get_job", {"job_id": EDGE_JOB})
    text = error_texts(result)
    assert TEST_KEY[:10] not in result.model_dump_json(), text
    # httpcore2's own DEBUG trace prints raw response headers (the Location echoing the key): not ours to mask
    ours = [r.getMessage() for r in captured_logs.records if not r.name.startswith("httpcore")]
    assert ours and not any(TEST_KEY[:10] in message for message in ours)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"error": ' * 50_000,
        b'{"error": {"innererror": ' + b'{"innererror": ' * 50_000,
    ],
)
def test_a_deeply_nested_error_body_is_just_not_understood(body):
    assert parse_error_body(body) is None


async def test_a_deeply_nested_error_body_is_still_a_coded_tool_error(serve_fake):
    with serve_fake(FakeData(jobs=[job(EDGE_JOB)])) as api:
        api.faults.add(Fault(status=400, body=b"[" * 100_000, content_type="application/json"))
        async with api.client() as client:
            text = error_texts(await client.call_tool("get_job", {"job_id": EDGE_JOB}))
    assert text.startswith(f"invalid_argument: The API refused the request for job {EDGE_JOB} (HTTP 400)."), text


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"oops"',
        b"<html>502</html>",
        b"\xff\xfe\x00garbage",
        b'{"error": null}',
        b'{"error": []}',
        b'{"error": {"message": {"nested": 1}, "code": true}}',
        b'{"error": {"code": 12345}}',
        b'{"message": "top-level only"}',
        b'{"error": {"message": "' + b"z" * 2_000_000 + b'"}}',
    ],
)
async def test_error_bodies_of_every_shape_give_coded_errors(serve_fake, body):
    with serve_fake(FakeData(jobs=[job(EDGE_JOB)])) as api:
        api.faults.add(Fault(status=400, body=body, content_type="application/json"))
        async with api.client() as client:
            text = error_texts(await client.call_tool("get_job", {"job_id": EDGE_JOB}))
    assert text.startswith("invalid_argument: The API refused the request for job "), text[:300]
    assert len(text) < 1500


async def test_a_too_deeply_nested_success_body_is_a_bad_response(serve_fake):
    from openai_checkpoints_mcp.fake import FakeData as _Data
    from openai_checkpoints_mcp.fake import Fault as _Fault

    with serve_fake(_Data()) as api:
        api.faults.add(_Fault(status=200, body=b"[" * 100_000, content_type="application/json"))
        async with api.client() as client:
            result = await client.call_tool("get_job", {"job_id": "ftjob-Deep00000000000000000001"})
    assert result.is_error and result.content[0].text.startswith("bad_response: ")


@pytest.mark.parametrize(("tool", "args"), [("list_jobs", {}), ("get_job", {"job_id": SFT_JOB})])
async def test_a_base_url_without_v1_says_to_check_openai_base_url(serve_fake, tool, args):
    """Hardening issue, item 9: a base URL without ``/v1`` gave "Fine-tuning jobs was not found … Check the id"."""
    with serve_fake(sft_data()) as api:
        wrong = api.base_url.removesuffix("/v1")
        async with api.client(base_url=wrong) as client:
            text = error_text(await client.call_tool(tool, args))
    assert text.startswith("not_found: ") and "Check OPENAI_BASE_URL" in text and "Check the id" not in text
