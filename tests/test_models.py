"""list_fine_tuned_models: the fine-tuned models the account can call, joined to their jobs and best checkpoints,
with their base models' shutdown dates, through the real MCP client against the fake API."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from openai_checkpoints_mcp.fake import FakeData, Fault
from openai_checkpoints_mcp.fake.azure import azure_checkpoint, azure_job
from openai_checkpoints_mcp.tools import models as models_tool

from .helpers import BASE, checkpoint, error_text, job

pytestmark = pytest.mark.anyio

TODAY = date(2026, 12, 1)
OLD = "ftjob-Old00000000000000000000001"
NEW = "ftjob-New00000000000000000000001"
NANO = "gpt-4.1-nano-2025-04-14"
UNKNOWN_BASE = "gpt-3.5-turbo-1106"


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models_tool, "today", lambda: TODAY)


def base_model(model_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1721172741, "owned_by": "system", **extra}


def ft(model_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 1754039000, "owned_by": "org-acme", **extra}


def account() -> FakeData:
    """Two jobs (one whose best checkpoint is not its final model), and models of three base models."""
    old, new = job(OLD, suffix="old"), job(NEW, suffix="new", created_at=1754135200)
    cps = {
        OLD: [checkpoint(OLD, s, {"full_valid_loss": v}) for s, v in ((100, 0.5), (200, 0.3), (300, 0.4))],
        NEW: [checkpoint(NEW, s, {"full_valid_loss": v}) for s, v in ((100, 0.5), (200, 0.4), (300, 0.2))],
    }
    listed = [
        base_model(BASE),
        ft(old["fine_tuned_model"]),
        ft(new["fine_tuned_model"]),
        ft(f"ft:{NANO}:acme-labs:nano:Zz11Yy22"),
        ft(f"ft:{UNKNOWN_BASE}:acme-labs:legacy:Qq33Ww44"),
        ft(f"{old['fine_tuned_model']}:ckpt-step-200"),  # a checkpoint, not a model of its own
    ]
    return FakeData(jobs=[old, new], checkpoints=cps, models=listed)


async def inventory(api: Any, **overrides: Any) -> dict[str, Any]:
    async with api.client(**overrides) as client:
        result = await client.call_tool("list_fine_tuned_models", {})
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content
    return data


async def test_models_are_joined_to_their_jobs_and_best_checkpoints(serve_fake):
    data = account()
    with serve_fake(data) as api:
        found = await inventory(api)
    by_id = {m["id"]: m for m in found["models"]}
    assert found["count"] == 4 and len(by_id) == 4  # base models and checkpoints are not listed
    old = by_id[data.jobs[0]["fine_tuned_model"]]
    assert old["job"] == {
        "id": OLD,
        "suffix": "old",
        "base_model": BASE,
        "finished_at": "2025-08-01T09:03:20Z",
        "method": "supervised",
    }
    assert old["best_checkpoint"]["step_number"] == 200
    assert old["best_checkpoint"]["model"].endswith(":ckpt-step-200")
    assert old["best_checkpoint"]["metric"] == "full_valid_loss"
    assert old["best_checkpoint"]["is_final_model"] is False
    new = by_id[data.jobs[1]["fine_tuned_model"]]
    assert new["job"]["id"] == NEW and new["best_checkpoint"]["is_final_model"] is True
    nano = by_id[f"ft:{NANO}:acme-labs:nano:Zz11Yy22"]
    assert nano["job"] is None and nano["best_checkpoint"] is None
    assert nano["base_model"] == NANO  # from the name, without a job


async def test_days_left_sorting_unknown_dates_and_advice(serve_fake):
    with serve_fake(account()) as api:
        found = await inventory(api)
    dates = [(m["base_model"], m["shutdown_date"], m["days_left"], m["shutdown_source"]) for m in found["models"]]
    assert dates == [
        (NANO, "2026-10-23", -39, "table"),
        (BASE, "2027-01-14", 44, "table"),
        (BASE, "2027-01-14", 44, "table"),
        (UNKNOWN_BASE, None, None, None),  # not in the table: unknown, never guessed, and last
    ]
    assert found["today"] == "2026-12-01"
    assert found["new_jobs"] == {
        "platform": "openai",
        "accepting_new_jobs": True,
        "new_jobs_end": "2027-01-06",
        "days_left": 36,
    }
    advice = found["advice"]
    assert advice[0].startswith("OpenAI takes no new fine-tuning jobs from 2027-01-06 (36 days)")
    assert len(advice) == 4  # the end of new jobs, the past shutdown and the two within 90 days
    assert any("was due to shut down on 2026-10-23" in line for line in advice)
    assert not any(UNKNOWN_BASE in line for line in advice)
    assert "OpenAI's deprecations page" in found["shutdown_table"] and "as of" in found["shutdown_table"]


async def test_no_advice_when_every_date_is_far(serve_fake, monkeypatch):
    monkeypatch.setattr(models_tool, "today", lambda: date(2026, 6, 1))
    data = account()
    assert data.models is not None
    data.models = [m for m in data.models if NANO not in m["id"]]
    with serve_fake(data) as api:
        found = await inventory(api)
    assert found["advice"] == []
    assert found["models"][0]["days_left"] == 227


async def test_no_new_jobs_from_the_cutoff(serve_fake, monkeypatch):
    monkeypatch.setattr(models_tool, "today", lambda: date(2027, 1, 6))
    with serve_fake(account()) as api:
        found = await inventory(api)
    assert found["new_jobs"]["accepting_new_jobs"] is False
    assert found["new_jobs"]["days_left"] == 0


async def test_a_date_the_api_reports_wins_over_the_table(serve_fake):
    data = FakeData(
        models=[
            ft(f"ft:{BASE}:acme-labs:a:Aa11Bb22", shutdown_date="2026-12-20"),
            ft(f"ft:{UNKNOWN_BASE}:acme-labs:b:Cc33Dd44", shutdown_date=1798761600),  # unix seconds: 2027-01-01
            ft(f"ft:{NANO}:acme-labs:c:Ee55Ff66", shutdown_date="not a date"),  # ignored: the table's date
        ]
    )
    with serve_fake(data) as api:
        found = await inventory(api)
    assert [(m["shutdown_date"], m["days_left"], m["shutdown_source"]) for m in found["models"]] == [
        ("2026-10-23", -39, "table"),
        ("2026-12-20", 19, "api"),
        ("2027-01-01", 31, "api"),
    ]


async def test_the_user_file_overrides_the_table(serve_fake, tmp_path):
    overrides = tmp_path / "shutdowns.json"
    overrides.write_text(json.dumps({UNKNOWN_BASE: "2026-12-31", NANO: None}))
    with serve_fake(account()) as api:
        found = await inventory(api, shutdowns_file=str(overrides))
    dates = {m["base_model"]: m["shutdown_date"] for m in found["models"]}
    assert dates == {UNKNOWN_BASE: "2026-12-31", BASE: "2027-01-14", NANO: None}
    assert found["models"][0]["base_model"] == UNKNOWN_BASE
    assert str(overrides) in found["shutdown_table"]


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"gpt-4o-mini-2024-07-18": "soon"}'])
async def test_a_bad_user_file_is_an_invalid_argument(serve_fake, tmp_path, content):
    overrides = tmp_path / "shutdowns.json"
    overrides.write_text(content)
    with serve_fake(account()) as api:
        async with api.client(shutdowns_file=str(overrides)) as client:
            text = error_text(await client.call_tool("list_fine_tuned_models", {}))
    assert text.startswith("invalid_argument: ")
    assert "OPENAI_CHECKPOINTS_MCP_SHUTDOWNS" in text


@pytest.mark.parametrize("flavour", ["azure", "azure-v1"])
async def test_azure_models(serve_fake_flavoured, flavour):
    done = azure_job("inventory", suffix="claims")
    cps = [azure_checkpoint(done, s, {"full_valid_loss": v}) for s, v in ((10, 0.4), (20, 0.3))]
    data = FakeData(jobs=[done], checkpoints={done["id"]: cps})  # /models lists the job's model itself
    with serve_fake_flavoured(data, flavour) as api:
        found = await inventory(api)
    assert found["count"] == 1
    model = found["models"][0]
    assert ".ft-" in model["id"] and model["job"]["id"] == done["id"]
    assert model["base_model"] == "gpt-4o-mini-2024-07-18"
    assert model["best_checkpoint"]["step_number"] == 20
    assert found["new_jobs"] == {
        "platform": "azure",
        "accepting_new_jobs": None,
        "new_jobs_end": None,
        "days_left": None,
    }
    assert api.fake.requests_to("/models")


async def test_azure_deprecation_field_is_read(serve_fake_flavoured):
    data = FakeData(models=[ft("gpt-4o-2024-08-06.ft-0123456789abcdef", deprecation={"inference": 1798761600})])
    with serve_fake_flavoured(data, "azure") as api:
        found = await inventory(api)
    assert found["models"][0]["shutdown_date"] == "2027-01-01"
    assert found["models"][0]["shutdown_source"] == "api"


async def test_an_unpaged_listing_is_one_request(serve_fake):
    """OpenAI's answer has no has_more (openai-python never asks for more): asking again with ``after`` would only get
    the same list back."""
    with serve_fake(account()) as api:
        found = await inventory(api)
        requests = api.upstream_requests("/models")
    assert found["count"] == 4
    assert len(requests) == 1 and "after" not in requests[0].query


async def test_a_paged_listing_is_followed(serve_fake):
    data = account()
    assert data.models is not None
    first = {"object": "list", "data": data.models[:2], "has_more": True}
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=first, path_contains="/models", times=1))
        found = await inventory(api)
        requests = api.upstream_requests("/models")
    assert found["count"] == 4
    assert len(requests) == 2 and requests[1].query["after"] == [data.models[1]["id"]]


async def test_a_repeating_listing_is_a_bad_response(serve_fake):
    data = account()
    assert data.models is not None
    same = {"object": "list", "data": data.models[:2], "has_more": True}
    with serve_fake(data) as api:
        api.faults.add(Fault(status=200, body=same, path_contains="/models", times=5))
        async with api.client() as client:
            text = error_text(await client.call_tool("list_fine_tuned_models", {}))
    assert text.startswith("bad_response: ")


@pytest.mark.parametrize(("status", "code"), [(401, "auth_failed"), (404, "not_found"), (500, "upstream_unavailable")])
async def test_api_errors_are_coded(serve_fake, status, code):
    with serve_fake(account()) as api:
        api.faults.add(Fault(status=status, path_contains="/models", times=20))
        async with api.client(max_retries=0) as client:
            text = error_text(await client.call_tool("list_fine_tuned_models", {}))
    assert text.startswith(f"{code}: ")


async def test_demo_lists_the_succeeded_jobs_models(serve_fake):
    from openai_checkpoints_mcp.fake import demo_data

    data = demo_data()
    names = {j["fine_tuned_model"] for j in data.jobs if j["status"] == "succeeded"}
    with serve_fake(data) as api:
        found = await inventory(api)
    assert {m["id"] for m in found["models"]} == names
    assert all(m["job"] is not None for m in found["models"])
