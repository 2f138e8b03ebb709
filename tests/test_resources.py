"""The resource templates (openai-ft://jobs/{job_id}, .../checkpoints, .../metrics.csv, .../curve.png) through the real
MCP client in both eras, and over streamable HTTP: listed from the table, each read equal to its tool's result or to
the result file decoded, through the store's cache; an unknown job is resource-not-found, a bad id is refused with no
request, upstream failures keep their short code; best_checkpoint and training_metrics link to the resources (the
curve.png picture itself: tests/test_plot.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import httpx2
import pytest
from mcp import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS

from openai_checkpoints_mcp.fake import Fault
from openai_checkpoints_mcp.tools.resources import TEMPLATES

from .helpers import (
    BAD_JOB_IDS,
    CURVE_JOB,
    DEMO_JOB,
    RESULT_FILE,
    TEST_KEY,
    curve_data,
    demo_server,
    mcp_client,
)

pytestmark = pytest.mark.anyio

CSV = (Path(__file__).parent / "data" / "step_metrics.csv").read_bytes()
JOB_URI = f"openai-ft://jobs/{CURVE_JOB}"


def uris(job_id: str) -> list[str]:
    return [spec.uri(job_id) for spec in TEMPLATES]


async def test_every_template_is_listed_from_the_table(serve_fake, mode):
    with serve_fake(curve_data(CSV)) as api:
        async with api.client(mode) as client:
            listed = (await client.list_resource_templates()).resource_templates
            resources = (await client.list_resources()).resources
    assert [(t.uri_template, t.name, t.mime_type) for t in listed] == [
        ("openai-ft://jobs/{job_id}", "job", "application/json"),
        ("openai-ft://jobs/{job_id}/checkpoints", "job_checkpoints", "application/json"),
        ("openai-ft://jobs/{job_id}/metrics.csv", "job_metrics_csv", "text/csv"),
        ("openai-ft://jobs/{job_id}/curve.png", "job_curve_png", "image/png"),
    ]
    assert [t.uri_template for t in listed] == [spec.uri_template for spec in TEMPLATES]
    assert all(t.title and t.description for t in listed)
    assert resources == []  # templates only: there is no fixed list of jobs
    assert api.faults.requests == []  # listing reads nothing


async def test_job_and_checkpoints_read_as_their_tools_answer(serve_fake, mode):
    with serve_fake(curve_data(CSV)) as api:
        async with api.client(mode) as client:
            job = await client.read_resource(JOB_URI)
            checkpoints = await client.read_resource(f"{JOB_URI}/checkpoints")
        async with api.client(mode) as client:  # a server of its own: its cache as cold as the first one's was
            get_job = await client.call_tool("get_job", {"job_id": CURVE_JOB})
            list_checkpoints = await client.call_tool("list_checkpoints", {"job_id": CURVE_JOB})
    for read, tool, uri in ((job, get_job, JOB_URI), (checkpoints, list_checkpoints, f"{JOB_URI}/checkpoints")):
        (content,) = read.contents
        assert content.uri == uri and content.mime_type == "application/json"
        assert json.loads(content.text) == tool.structured_content
    assert json.loads(checkpoints.contents[0].text)["count"] == 3


@pytest.mark.parametrize("encoded", [False, True], ids=["csv", "base64"])
async def test_metrics_csv_is_the_result_file_decoded_and_cached(serve_fake, mode, encoded):
    with serve_fake(curve_data(CSV), base64_results=encoded) as api:
        async with httpx2.AsyncClient() as http:  # the body as the fake serves it
            response = await http.get(
                f"{api.base_url}/files/{RESULT_FILE}/content", headers={"Authorization": f"Bearer {TEST_KEY}"}
            )
        served = response.content
        async with api.client(mode) as client:
            first = await client.read_resource(f"{JOB_URI}/metrics.csv")
            reads = len(api.faults.requests)
            again = await client.read_resource(f"{JOB_URI}/metrics.csv")
        assert len(api.faults.requests) == reads == 3  # ours; the job, the file; then both from the cache (finished)
    (content,) = first.contents
    assert content.mime_type == "text/csv" and content.uri == f"{JOB_URI}/metrics.csv"
    assert content.text == CSV.decode()
    assert content.text == (base64.b64decode(served) if encoded else served).decode()
    assert (served != CSV) is encoded
    assert again.contents[0].text == content.text


async def test_demo_job_metrics_csv_over_streamable_http(mode):
    with demo_server() as root:
        async with mcp_client(root, mode) as client:
            listed = (await client.list_resource_templates()).resource_templates
            read = await client.read_resource(f"openai-ft://jobs/{DEMO_JOB}/metrics.csv")
            job = await client.read_resource(f"openai-ft://jobs/{DEMO_JOB}")
    assert len(listed) == len(TEMPLATES)
    text = read.contents[0].text
    assert read.contents[0].mime_type == "text/csv" and text.startswith("step,") and text.count("\n") > 100
    assert json.loads(job.contents[0].text)["notice"].startswith("DEMO DATA")


@pytest.mark.parametrize("uri", uris("ftjob-Unknown00000000000000000001"))
async def test_an_unknown_job_is_resource_not_found(serve_fake, mode, uri):
    with serve_fake(curve_data(CSV)) as api:
        async with api.client(mode) as client:
            with pytest.raises(MCPError) as raised:
                await client.read_resource(uri)
    error = raised.value.error
    assert error.code == INVALID_PARAMS and error.data == {"uri": uri}
    assert error.message.startswith("not_found: ") and "ftjob-Unknown00000000000000000001" in error.message


@pytest.mark.parametrize("bad", BAD_JOB_IDS)
async def test_invalid_job_ids_are_refused_before_any_request(serve_fake, bad):
    with serve_fake(curve_data(CSV)) as api:
        for mode in ("auto", "legacy"):
            async with api.client(mode) as client:
                for spec in TEMPLATES:
                    uri = spec.uri(quote(bad, safe=""))
                    with pytest.raises(MCPError) as raised:
                        await client.read_resource(uri)
                    assert raised.value.error.code == INVALID_PARAMS, uri
                    assert raised.value.error.data == {"uri": uri}
        assert api.faults.requests == []


async def test_an_invalid_id_says_what_a_job_id_is(serve_fake, mode):
    with serve_fake(curve_data(CSV)) as api:
        async with api.client(mode) as client:
            with pytest.raises(MCPError) as raised:
                await client.read_resource("openai-ft://jobs/ftjob-abc.def/checkpoints")
        assert api.faults.requests == []
    message = raised.value.error.message
    assert message.startswith("invalid_argument: job_id must be 'ftjob-'") and "'ftjob-abc.def'" in message


async def test_a_job_without_a_result_file_has_no_metrics_csv(serve_fake, mode):
    with serve_fake(curve_data(None, status="running")) as api:
        async with api.client(mode) as client:
            with pytest.raises(MCPError) as raised:
                await client.read_resource(f"{JOB_URI}/metrics.csv")
            checkpoints = await client.read_resource(f"{JOB_URI}/checkpoints")
    error = raised.value.error
    assert error.code == INVALID_PARAMS and error.data == {"uri": f"{JOB_URI}/metrics.csv"}
    assert error.message.startswith("not_found: ") and "running" in error.message
    assert json.loads(checkpoints.contents[0].text)["status"] == "running"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(status=503, headers={"retry-after-ms": "5"}, times=3), "upstream_unavailable: "),
        (Fault(status=403), "permission_denied: "),
        (Fault(status=200, body=b"<html>nginx</html>", content_type="text/html"), "bad_response: "),
    ],
    ids=["503", "403", "html"],
)
async def test_upstream_failures_are_resource_errors_with_our_code(serve_fake, mode, fault, code):
    with serve_fake(curve_data(CSV)) as api:
        api.faults.add(fault)
        async with api.client(mode) as client:
            with pytest.raises(MCPError) as raised:
                await client.read_resource(JOB_URI)
    error = raised.value.error
    assert error.code == INTERNAL_ERROR and error.message.startswith(code) and error.data == {"uri": JOB_URI}


async def test_a_garbage_result_file_is_bad_response(serve_fake, mode):
    with serve_fake(curve_data(b"<html><title>Sign in</title></html>")) as api:
        async with api.client(mode) as client:
            with pytest.raises(MCPError) as raised:
                await client.read_resource(f"{JOB_URI}/metrics.csv")
    assert raised.value.error.code == INTERNAL_ERROR
    assert raised.value.error.message.startswith("bad_response: ") and RESULT_FILE in raised.value.error.message


@pytest.mark.parametrize("tool", ["best_checkpoint", "training_metrics"])
async def test_tools_link_the_checkpoints_metrics_csv_and_curve_and_the_links_resolve(serve_fake, mode, tool):
    with serve_fake(curve_data(CSV)) as api:
        async with api.client(mode) as client:
            result = await client.call_tool(tool, {"job_id": CURVE_JOB})
            text, *links = result.content
            reads = [await client.read_resource(link.uri) for link in links]
    assert result.is_error is False and text.type == "text"
    assert json.loads(text.text) == result.structured_content  # structured output as before, and its JSON
    assert [(link.type, link.uri, link.mime_type) for link in links] == [
        ("resource_link", f"{JOB_URI}/checkpoints", "application/json"),
        ("resource_link", f"{JOB_URI}/metrics.csv", "text/csv"),
        ("resource_link", f"{JOB_URI}/curve.png", "image/png"),
    ]
    assert all(link.name and link.title and CURVE_JOB in link.title for link in links)
    assert reads[1].contents[0].text == CSV.decode()
    assert base64.b64decode(reads[2].contents[0].blob).startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("tool", ["best_checkpoint", "training_metrics"])
async def test_a_job_without_a_result_file_gets_no_metrics_csv_link(serve_fake, tool):
    with serve_fake(curve_data(None, status="running")) as api:
        async with api.client() as client:
            result = await client.call_tool(tool, {"job_id": CURVE_JOB})
            curve = await client.read_resource(f"{JOB_URI}/curve.png")  # drawn from its checkpoints meanwhile
    assert [block.uri for block in result.content[1:]] == [f"{JOB_URI}/checkpoints", f"{JOB_URI}/curve.png"]
    assert curve.contents[0].mime_type == "image/png"
